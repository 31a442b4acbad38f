//! The README's first command, `bash demo/run`, end to end: tag → build → promote → deploy →
//! release → notify against the local components, with the real binary.

#![allow(clippy::disallowed_methods)] // runs the demo script

use std::process::Command;

#[test]
fn demo_pipeline_succeeds() {
    let root = env!("CARGO_MANIFEST_DIR");
    if !gantry_test::have_program("ssh") || gantry_test::registry::registry_binary().is_none() {
        gantry_test::skip!(
            "the demo needs openssh and docker-registry (bash .ci/run installs them)"
        );
    }
    let out = Command::new("bash")
        .arg(format!("{root}/demo/run"))
        .current_dir(root)
        .output()
        .expect("run demo/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo/run failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("demo: pipeline succeeded"), "{stdout}");
    assert!(stdout.contains("digest         sha256:"), "{stdout}");
    assert!(
        !stdout.contains("BEGIN OPENSSH PRIVATE KEY"),
        "the demo printed the SSH key"
    );
}
