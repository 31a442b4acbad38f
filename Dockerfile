# The gantry action image: one multi-call binary (`gantry <action>`) plus the programs the actions
# drive (ssh, git, docker + buildx, kubectl) on slim Debian bookworm.
#
# Stages, in this order on purpose:
#   local    a test image from a host-built binary on a locally made base (docker/build-local.sh);
#            first, so the legacy builder (`DOCKER_BUILDKIT=0 docker build --target local`), which
#            builds every stage up to its target, never needs a pulled image or the network.
#   build    the from-source build: `cargo build --locked --release` in rust:1.95-slim-bookworm.
#   kubectl  kubectl downloaded from dl.k8s.io and verified by sha256.
#   dockercli  the static docker CLI and buildx plugin from Docker's official image.
#   runtime  the LAST stage: what the runner builds from `image: Dockerfile` (no --target) and what
#            the release workflow publishes for linux/amd64 and linux/arm64.
#
# GitHub's container-action rules (reference/runtime-and-slack.md A1.2-A1.7): exec-form ENTRYPOINT
# (a shell wrapper drops hyphenated INPUT_* names), no USER (the action must run as root to write
# /github/file_commands and the workspace; gantry chowns what it writes back to the workspace owner),
# no WORKDIR (the runner passes --workdir /github/workspace). gantry is PID 1 and has its own init
# (signal forwarding, reaping), so no tini.
# See: https://docs.github.com/en/actions/sharing-automations/creating-actions/dockerfile-support-for-github-actions
#
# Only syntax the Docker 20.10 legacy builder parses (it parses every stage even with --target):
# no RUN --mount, no COPY --link, no heredocs, no ADD --checksum.

ARG LOCAL_BASE=gantry-base:bookworm
ARG GANTRY_VERSION=0.1.0
ARG GANTRY_COMMIT=unknown
ARG GANTRY_SOURCE=https://github.com/gantry-actions/gantry

# ---------------------------------------------------------------------------------------------
# local: a host-built binary + the preinstalled kubectl on gantry-base:bookworm (docker/build-base.sh:
# debootstrap minbase + ca-certificates, openssh-client, git, docker CLI). The build context is a
# small directory docker/build-local.sh prepares with exactly two files: `gantry` and `kubectl`.
FROM ${LOCAL_BASE} AS local
ARG GANTRY_VERSION
ARG GANTRY_COMMIT
ARG GANTRY_SOURCE
COPY gantry kubectl /usr/local/bin/
LABEL org.opencontainers.image.title="gantry" \
      org.opencontainers.image.description="gantry GitHub Actions (local test build): tag-metadata, build-image, kustomize-deploy, ssh-release, notify-slack" \
      org.opencontainers.image.source="${GANTRY_SOURCE}" \
      org.opencontainers.image.version="${GANTRY_VERSION}" \
      org.opencontainers.image.revision="${GANTRY_COMMIT}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      dev.gantry.image.flavor="local"
ENTRYPOINT ["/usr/local/bin/gantry"]

# ---------------------------------------------------------------------------------------------
# build: the release binary from source. Dependencies are pure Rust (rustls, no OpenSSL), so the
# slim image's gcc and libc6-dev are all the toolchain needs (for ring's C parts).
FROM docker.io/library/rust:1.95-slim-bookworm AS build
ARG GANTRY_COMMIT
COPY . /src
RUN cd /src \
 && GANTRY_COMMIT="${GANTRY_COMMIT}" cargo build --locked --release --bin gantry \
 && install -D -m 0755 target/release/gantry /out/gantry \
 && /out/gantry --version \
 && rm -rf /src/target "${CARGO_HOME:-/usr/local/cargo}/registry"

# ---------------------------------------------------------------------------------------------
# kubectl: pinned, verified against the sha256 published at
# https://dl.k8s.io/release/v1.32.11/bin/linux/<arch>/kubectl.sha256 (cross-checked with
# kubernetes-sigs/kubespray's checksums.yml). Overriding KUBECTL_VERSION needs both sums too.
FROM docker.io/library/debian:bookworm-slim AS kubectl
ARG TARGETARCH
ARG KUBECTL_VERSION=1.32.11
ARG KUBECTL_SHA256_AMD64=48581d0e808bd8b7d3c3fc014e86b170e25a987df04c8a879b982b28a5180815
ARG KUBECTL_SHA256_ARM64=b1c91c106ec20e61c5dff869e9a39e6af4fb96572bddaac9cce307dfa3ed2348
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
      amd64) sum="${KUBECTL_SHA256_AMD64}" ;; \
      arm64) sum="${KUBECTL_SHA256_ARM64}" ;; \
      *) echo "no pinned kubectl checksum for architecture $arch" >&2; exit 1 ;; \
    esac; \
    curl -fsSL --retry 3 -o /kubectl "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"; \
    echo "${sum}  /kubectl" | sha256sum -c -; \
    chmod 0755 /kubectl; \
    /kubectl version --client

# ---------------------------------------------------------------------------------------------
# dockercli: build-image's buildx mode drives `docker buildx build` against the runner's daemon
# (the socket is mounted). Static binaries from Docker's official multi-arch image; Debian's
# docker.io client (20.10, API 1.41) is too old for daemons that require API >= 1.44.
FROM docker.io/library/docker:29.7.2-cli AS dockercli

# ---------------------------------------------------------------------------------------------
# runtime: the published image, and what `image: Dockerfile` builds. Keep it LAST.
FROM docker.io/library/debian:bookworm-slim AS runtime
ARG GANTRY_VERSION
ARG GANTRY_COMMIT
ARG GANTRY_SOURCE
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates openssh-client git; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
COPY --from=dockercli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=dockercli /usr/local/libexec/docker/cli-plugins/docker-buildx /usr/local/libexec/docker/cli-plugins/docker-buildx
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
COPY --from=build /out/gantry /usr/local/bin/gantry
LABEL org.opencontainers.image.title="gantry" \
      org.opencontainers.image.description="gantry GitHub Actions: tag-metadata, build-image, kustomize-deploy, ssh-release, notify-slack" \
      org.opencontainers.image.source="${GANTRY_SOURCE}" \
      org.opencontainers.image.version="${GANTRY_VERSION}" \
      org.opencontainers.image.revision="${GANTRY_COMMIT}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim" \
      dev.gantry.image.flavor="release"
ENTRYPOINT ["/usr/local/bin/gantry"]
