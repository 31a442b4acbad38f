#!/bin/sh
# kustomize-deploy benchmark (opt-in, not run by CI): an overlay with 20 Deployments (3 replicas
# each) deployed by `gantry kustomize-deploy` vs `kubectl apply --server-side -k` followed by a
# sequential `kubectl rollout status` per Deployment, against the same fake Kubernetes API and
# scripted controller (gantry-test's FakeKube: 100 ms ticks, 300 ms observe lag, 500 ms pod start).
# Then the crash-loop detection latency: first pod in CrashLoopBackOff → gantry's `rollout failed`.
# Built with --release (the debug build measured 2.7x / 70 ms; release 3.5x / 6 ms on 2 shared cores).
# Needs kubectl 1.32 (google-cloud-sdk path or PATH). Rounds: GANTRY_BENCH_ROUNDS (default 3).
set -eu
cd "$(dirname "$0")/../.."
GANTRY_BENCH=1 exec cargo test --release --test integration kustomize_deploy::bench_twenty_deployments_vs_kubectl -- --nocapture
