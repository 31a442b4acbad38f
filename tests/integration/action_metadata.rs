//! The action metadata is generated from the crates' tables and checked here: every committed
//! `action.yml` and the README tables equal a fresh rendering; shared input names mean the same
//! thing; every action.yml has the shape the runner needs; the example workflows are valid,
//! pinned, least-privilege, and use only inputs our actions declare.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gantry_runtime::metadata::{
    DEFAULT_IMAGE, render_action_yml, render_root_action_yml, shared_input_conflicts, update_readme,
};
use serde_yaml::Value;

use gantry::ACTIONS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The committed image reference of an action.yml (Dockerfile on main, a digest after release).
fn committed_image(p: &Path) -> String {
    let v: Value = serde_yaml::from_str(&read(p)).expect("action.yml parses");
    v["runs"]["image"]
        .as_str()
        .unwrap_or(DEFAULT_IMAGE)
        .to_string()
}

#[test]
fn action_yml_files_match_the_tables() {
    for spec in ACTIONS {
        let path = root().join("actions").join(spec.name).join("action.yml");
        let expected = render_action_yml(spec, &committed_image(&path));
        assert_eq!(
            read(&path),
            expected,
            "{} is stale: run `cargo run -p xtask -- generate`",
            path.display()
        );
    }
    let path = root().join("action.yml");
    assert_eq!(
        read(&path),
        render_root_action_yml(ACTIONS, &committed_image(&path)),
        "action.yml is stale: run `cargo run -p xtask -- generate`"
    );
}

#[test]
fn readme_tables_match_the_tables() {
    let readme = read(&root().join("README.md"));
    let expected = update_readme(&readme, ACTIONS).expect("README has the generated-table markers");
    assert!(
        readme == expected,
        "README tables are stale: run `cargo run -p xtask -- generate`"
    );
}

#[test]
fn shared_input_names_mean_the_same_thing() {
    let conflicts = shared_input_conflicts(ACTIONS);
    assert!(conflicts.is_empty(), "{conflicts:#?}");
}

#[test]
fn every_action_yml_has_the_runner_shape() {
    let id = regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_-]*$").expect("regex");
    let digest = regex::Regex::new(r"@sha256:[0-9a-f]{64}$").expect("regex");
    let mut files: Vec<PathBuf> = ACTIONS
        .iter()
        .map(|s| root().join("actions").join(s.name).join("action.yml"))
        .collect();
    files.push(root().join("action.yml"));
    for p in files {
        let v: Value = serde_yaml::from_str(&read(&p)).expect("parses");
        let runs = &v["runs"];
        assert_eq!(runs["using"].as_str(), Some("docker"), "{}", p.display());
        assert_eq!(
            runs["entrypoint"].as_str(),
            Some("/usr/local/bin/gantry"),
            "{}: set runs.entrypoint explicitly",
            p.display()
        );
        assert!(
            runs["args"].as_sequence().is_some_and(|a| a.len() == 1),
            "{}: runs.args must be the one command word",
            p.display()
        );
        let image = runs["image"].as_str().expect("image");
        let is_dockerfile = image.ends_with("Dockerfile");
        let is_digest = image.starts_with("docker://") && digest.is_match(image);
        assert!(
            is_dockerfile || is_digest,
            "{}: image must be a Dockerfile path or docker://…@sha256:",
            p.display()
        );
        if let Some(inputs) = v["inputs"].as_mapping() {
            for (k, spec) in inputs {
                let k = k.as_str().expect("string key");
                assert!(id.is_match(k), "{}: input id `{k}`", p.display());
                assert!(
                    spec["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{}: `{k}` lacks a description",
                    p.display()
                );
            }
        }
    }
}

fn declared_inputs(action: &str) -> Option<BTreeSet<String>> {
    if action.is_empty() {
        let mut all: BTreeSet<String> = ACTIONS
            .iter()
            .flat_map(|s| s.all_inputs().map(|i| i.name.to_string()))
            .collect();
        all.insert("command".into());
        return Some(all);
    }
    ACTIONS
        .iter()
        .find(|s| s.name == action)
        .map(|s| s.all_inputs().map(|i| i.name.to_string()).collect())
}

/// For a `uses:` of one of our actions, the action name (`""` for the root dispatcher).
fn our_action(uses: &str) -> Option<String> {
    let path = uses.split('@').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("./actions/") {
        return Some(rest.trim_end_matches('/').to_string());
    }
    if path == "./" || path == "." {
        return Some(String::new());
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() >= 2 && parts[1] == "gantry" {
        return Some(if parts.len() >= 4 && parts[2] == "actions" {
            parts[3].to_string()
        } else {
            String::new()
        });
    }
    None
}

fn example_workflows() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("workflows-examples"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn example_workflows_exist_for_every_pipeline() {
    let names: Vec<String> = example_workflows()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for want in [
        "ci",
        "release",
        "deploy-kubernetes",
        "deploy-ssh",
        "hotfix",
        "rollback",
        "promote",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "workflows-examples/{want}.yml is missing (have {names:?})"
        );
    }
}

#[test]
fn example_workflows_are_valid_pinned_and_least_privilege() {
    let sha = regex::Regex::new(r"@[0-9a-f]{40}$").expect("re");
    let expr_in_run = regex::Regex::new(r"\$\{\{").expect("re");
    for p in example_workflows() {
        let name = p.display().to_string();
        let v: Value = serde_yaml::from_str(&read(&p)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            v["on"].is_mapping() || v["on"].is_string() || v["on"].is_sequence(),
            "{name}: no `on:`"
        );
        assert!(
            v["permissions"].as_mapping().is_some_and(|m| m.is_empty()),
            "{name}: top-level `permissions: {{}}` required"
        );
        let jobs = v["jobs"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}: no jobs"));
        for (job_id, job) in jobs {
            let job_id = job_id.as_str().unwrap_or("?");
            assert!(
                job["runs-on"].is_string() || job["uses"].is_string(),
                "{name}: job {job_id} has no runs-on"
            );
            for step in job["steps"].as_sequence().into_iter().flatten() {
                if let Some(run) = step["run"].as_str() {
                    assert!(
                        !expr_in_run.is_match(run),
                        "{name}/{job_id}: `${{{{ }}}}` inside run: (pass it through env:)"
                    );
                }
                let Some(uses) = step["uses"].as_str() else {
                    continue;
                };
                if let Some(action) = our_action(uses) {
                    let declared = declared_inputs(&action).unwrap_or_else(|| {
                        panic!("{name}/{job_id}: unknown gantry action `{action}`")
                    });
                    for (k, _) in step["with"].as_mapping().into_iter().flatten() {
                        let k = k.as_str().unwrap_or("");
                        assert!(
                            declared.contains(k),
                            "{name}/{job_id}: input `{k}` is not declared by `{action}`"
                        );
                    }
                    if !uses.starts_with("./") {
                        assert!(
                            sha.is_match(uses),
                            "{name}/{job_id}: pin `{uses}` by full commit SHA"
                        );
                    }
                } else if !uses.starts_with("./") && !uses.starts_with("docker://") {
                    assert!(
                        sha.is_match(uses),
                        "{name}/{job_id}: pin `{uses}` by full commit SHA"
                    );
                }
                if uses.starts_with("actions/checkout@") {
                    assert_eq!(
                        step["with"]["persist-credentials"].as_bool(),
                        Some(false),
                        "{name}/{job_id}: checkout needs persist-credentials: false"
                    );
                }
            }
        }
    }
}

fn tool(name: &str) -> Option<PathBuf> {
    let venv = root().join("target/ci-venv/bin").join(name);
    if venv.exists() {
        return Some(venv);
    }
    gantry_test::have_program(name).then(|| PathBuf::from(name))
}

#[test]
#[allow(clippy::disallowed_methods)] // runs external validators
fn schemas_validate_actions_and_workflows() {
    let Some(cj) = tool("check-jsonschema") else {
        gantry_test::skip!(
            "check-jsonschema is not installed (.ci/run installs it into target/ci-venv)"
        );
    };
    let mut actions: Vec<PathBuf> = ACTIONS
        .iter()
        .map(|s| root().join("actions").join(s.name).join("action.yml"))
        .collect();
    actions.push(root().join("action.yml"));
    let out = std::process::Command::new(&cj)
        .arg("--builtin-schema")
        .arg("vendor.github-actions")
        .args(&actions)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wfs = example_workflows();
    let out = std::process::Command::new(&cj)
        .arg("--builtin-schema")
        .arg("vendor.github-workflows")
        .args(&wfs)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // runs external validators
fn zizmor_finds_nothing_medium_or_worse() {
    let Some(z) = tool("zizmor") else {
        gantry_test::skip!("zizmor is not installed (.ci/run installs it into target/ci-venv)");
    };
    let out = std::process::Command::new(&z)
        .args([
            "--offline",
            "--min-severity",
            "medium",
            "--no-progress",
            "--config",
        ])
        .arg(root().join("zizmor.yml"))
        .arg(root().join("workflows-examples"))
        .arg(root().join("actions"))
        .output()
        .expect("run zizmor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "zizmor: {text}");
}
