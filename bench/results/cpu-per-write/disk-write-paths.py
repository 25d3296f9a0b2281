# disk-write-paths.py [DIR] [N]: latency of the ways to write a log record durably (page cache + O_DSYNC or fdatasync, O_DIRECT with O_DSYNC or fdatasync), appending into a zero-filled 64 MiB file
import os, mmap, time, statistics, sys
d = sys.argv[1] if len(sys.argv) > 1 else '/var/tmp/rk-disk-write-paths'
os.makedirs(d, exist_ok=True)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
size = 64 << 20
path = d + '/f'
with open(path, 'wb') as f:
    chunk = b'\0' * (1 << 20)
    for _ in range(size >> 20): f.write(chunk)
    f.flush(); os.fsync(f.fileno())
buf = mmap.mmap(-1, 4096); buf.write(b'x' * 4096)
def run(name, flags, step, write):
    fd = os.open(path, os.O_WRONLY | flags)
    lat = []
    off = 0
    for i in range(N):
        t = time.perf_counter_ns()
        write(fd, off)
        lat.append((time.perf_counter_ns() - t) / 1000)
        off += step
    os.close(fd)
    lat.sort()
    print(f"{name:40s} p50 {lat[len(lat)//2]:7.1f} us  p90 {lat[int(len(lat)*.9)]:7.1f}  p99 {lat[int(len(lat)*.99)]:7.1f}")
small = b'y' * 120
run("100B pwrite O_DSYNC (appending)", os.O_DSYNC, 120, lambda fd, off: os.pwrite(fd, small, off))
run("100B pwrite + fdatasync (appending)", 0, 120, lambda fd, off: (os.pwrite(fd, small, off), os.fdatasync(fd)))
run("4K pwrite + fdatasync (appending)", 0, 4096, lambda fd, off: (os.pwrite(fd, buf, off), os.fdatasync(fd)))
run("4K O_DIRECT|O_DSYNC (same block rewritten)", os.O_DIRECT | os.O_DSYNC, 0, lambda fd, off: os.pwrite(fd, buf, off))
run("4K O_DIRECT|O_DSYNC (appending)", os.O_DIRECT | os.O_DSYNC, 4096, lambda fd, off: os.pwrite(fd, buf, off))
run("4K O_DIRECT + fdatasync (appending)", os.O_DIRECT, 4096, lambda fd, off: (os.pwrite(fd, buf, off), os.fdatasync(fd)))
