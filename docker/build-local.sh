#!/usr/bin/env bash
# Builds the local gantry image (the Dockerfile's `local` target) on a machine that cannot pull
# images or download kubectl: starts dockerd if needed, makes gantry-base:bookworm
# (docker/build-base.sh), builds or takes a gantry binary, and runs the legacy builder on a
# two-file context (the binary and the preinstalled kubectl 1.32). Prints the image size on
# stderr and the image name as the last line of stdout.
#
# Usage: docker/build-local.sh [--release | --debug | --bin PATH] [--tag NAME]
#   --release   cargo build --release --locked --bin gantry (default; what users get)
#   --debug     cargo build --locked --bin gantry (fast; what the container-contract test uses)
#   --bin PATH  use an already built binary (the test passes the binary under test)
#   --tag NAME  image name (default gantry:local)
# Env: KUBECTL (default /usr/lib/google-cloud-sdk/bin/kubectl.1.32; /usr/bin/kubectl there is a
#      version dispatcher, not kubectl), GANTRY_BASE_IMAGE (default gantry-base:bookworm).
#
# Cached: the image carries a label with the hash of (binary, kubectl, Dockerfile, base image); when
# it matches, nothing is rebuilt and the script costs well under a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
profile=release
bin=""
tag=gantry:local
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release ;;
        --debug) profile=debug ;;
        --bin) bin=${2:?--bin needs a path}; shift ;;
        --tag) tag=${2:?--tag needs a name}; shift ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-local: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
kubectl=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}
base=${GANTRY_BASE_IMAGE:-gantry-base:bookworm}

log() { printf 'build-local: %s\n' "$*" >&2; }
start=$(date +%s.%N)

"$here/ensure-dockerd.sh"
# Parallel test processes call this script at once: one build at a time, the rest find it cached.
mkdir -p "$repo/target"
exec 8>"$repo/target/.docker-local.lock"
flock -w 900 8 || { log "timed out waiting for another build-local.sh"; exit 1; }
GANTRY_BASE_IMAGE=$base "$here/build-base.sh"

if [[ -z "$bin" ]]; then
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    target_dir=${target_dir:-$repo/target}
    flags=(--locked --bin gantry)
    [[ "$profile" == release ]] && flags+=(--release)
    log "cargo build ${flags[*]}"
    (cd "$repo" && cargo build "${flags[@]}")
    bin="$target_dir/$profile/gantry"
fi
[[ -x "$bin" ]] || { log "no executable gantry binary at $bin"; exit 1; }
[[ -x "$kubectl" ]] || { log "no kubectl at $kubectl (set KUBECTL)"; exit 1; }

# The build context: exactly the two files the `local` stage copies. Hard links when possible.
ctx="$repo/target/docker-local"
mkdir -p "$ctx"
for pair in "gantry:$bin" "kubectl:$kubectl"; do
    name=${pair%%:*} src=${pair#*:}
    if ! cmp -s "$src" "$ctx/$name"; then
        rm -f "$ctx/$name"
        ln "$src" "$ctx/$name" 2>/dev/null || cp "$src" "$ctx/$name"
    fi
done
printf '*\n!gantry\n!kubectl\n' >"$ctx/.dockerignore"

base_id=$(docker image inspect -f '{{.Id}}' "$base")
key=$( { sha256sum "$ctx/gantry" "$ctx/kubectl" "$repo/Dockerfile" | cut -d' ' -f1; echo "$base_id"; } | sha256sum | cut -c1-24)
if [[ "$(docker image inspect -f '{{ index .Config.Labels "dev.gantry.local.key" }}' "$tag" 2>/dev/null)" == "$key" ]]; then
    log "$tag is up to date (key $key)"
else
    commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
    log "docker build --target local ($tag, binary $bin)"
    DOCKER_BUILDKIT=0 docker build --quiet --target local -f "$repo/Dockerfile" \
        --build-arg LOCAL_BASE="$base" --build-arg GANTRY_COMMIT="$commit" \
        --build-arg GANTRY_VERSION="${version:-0.0.0}" \
        --label dev.gantry.local.key="$key" -t "$tag" "$ctx" >/dev/null
    # Each rebuild leaves the previous image dangling; drop dangling local builds.
    docker image prune -f --filter label=dev.gantry.image.flavor=local >/dev/null 2>&1 || true
fi

size=$(docker image inspect -f '{{.Size}}' "$tag")
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
log "$tag: $((size / 1000000)) MB ($(docker image inspect -f '{{.Id}}' "$tag" | cut -c8-19)), built in ${elapsed}s"
echo "$tag"
