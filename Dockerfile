# ringkeeper in a container: a release build, then a slim Debian image running it as an
# unprivileged user with /etc/ringkeeper/zoo.cfg (packaging/zoo.cfg; mount your own over it)
# and the dataDir /var/lib/ringkeeper as a volume.
#
#   docker build -t ringkeeper .
#   docker run --security-opt seccomp=unconfined --ulimit memlock=-1 -p 2181:2181 ringkeeper
#
# ringkeeper does its I/O with io_uring (glommio): Docker's default seccomp profile refuses
# the io_uring system calls, hence the seccomp option (or a profile allowing io_uring_setup,
# io_uring_enter and io_uring_register); io_uring also locks memory, hence the memlock limit.
#
# Build arguments: BUILD_IMAGE and RUNTIME_IMAGE name the base images; BINARY=prebuilt takes
# target/release/ringkeeper from the build context instead of compiling (what
# packaging/check-docker.sh does where no Rust image can be pulled).
ARG BUILD_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG BINARY=build

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
# SASL GSSAPI links the system's MIT Kerberos library; its bindings are made with libclang.
RUN apt-get update && apt-get install -y --no-install-recommends libkrb5-dev libclang-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cargo build --release -p ringkeeper-server --features gssapi --bin ringkeeper \
    && cp target/release/ringkeeper /ringkeeper

FROM scratch AS prebuilt
COPY target/release/ringkeeper /ringkeeper

FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends libgssapi-krb5-2 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system ringkeeper \
    && useradd --system --gid ringkeeper --home-dir /var/lib/ringkeeper --no-create-home \
        --shell /usr/sbin/nologin ringkeeper \
    && install -d -o ringkeeper -g ringkeeper -m 0750 /var/lib/ringkeeper \
    && install -d /etc/ringkeeper
COPY --from=binary /ringkeeper /usr/bin/ringkeeper
COPY packaging/zoo.cfg /etc/ringkeeper/zoo.cfg
# The AdminServer answers outside the container too.
RUN sed -i 's/^admin.serverAddress=.*/admin.serverAddress=0.0.0.0/' /etc/ringkeeper/zoo.cfg
USER ringkeeper
VOLUME /var/lib/ringkeeper
# client, quorum, election (unused by ringkeeper but kept as in server.N lines), admin, metrics
EXPOSE 2181 2888 3888 8080 7000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/ringkeeper"]
CMD ["/etc/ringkeeper/zoo.cfg"]
