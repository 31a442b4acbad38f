#!/usr/bin/env bash
# Builds the local Debian base image `gantry-base:bookworm` without pulling anything from a
# registry: debootstrap (minbase) from Debian packages, plus the docker CLI taken from the
# `docker.io` .deb, then `docker import`. Used by the Dockerfile's `local` target on machines that
# cannot pull images (ours, CI). Not used by the runner's from-source build.
#
# Cached twice: the image itself (labelled with a hash of this recipe) and the rootfs tarball under
# $GANTRY_BASE_CACHE (default /var/cache/gantry), so a second run costs a `docker image inspect`.
#
# Env: GANTRY_BASE_IMAGE (default gantry-base:bookworm), GANTRY_BASE_SUITE (default bookworm),
#      GANTRY_BASE_CACHE, DEBIAN_MIRROR,
#      GANTRY_BASE_REBUILD=1 to ignore both caches.
set -euo pipefail

IMAGE=${GANTRY_BASE_IMAGE:-gantry-base:bookworm}
CACHE=${GANTRY_BASE_CACHE:-/var/cache/gantry}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The suite must match the host that builds the binary the `local` target copies (glibc).
SUITE=${GANTRY_BASE_SUITE:-bookworm}
PACKAGES=ca-certificates,openssh-client,git

log() { printf 'build-base: %s\n' "$*" >&2; }

# Bump when the rootfs steps below change: the recipe hash names both caches.
RECIPE_VERSION=1
recipe=$(echo "$RECIPE_VERSION $SUITE $PACKAGES docker.io-cli $(dpkg --print-architecture)" | sha256sum | cut -c1-16)
tarball="$CACHE/gantry-base-$SUITE-$recipe.tar"

if [[ "${GANTRY_BASE_REBUILD:-0}" != 1 ]] &&
    [[ "$(docker image inspect -f '{{ index .Config.Labels "dev.gantry.base.recipe" }}' "$IMAGE" 2>/dev/null)" == "$recipe" ]]; then
    log "$IMAGE is up to date (recipe $recipe)"
    exit 0
fi

if [[ "${GANTRY_BASE_REBUILD:-0}" == 1 || ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    root="$work/rootfs"
    start=$(date +%s)
    mkdir -p "$CACHE/debs"
    log "debootstrap $SUITE (minbase + $PACKAGES) into $root"
    debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/debs" \
        "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }

    # Docker CLI: only the client binary from Debian's docker.io package (no daemon, containerd
    # or iptables in the image). apt verified the package's signature when it downloaded it.
    log "extracting the docker CLI from the docker.io package"
    (cd "$work" && apt-get download docker.io >/dev/null 2>&1) ||
        (apt-get update -qq >/dev/null 2>&1 && cd "$work" && apt-get download docker.io >/dev/null 2>&1) || {
        deb=$(ls /var/cache/apt/archives/docker.io_*.deb 2>/dev/null | head -n1)
        [[ -n "$deb" ]] && cp "$deb" "$work/" || { log "cannot download the docker.io package"; exit 1; }
    }
    dpkg-deb -x "$work"/docker.io_*.deb "$work/dockerio"
    install -m 0755 "$work/dockerio/usr/bin/docker" "$root/usr/bin/docker"

    # Slim it: apt state, docs, man pages, locales, logs. The image is a runtime, not a system.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
    # Drop debootstrap's host-specific files.
    rm -f "$root"/etc/hostname "$root"/etc/resolv.conf
    printf '%s\n' "gantry-base $SUITE recipe $recipe" >"$root/etc/gantry-base-release"

    log "packing $tarball"
    tar --numeric-owner --xattrs -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    log "rootfs built in $(( $(date +%s) - start ))s"
    # Old recipes' tarballs are dead weight.
    find "$CACHE" -maxdepth 1 -name "gantry-base-$SUITE-*.tar" ! -name "$(basename "$tarball")" -delete
fi

log "docker import $tarball as $IMAGE"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL dev.gantry.base.recipe=$recipe" \
    --change "LABEL org.opencontainers.image.description=\"gantry local base: Debian $SUITE minbase, $PACKAGES, docker CLI\"" \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$IMAGE" >/dev/null
docker image prune -f --filter label=dev.gantry.base.recipe >/dev/null 2>&1 || true
docker image ls "$IMAGE" >&2
