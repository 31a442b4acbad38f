//! End-to-end tests of the real `gantry` binary, run in a scrubbed environment with real local
//! components (registry, sshd, fake Slack/GitHub/Kubernetes APIs) started by `gantry-test`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod action_metadata; // generated action.yml / README tables match the crates' tables; example workflows valid
mod build_image; // build, assemble, merge, promote against a local registry
mod build_image_assemble; // assemble: same digest on one core and all, gzip(1) decodes layers, failed uploads tag nothing
mod cli; // --help, --version, unknown flags, exit codes, runner contract basics
mod container; // the image run with the runner's exact `docker run` flags
mod demo; // the README's demo pipeline, end to end
mod kustomize_deploy; // render, apply, wait, rollback against the fake Kubernetes API
mod notify_slack; // post, update, thread, rate limits against the fake Slack API
mod ssh_release; // releases against real sshd hosts
mod tag_metadata; // recorded runner environments and events → tags, labels, annotations
