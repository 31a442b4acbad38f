//! Test harness for gantry: [`TestContext`] runs the real `gantry` binary in a scrubbed runner-like
//! environment; component modules start real local services (registry, sshd, fake Slack/GitHub/Kubernetes APIs)
//! on free loopback ports and stop them on drop. Test-only code: it may spawn processes directly.
