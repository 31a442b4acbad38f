//! Test harness for gantry: [`TestContext`] runs the real `gantry` binary in a scrubbed runner-like
//! environment; component modules start real local services (registry, sshd, fake Slack/GitHub/Kubernetes APIs)
//! on free loopback ports and stop them on drop. Test-only code: it may spawn processes directly.

mod context;
mod net;
pub mod faultproxy; // fault-injecting HTTP proxy in front of a registry (build-image retries)
pub mod registry; // docker-registry on loopback: plain, Basic+TLS, token auth (build-image)

pub use context::{RunResult, TestContext, gantry_bin, insta_filters};
pub use net::{free_port, have_program, wait_for_port};
