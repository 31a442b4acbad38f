//! Repository chores. `cargo run -p xtask -- generate` writes every `actions/<name>/action.yml`,
//! the root dispatcher `action.yml` and the README input/output tables from the action crates'
//! tables; `--check` fails (exit 1) when a committed file differs instead of writing it;
//! `--image docker://ghcr.io/OWNER/gantry@sha256:…` points the metadata at a published image (the
//! release workflow uses it). The same rendering is checked by `tests/integration/action_metadata.rs`.

#![allow(clippy::print_stderr)] // a developer tool: it reports to the terminal

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use gantry_runtime::metadata::{
    DEFAULT_IMAGE, render_action_yml, render_root_action_yml, shared_input_conflicts, update_readme,
};

use gantry::ACTIONS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut check = false;
    let mut image: Option<String> = None;
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("generate") => {}
        _ => bail!(
            "usage: cargo run -p xtask -- generate [--check] [--image docker://REF@sha256:DIGEST]"
        ),
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = true,
            "--image" => image = it.next().cloned(),
            other => bail!("unknown argument `{other}`"),
        }
    }
    if let Some(img) = &image
        && !(img.starts_with("docker://") && img.contains("@sha256:"))
    {
        bail!("--image must be docker://<ref>@sha256:<digest> (pinned by digest), got `{img}`");
    }
    let conflicts = shared_input_conflicts(ACTIONS);
    if !conflicts.is_empty() {
        for c in &conflicts {
            eprintln!("input `{}` shared by {:?}: {}", c.name, c.actions, c.reason);
        }
        bail!("inputs shared by several actions must mean the same thing");
    }
    let root = root();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for spec in ACTIONS {
        let img = image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        files.push((
            root.join("actions").join(spec.name).join("action.yml"),
            render_action_yml(spec, &img),
        ));
    }
    let root_img = image.clone().unwrap_or_else(|| "Dockerfile".to_string());
    files.push((
        root.join("action.yml"),
        render_root_action_yml(ACTIONS, &root_img),
    ));
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).context("reading README.md")?;
    files.push((
        readme_path,
        update_readme(&readme, ACTIONS).map_err(anyhow::Error::msg)?,
    ));

    let mut stale = Vec::new();
    for (path, content) in files {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == content {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated files are stale (run `cargo run -p xtask -- generate`): {}",
            stale.join(", ")
        );
    }
    Ok(())
}
