#!/bin/sh
# ssh-release benchmark: a 20 MiB artifact to 1, 8 and 32 real sshd hosts, each behind a userspace
# TCP proxy adding 25 ms each way (50 ms RTT; the kernel here has no netem), gantry vs a sequential
# loop of per-command ssh/scp calls (the appleboy ssh-action/scp-action style). Handshakes are
# counted in the sshd logs ("Accepted publickey"). Needs root and openssh-server. Not run by CI.
#
#   bench/ssh-release/run.sh            # 1, 8, 32 hosts
#   GANTRY_BENCH_HOSTS=1,8 bench/ssh-release/run.sh
set -eu
cd "$(dirname "$0")/../.."
out="${GANTRY_BENCH_OUT:-$(pwd)/target/ssh-release-bench.md}"
cargo build --release -p gantry
# the release binary, and the harness (delay proxy) built with optimisations too
GANTRY_BIN="${GANTRY_BIN:-$(pwd)/target/release/gantry}" GANTRY_BENCH=1 GANTRY_BENCH_OUT="$out" \
  cargo test --release --test integration ssh_release::bench_ssh_release_vs_per_command_ssh -- --nocapture
echo "results: $out"
