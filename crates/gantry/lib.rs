//! The registry of gantry's actions: the one list the binary dispatches on, `xtask` generates
//! metadata from, and the tests check. Adding an action means adding it here (and a match arm in
//! `main.rs`); nothing else may keep its own list.

use gantry_runtime::ActionSpec;

/// Every action, in README order.
pub const ACTIONS: &[&ActionSpec] = &[
    &gantry_tag_metadata::ACTION,
    &gantry_build_image::ACTION,
    &gantry_kustomize_deploy::ACTION,
    &gantry_ssh_release::ACTION,
    &gantry_notify_slack::ACTION,
];
