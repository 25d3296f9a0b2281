#!/usr/bin/env bash
# Builds the container image from the Dockerfile, runs it, checks that `ruok` on the
# published client port answers `imok`, stops it with SIGTERM (exit status 0 expected) and
# removes it again.
#
# Usage: packaging/check-docker.sh [--prebuilt BINARY]
#   default:             the Dockerfile's own build stage (needs the rust:1-bookworm and
#                        debian:bookworm-slim images, i.e. a container registry);
#   --prebuilt BINARY:   packs BINARY (e.g. $CARGO_TARGET_DIR/release/ringkeeper) instead of
#                        compiling in the image (BINARY=prebuilt).
# Environment: ENGINE (podman or docker; default: podman if installed), RUNTIME (an OCI
# runtime for podman, e.g. runc where crun cannot set up cgroups), RUNTIME_IMAGE (default
# debian:bookworm-slim; when it can be neither found nor pulled, a minimal bookworm made
# with debootstrap from deb.debian.org is imported under that name), RUN_OPTIONS (extra
# `run` options, e.g. ulimits a sandbox cannot raise).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

engine=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
engine_cmd=("$engine")
if [[ $engine == podman && -n ${RUNTIME:-} ]]; then
    engine_cmd+=(--runtime "$RUNTIME")
fi
runtime_image=${RUNTIME_IMAGE:-debian:bookworm-slim}
prebuilt=
if [[ ${1:-} == --prebuilt ]]; then
    prebuilt=$(realpath "${2:?--prebuilt needs the binary}")
fi

work=$(mktemp -d)
name=ringkeeper-check-$$
cleanup() {
    "${engine_cmd[@]}" rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! "${engine_cmd[@]}" image exists "$runtime_image" 2>/dev/null \
    && ! "${engine_cmd[@]}" pull "$runtime_image" >/dev/null 2>&1; then
    echo "no $runtime_image image to pull: making one with debootstrap"
    command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$work/rootfs" -c . | "${engine_cmd[@]}" import - "$runtime_image" >/dev/null
    rm -rf "$work/rootfs"
fi

build_args=(--build-arg "RUNTIME_IMAGE=$runtime_image")
if [[ -n $prebuilt ]]; then
    # A context of only what the prebuilt image needs (the repository's .dockerignore
    # leaves target/ out).
    context=$work/context
    mkdir -p "$context/target/release" "$context/packaging"
    cp Dockerfile "$context/"
    cp packaging/zoo.cfg "$context/packaging/"
    cp "$prebuilt" "$context/target/release/ringkeeper"
    build_args+=(--build-arg BINARY=prebuilt)
else
    context=.
fi
started=$(date +%s)
"${engine_cmd[@]}" build -q -t ringkeeper:check "${build_args[@]}" "$context" >/dev/null
echo "image built in $(($(date +%s) - started)) s"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086 # RUN_OPTIONS is a list of options
"${engine_cmd[@]}" run -d --name "$name" --security-opt seccomp=unconfined ${RUN_OPTIONS:-} \
    -p "127.0.0.1:$port:2181" ringkeeper:check >/dev/null

answer=
for _ in $(seq 100); do
    answer=$(python3 - "$port" <<'PY' 2>/dev/null || true
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.sendall(b"ruok")
    print(s.recv(16).decode())
PY
)
    [[ $answer == imok ]] && break
    sleep 0.2
done
if [[ $answer != imok ]]; then
    echo "FAIL: no imok from the container on 127.0.0.1:$port"
    "${engine_cmd[@]}" logs "$name" || true
    exit 1
fi
echo "ruok -> imok from the container (127.0.0.1:$port)"

"${engine_cmd[@]}" stop -t 10 "$name" >/dev/null
status=$("${engine_cmd[@]}" inspect -f '{{.State.ExitCode}}' "$name")
logs=$("${engine_cmd[@]}" logs "$name" 2>&1)
if [[ $status != 0 ]] || ! grep -q "stopping on SIGTERM" <<<"$logs"; then
    echo "FAIL: the container exited with $status after SIGTERM:"
    echo "$logs"
    exit 1
fi
echo "OK: SIGTERM stopped it cleanly (exit 0)"
