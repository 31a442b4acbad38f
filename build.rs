//! Records the commit the binary is built from (`gantry --version`): `GANTRY_COMMIT` when set (the
//! Dockerfile passes it), else `git rev-parse`, else `unknown`.

#![allow(clippy::disallowed_methods)]

fn main() {
    println!("cargo:rerun-if-env-changed=GANTRY_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("GANTRY_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
        });
    println!(
        "cargo:rustc-env=GANTRY_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
