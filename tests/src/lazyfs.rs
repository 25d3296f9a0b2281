//! A FUSE filesystem that loses what was not synced, for power-loss tests (after Jepsen's
//! LazyFS).
//!
//! [`LazyFs::mount`] mounts, at a mount point, a filesystem whose durable contents are a
//! backing directory. Everything written through the mount lives in the filesystem's memory
//! (the "page cache") until it is made durable:
//!
//! - **File data** reaches the backing file only on `fsync`/`fdatasync` of that file (the
//!   whole file as it is at that moment; writes since the last sync are kept apart). The
//!   backing file is written under each name the file has in the *durable* directory view.
//! - **Directory entries** of regular files (create, rename, unlink) become durable only on
//!   `fsync` of the directory: the backing directory then gets exactly the current entries,
//!   each with its file's last *synced* data (empty if never synced), and loses the others.
//! - **Directories themselves** (mkdir, rmdir) are durable at once (simplification: the
//!   server creates its directories once, at start-up).
//!
//! [`LazyFs::power_loss`] unmounts and mounts again from the backing directory: everything not
//! made durable by the rules above is gone, as after a power cut; unsynced data is dropped as a
//! whole per file. [`LazyFs::power_loss_with_torn_writes`] models a cut during write-back: per
//! file with a durable name, a random prefix of its unsynced writes (in write order) reaches
//! the disk first, the last of them torn part-way (at a random byte among those it changes). The kernel's writeback cache is not
//! enabled, so every `write` (including those glommio submits through io_uring, buffered or
//! `O_DIRECT`) reaches this filesystem before it returns; the kernel may keep clean pages for
//! reads and `mmap` (the server maps snapshots), which the remount of a power loss drops.
//! Entries and attributes are never cached. `fallocate` mode 0 and `FALLOC_FL_KEEP_SIZE` are
//! supported; hard links, symlinks and extended attributes are not.
//!
//! **Faults** ([`LazyFs::set_faults`]): writes or fsyncs of files (or fsyncs of directories)
//! whose name starts with a prefix fail with a chosen errno (`EIO`, `ENOSPC`), and a capacity makes the disk full: a
//! write, truncation or `fallocate` that would grow the files (under a current name) beyond it
//! fails with `ENOSPC`. A failed write changes nothing; a failed fsync makes nothing durable.
//! Faults stay across power losses until replaced.
//!
//! Mounting needs `/dev/fuse` and root (the `mount` system call; no `fusermount3` needed):
//! [`LazyFs::available`] tells whether the tests can run here.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation,
    INodeNo, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// The kernel caches no entry or attribute: every lookup asks the filesystem.
const NO_CACHE: Duration = Duration::ZERO;
const ROOT: u64 = 1;
const BLOCK: u32 = 4096;
/// Longest wait for a busy mount to become free at unmount.
const UNMOUNT_WAIT: Duration = Duration::from_secs(10);

/// Which operation on a file an injected [`Fault`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// `write` (including `O_DIRECT` and io_uring writes).
    Write,
    /// `fsync`/`fdatasync` (also the sync an `O_DSYNC` write makes).
    Fsync,
    /// `fsync` of a directory (what makes its entries durable); the prefix is matched
    /// against the directory's own name (the mount's root has none: only `""` matches it).
    FsyncDir,
}

/// An injected failure: `op` on any file whose current name starts with `name_prefix` fails
/// with `errno`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub op: FaultOp,
    pub name_prefix: String,
    pub errno: i32,
}

/// The failures a test injects into a mounted [`LazyFs`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub failing: Vec<Fault>,
    /// Total bytes the files under a current name may hold; growing beyond fails with
    /// `ENOSPC` (a full disk). `None`: unlimited.
    pub capacity_bytes: Option<u64>,
}

/// [`Faults`] and how many operations they failed so far.
#[derive(Default)]
struct FaultState {
    faults: Faults,
    tripped: u64,
}

/// One file or directory of the in-memory (current) view.
enum Node {
    File {
        /// Contents as the running system sees them.
        data: Vec<u8>,
        /// Contents as of the last fsync (what a power loss leaves under a durable name).
        synced: Vec<u8>,
        /// Writes since the last fsync, in order: (offset, bytes), for torn write-back.
        unsynced_writes: Vec<(u64, Vec<u8>)>,
        /// The shortest length the file had since the last fsync (truncations to sync).
        shortest: usize,
    },
    Dir {
        /// Backing directory this directory is stored in.
        backing: PathBuf,
        /// Entries as the running system sees them.
        entries: BTreeMap<OsString, u64>,
        /// Entries as of the last fsync of this directory (= the backing directory's).
        durable: BTreeMap<OsString, u64>,
    },
}

/// The filesystem's state: inodes by number.
struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
}

impl Tree {
    /// The tree stored in `backing` (everything in it counts as durable).
    fn load(backing: &Path) -> io::Result<Tree> {
        let mut tree = Tree { nodes: HashMap::new(), next_ino: ROOT + 1 };
        tree.load_dir(ROOT, backing)?;
        Ok(tree)
    }

    fn load_dir(&mut self, ino: u64, backing: &Path) -> io::Result<()> {
        let mut entries = BTreeMap::new();
        for entry in std::fs::read_dir(backing)? {
            let entry = entry?;
            let child = self.allocate();
            if entry.file_type()?.is_dir() {
                self.load_dir(child, &entry.path())?;
            } else {
                let data = std::fs::read(entry.path())?;
                self.nodes.insert(
                    child,
                    Node::File {
                        shortest: data.len(),
                        synced: data.clone(),
                        data,
                        unsynced_writes: Vec::new(),
                    },
                );
            }
            entries.insert(entry.file_name(), child);
        }
        self.nodes
            .insert(ino, Node::Dir { backing: backing.to_path_buf(), durable: entries.clone(), entries });
        Ok(())
    }

    fn allocate(&mut self) -> u64 {
        self.next_ino += 1;
        self.next_ino - 1
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, size, perm) = match self.nodes.get(&ino)? {
            Node::File { data, .. } => (FileType::RegularFile, data.len() as u64, 0o644),
            Node::Dir { .. } => (FileType::Directory, 0, 0o755),
        };
        let now = SystemTime::now();
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: BLOCK,
            flags: 0,
        })
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir { entries, .. }) => Ok(entries),
            Some(Node::File { .. }) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn child(&mut self, dir: u64, name: &OsStr) -> Result<u64, Errno> {
        self.entries_mut(dir)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn file_data(&mut self, ino: u64) -> Result<&mut Vec<u8>, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File { data, .. }) => Ok(data),
            Some(Node::Dir { .. }) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// The names file `ino` has in the current view.
    fn names_of(&self, ino: u64) -> impl Iterator<Item = &OsString> {
        self.nodes.values().flat_map(move |node| match node {
            Node::Dir { entries, .. } => {
                entries.iter().filter(move |(_, child)| **child == ino).map(|(name, _)| name).collect()
            }
            Node::File { .. } => Vec::new(),
        })
    }

    /// Bytes held by the files that have a name in the current view.
    fn used_bytes(&self) -> u64 {
        let named: std::collections::BTreeSet<u64> = self
            .nodes
            .values()
            .filter_map(|node| match node {
                Node::Dir { entries, .. } => Some(entries.values().copied()),
                Node::File { .. } => None,
            })
            .flatten()
            .collect();
        named
            .iter()
            .filter_map(|ino| match self.nodes.get(ino) {
                Some(Node::File { data, .. }) => Some(data.len() as u64),
                _ => None,
            })
            .sum()
    }

    fn file_len(&self, ino: u64) -> u64 {
        match self.nodes.get(&ino) {
            Some(Node::File { data, .. }) => data.len() as u64,
            _ => 0,
        }
    }

    fn backing_of(&self, dir: u64) -> PathBuf {
        match &self.nodes[&dir] {
            Node::Dir { backing, .. } => backing.clone(),
            Node::File { .. } => unreachable!("directory inode {dir} is a file"),
        }
    }

    /// fsync of a file: its data becomes durable under every durable name it has. Only the
    /// range written since the last sync (and any truncation) reaches the backing files.
    fn sync_file(&mut self, ino: u64) -> io::Result<()> {
        let Some(Node::File { data, synced, unsynced_writes, shortest }) = self.nodes.get_mut(&ino) else {
            return Ok(());
        };
        let length = data.len();
        let dirty = unsynced_writes
            .drain(..)
            .map(|(offset, bytes)| (offset as usize, offset as usize + bytes.len()))
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
            .map_or(length..length, |(start, end)| start.min(length)..end.min(length));
        let truncated_to = std::mem::replace(shortest, length).min(synced.len());
        if dirty.is_empty() && truncated_to == synced.len() && length == synced.len() {
            return Ok(());
        }
        synced.truncate(truncated_to);
        synced.resize(length, 0);
        synced[dirty.clone()].copy_from_slice(&data[dirty.clone()]);
        let bytes = synced[dirty.clone()].to_vec();
        for node in self.nodes.values() {
            if let Node::Dir { backing, durable, .. } = node {
                for (name, _) in durable.iter().filter(|(_, child)| **child == ino) {
                    let file = std::fs::OpenOptions::new().write(true).open(backing.join(name))?;
                    file.set_len(truncated_to as u64)?;
                    file.set_len(length as u64)?;
                    file.write_all_at(&bytes, dirty.start as u64)?;
                }
            }
        }
        Ok(())
    }

    /// fsync of a directory: its file entries become durable, each with its synced data.
    fn sync_dir(&mut self, dir: u64) -> io::Result<()> {
        let Some(Node::Dir { backing, entries, durable }) = self.nodes.get(&dir) else { return Ok(()) };
        let is_file = |ino: &u64| matches!(self.nodes.get(ino), Some(Node::File { .. }));
        for (name, ino) in durable.iter().filter(|(_, ino)| is_file(ino)) {
            if entries.get(name) != Some(ino) {
                match std::fs::remove_file(backing.join(name)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        let newly_durable =
            entries.iter().filter(|(name, ino)| is_file(ino) && durable.get(*name) != Some(ino));
        for (name, ino) in newly_durable {
            if let Some(Node::File { synced, .. }) = self.nodes.get(ino) {
                std::fs::write(backing.join(name), synced)?;
            }
        }
        if let Some(Node::Dir { entries, durable, .. }) = self.nodes.get_mut(&dir) {
            *durable = entries.clone();
        }
        Ok(())
    }
}

impl Tree {
    /// What the disk may hold after a power cut during write-back: for every file under a
    /// durable name, a random prefix of its unsynced writes reached the backing file, the last
    /// of them possibly torn (only its first bytes written).
    fn write_back_torn(&self, seed: u64) -> io::Result<()> {
        let mut rng = crate::sim::Rng(seed);
        for node in self.nodes.values() {
            let Node::Dir { backing, durable, .. } = node else { continue };
            for (name, ino) in durable {
                let Some(Node::File { unsynced_writes, .. }) = self.nodes.get(ino) else { continue };
                if unsynced_writes.is_empty() {
                    continue;
                }
                let file = std::fs::OpenOptions::new().read(true).write(true).open(backing.join(name))?;
                let whole = rng.below(unsynced_writes.len() as u64 + 1) as usize;
                for (offset, bytes) in &unsynced_writes[..whole] {
                    file.write_all_at(bytes, *offset)?;
                }
                if let Some((offset, bytes)) = unsynced_writes.get(whole) {
                    // Torn somewhere among the bytes it changes (a tear where it rewrites
                    // what is already there would change nothing).
                    let mut before = vec![0; bytes.len()];
                    let present = read_up_to(&file, &mut before, *offset)?;
                    let changes = |i: &usize| *i >= present || before[*i] != bytes[*i];
                    if let (Some(first), Some(last)) =
                        ((0..bytes.len()).find(changes), (0..bytes.len()).rev().find(changes))
                    {
                        let torn = first + rng.below((last - first + 1) as u64) as usize;
                        file.write_all_at(&bytes[..torn], *offset)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn read_up_to(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The FUSE side: a [`Tree`] behind a lock (fuser may call from several threads).
struct LazyFsHandler {
    tree: Arc<Mutex<Tree>>,
    faults: Arc<Mutex<FaultState>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LazyFsHandler {
    fn tree(&self) -> MutexGuard<'_, Tree> {
        lock(&self.tree)
    }

    /// The error an injected fault gives `op` on file `ino`, if one matches (counted).
    fn injected(&self, tree: &Tree, ino: u64, op: FaultOp) -> Option<Errno> {
        let mut state = lock(&self.faults);
        let errno = state.faults.failing.iter().find_map(|fault| {
            let named = (ino == ROOT && fault.name_prefix.is_empty())
                || tree.names_of(ino).any(|name| name.as_bytes().starts_with(fault.name_prefix.as_bytes()));
            (fault.op == op && named).then_some(fault.errno)
        })?;
        state.tripped += 1;
        Some(Errno::from_i32(errno))
    }

    /// An fsync (`op`) of `ino`: the injected error, else what `sync` makes of it.
    fn sync(&self, ino: u64, op: FaultOp, sync: fn(&mut Tree, u64) -> io::Result<()>, reply: ReplyEmpty) {
        let mut tree = self.tree();
        if let Some(errno) = self.injected(&tree, ino, op) {
            return reply.error(errno);
        }
        match sync(&mut tree, ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(io_errno(e)),
        }
    }

    /// `ENOSPC` (counted) if file `ino` growing to `new_len` bytes would exceed the capacity.
    fn out_of_space(&self, tree: &Tree, ino: u64, new_len: u64) -> Option<Errno> {
        let mut state = lock(&self.faults);
        let capacity = state.faults.capacity_bytes?;
        let growth = new_len.saturating_sub(tree.file_len(ino));
        if growth == 0 || tree.used_bytes() + growth <= capacity {
            return None;
        }
        state.tripped += 1;
        Some(Errno::from_i32(libc::ENOSPC))
    }

    /// Runs `change` on the data of file `ino`, or tells why there is none.
    fn with_data<R>(&self, ino: INodeNo, change: impl FnOnce(&mut Vec<u8>) -> R) -> Result<R, Errno> {
        self.tree().file_data(ino.0).map(change)
    }

    fn reply_entry(&self, tree: &Tree, ino: u64, reply: ReplyEntry) {
        match tree.attr(ino) {
            Some(attr) => reply.entry(&NO_CACHE, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }
}

fn io_errno(e: io::Error) -> Errno {
    Errno::from(e)
}

impl fuser::Filesystem for LazyFsHandler {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut tree = self.tree();
        match tree.child(parent.0, name) {
            Ok(ino) => self.reply_entry(&tree, ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree().attr(ino.0) {
            Some(attr) => reply.attr(&NO_CACHE, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut tree = self.tree();
        if let Some(size) = size {
            if let Some(errno) = self.out_of_space(&tree, ino.0, size) {
                return reply.error(errno);
            }
            match tree.nodes.get_mut(&ino.0) {
                Some(Node::File { data, shortest, .. }) => {
                    data.resize(size as usize, 0);
                    *shortest = (*shortest).min(data.len());
                }
                Some(Node::Dir { .. }) => return reply.error(Errno::EISDIR),
                None => return reply.error(Errno::ENOENT),
            }
        }
        match tree.attr(ino.0) {
            Some(attr) => reply.attr(&NO_CACHE, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let mut tree = self.tree();
        if tree.child(parent.0, name).is_ok() {
            return reply.error(Errno::EEXIST);
        }
        let backing = tree.backing_of(parent.0).join(name);
        if let Err(e) = std::fs::create_dir(&backing) {
            return reply.error(io_errno(e));
        }
        let ino = tree.allocate();
        tree.nodes.insert(ino, Node::Dir { backing, entries: BTreeMap::new(), durable: BTreeMap::new() });
        if let Some(Node::Dir { entries, durable, .. }) = tree.nodes.get_mut(&parent.0) {
            entries.insert(name.to_os_string(), ino);
            durable.insert(name.to_os_string(), ino);
        }
        self.reply_entry(&tree, ino, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut tree = self.tree();
        let ino = match tree.child(parent.0, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        match tree.nodes.get(&ino) {
            Some(Node::Dir { entries, backing, .. }) if entries.is_empty() => {
                if let Err(e) = std::fs::remove_dir(backing) {
                    return reply.error(io_errno(e));
                }
            }
            Some(Node::Dir { .. }) => return reply.error(Errno::ENOTEMPTY),
            _ => return reply.error(Errno::ENOTDIR),
        }
        if let Some(Node::Dir { entries, durable, .. }) = tree.nodes.get_mut(&parent.0) {
            entries.remove(name);
            durable.remove(name);
        }
        tree.nodes.remove(&ino);
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut tree = self.tree();
        let ino = match tree.child(parent.0, name) {
            Ok(ino) => ino,
            Err(_) => {
                let ino = tree.allocate();
                tree.nodes.insert(
                    ino,
                    Node::File {
                        data: Vec::new(),
                        synced: Vec::new(),
                        unsynced_writes: Vec::new(),
                        shortest: 0,
                    },
                );
                match tree.entries_mut(parent.0) {
                    Ok(entries) => entries.insert(name.to_os_string(), ino),
                    Err(e) => return reply.error(e),
                };
                ino
            }
        };
        let attr = tree.attr(ino).expect("inode just looked up");
        reply.created(&NO_CACHE, &attr, Generation(0), FileHandle(0), FopenFlags::empty());
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.tree().nodes.get(&ino.0) {
            Some(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let read = self.with_data(ino, |data| {
            let start = (offset as usize).min(data.len());
            data[start..(start + size as usize).min(data.len())].to_vec()
        });
        match read {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        bytes: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut tree = self.tree();
        let refused = self
            .injected(&tree, ino.0, FaultOp::Write)
            .or_else(|| self.out_of_space(&tree, ino.0, offset + bytes.len() as u64));
        if let Some(errno) = refused {
            return reply.error(errno);
        }
        let written = match tree.nodes.get_mut(&ino.0) {
            Some(Node::File { data, unsynced_writes, .. }) => {
                let end = offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset as usize..end].copy_from_slice(bytes);
                unsynced_writes.push((offset, bytes.to_vec()));
                Ok(())
            }
            Some(Node::Dir { .. }) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        };
        match written {
            Ok(()) => reply.written(bytes.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.sync(ino.0, FaultOp::Fsync, Tree::sync_file, reply);
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.sync(ino.0, FaultOp::FsyncDir, Tree::sync_dir, reply);
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            return reply.error(Errno::from_i32(libc::EOPNOTSUPP));
        }
        if mode & libc::FALLOC_FL_KEEP_SIZE == 0 {
            if let Some(errno) = self.out_of_space(&self.tree(), ino.0, offset + length) {
                return reply.error(errno);
            }
        }
        let allocated = self.with_data(ino, |data| {
            let end = (offset + length) as usize;
            if mode & libc::FALLOC_FL_KEEP_SIZE == 0 && data.len() < end {
                data.resize(end, 0);
            }
        });
        match allocated {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut tree = self.tree();
        match tree.entries_mut(parent.0).map(|entries| entries.remove(name)) {
            Ok(Some(_)) => reply.ok(),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut tree = self.tree();
        let ino = match tree.child(parent.0, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        if matches!(tree.nodes.get(&ino), Some(Node::Dir { .. })) || !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let target_entries = match tree.entries_mut(newparent.0) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
        };
        target_entries.insert(newname.to_os_string(), ino);
        if let Ok(entries) = tree.entries_mut(parent.0) {
            if (parent, name) != (newparent, newname) {
                entries.remove(name);
            }
        }
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let tree = self.tree();
        let Some(Node::Dir { entries, .. }) = tree.nodes.get(&ino.0) else {
            return reply.error(Errno::ENOTDIR);
        };
        let mut listing =
            vec![(ino.0, FileType::Directory, OsString::from(".")), (ROOT, FileType::Directory, "..".into())];
        for (name, child) in entries {
            let kind = match tree.nodes.get(child) {
                Some(Node::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            listing.push((*child, kind, name.clone()));
        }
        for (index, (child, kind, name)) in listing.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), index as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // 64 GiB of 4 KiB blocks unless a capacity is set.
        let capacity = lock(&self.faults).faults.capacity_bytes;
        let blocks = capacity.map_or(1 << 24, |bytes| bytes.div_ceil(BLOCK as u64));
        let used = self.tree().used_bytes().div_ceil(BLOCK as u64);
        let free = blocks.saturating_sub(used);
        reply.statfs(blocks, free, free, 1 << 20, 1 << 20, BLOCK, 255, BLOCK);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// A mounted [`LazyFs`]: unmounted on drop.
pub struct LazyFs {
    backing: PathBuf,
    mount_point: PathBuf,
    /// The mounted filesystem's state (shared with its FUSE handler).
    tree: Arc<Mutex<Tree>>,
    /// Injected faults (shared with the handler of every mount).
    faults: Arc<Mutex<FaultState>>,
    session: Option<BackgroundSession>,
}

impl LazyFs {
    /// Whether this machine can mount it: `/dev/fuse` exists and we are root. Tests print
    /// why and skip when not.
    pub fn available() -> Result<(), String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is absent".into());
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("mounting FUSE with the mount system call needs root".into());
        }
        Ok(())
    }

    /// Mounts at `mount_point` (an existing empty directory) a filesystem stored in `backing`.
    pub fn mount(backing: &Path, mount_point: &Path) -> io::Result<LazyFs> {
        let mut fs = LazyFs {
            backing: backing.to_path_buf(),
            mount_point: mount_point.to_path_buf(),
            tree: Arc::new(Mutex::new(Tree::load(backing)?)),
            faults: Arc::default(),
            session: None,
        };
        fs.session = Some(fs.spawn()?);
        Ok(fs)
    }

    /// Mounts a fresh filesystem from what the backing directory holds.
    fn spawn(&mut self) -> io::Result<BackgroundSession> {
        self.tree = Arc::new(Mutex::new(Tree::load(&self.backing)?));
        let handler = LazyFsHandler { tree: self.tree.clone(), faults: self.faults.clone() };
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("lazyfs".into()), MountOption::DefaultPermissions];
        fuser::spawn_mount(handler, &self.mount_point, &config)
    }

    /// Replaces the injected faults (`Faults::default()` clears them) and resets the count of
    /// operations they failed.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = FaultState { faults, tripped: 0 };
    }

    /// How many operations the injected faults failed since [`LazyFs::set_faults`].
    pub fn faults_tripped(&self) -> u64 {
        lock(&self.faults).tripped
    }

    /// Bytes the files under a current name hold (what a capacity is compared with).
    pub fn used_bytes(&self) -> u64 {
        lock(&self.tree).used_bytes()
    }

    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Power cut: drops everything not made durable and mounts again from the backing
    /// directory. No process may hold a file of the mount open (kill the server first).
    pub fn power_loss(&mut self) -> io::Result<()> {
        self.unmount()?;
        self.session = Some(self.spawn()?);
        Ok(())
    }

    /// Power cut during write-back: as [`LazyFs::power_loss`], but first, for every file
    /// under a durable name, a random prefix (drawn from `seed`) of its unsynced writes
    /// reaches the disk, the last one torn. Names that were never made durable still vanish.
    pub fn power_loss_with_torn_writes(&mut self, seed: u64) -> io::Result<()> {
        lock(&self.tree).write_back_torn(seed)?;
        self.power_loss()
    }

    /// Unmounts, waiting (a bounded time) while the mount is busy: the files of a process
    /// just killed are released asynchronously when it used io_uring.
    fn unmount(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else { return Ok(()) };
        let path = CString::new(self.mount_point.as_os_str().as_bytes())?;
        let deadline = Instant::now() + UNMOUNT_WAIT;
        loop {
            // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
            if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
                break;
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EBUSY) || Instant::now() > deadline {
                self.session = Some(session);
                return Err(io::Error::new(
                    error.kind(),
                    format!("unmounting {}: {error}", self.mount_point.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        session.join()
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        if self.unmount().is_err() {
            // Still busy: detach it lazily rather than leave it mounted.
            if let Some(session) = self.session.take() {
                let _ = session.umount_and_join();
            }
        }
    }
}
