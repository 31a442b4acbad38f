//! Test harness for gantry: [`TestContext`] runs the real `gantry` binary in a scrubbed runner-like
//! environment; component modules start real local services (registry, sshd, fake Slack/GitHub/Kubernetes APIs)
//! on free loopback ports and stop them on drop. Test-only code: it may spawn processes directly.

mod context;
pub mod docker; // the runner's `docker run` replayed against the locally built image (container contract)
pub mod faultproxy; // fault-injecting HTTP proxy in front of a registry (build-image retries)
pub mod github; // fake GitHub repository API: repos, commits, paginated tags (tag-metadata)
pub mod github_deployments; // fake GitHub deployments API (notify-slack)
pub mod kube; // fake Kubernetes API server (kustomize-deploy)
mod net;
pub mod registry; // docker-registry on loopback: plain, Basic+TLS, token auth (build-image)
pub mod serve; // an axum router on a loopback port, stopped on drop (shared by the fake APIs)
pub mod slack; // fake Slack Web API + incoming webhook (notify-slack)
pub mod sshd; // real sshd hosts on 127.0.0.N + a delay proxy (ssh-release)

pub use context::{RunResult, TestContext, gantry_bin, insta_filters};
pub use net::{free_port, have_program, wait_for_port};
