//! Integration tests: the container contract. The image built from the Dockerfile's `local` target
//! (docker/build-local.sh, holding the binary under test) is run exactly the way the runner runs a
//! container action — `docker run --name … --label … --workdir /github/workspace --rm -e NAME… -v
//! …:/github/{runner_temp,home,workflow,file_commands,workspace} <image> <action>`, values only in
//! the docker CLI's environment, hyphenated `INPUT_*` names, a workspace owned by 1001:121 — and
//! the tests assert outputs, masking, exit codes, file ownership and signal handling. Static
//! checks of `actions/*/action.yml`, the Dockerfile and the release workflow need no daemon.
//!
//! Tests that need Docker print `SKIP: <reason>` when no daemon can start here
//! (`GANTRY_REQUIRE_DOCKER=1` makes that a failure). Tests that need an action's real behaviour
//! print `SKIP:` while that action is still the placeholder that says "not implemented yet".
//! This file must not reach anything but loopback.
//!
//! See: reference/runtime-and-slack.md A1.2–A1.7 and Appendix B.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gantry_test::docker::{self, ContainerResult, ContainerStep};
use serde_yaml::Value;

use gantry::ACTIONS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The local image holding the binary under test, or `SKIP:` and return.
macro_rules! image_or_skip {
    () => {
        match docker::ensure_daemon() {
            Ok(()) => docker::local_image(&gantry_test::gantry_bin()),
            Err(reason) => gantry_test::skip!("{reason}"),
        }
    };
}

/// The action crate still has the generated placeholder `run` (real behaviour not there yet).
fn placeholder(r: &ContainerResult) -> bool {
    r.all_output().contains("is not implemented yet")
}

/// Post-conditions of every container run: no panic or backtrace, an exit code from gantry's
/// contract (not a docker error), and nothing left in the workspace that its owner cannot remove.
#[track_caller]
fn assert_sane(step: &ContainerStep, r: &ContainerResult) {
    assert!(
        [0, 1, 130].contains(&r.status),
        "exit code outside gantry's contract (0, 1, 130):\n{}",
        r.dump()
    );
    for needle in ["panicked at", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !r.all_output().contains(needle),
            "`{needle}` in the output:\n{}",
            r.dump()
        );
    }
    let foreign = step.foreign_owned();
    assert!(
        foreign.is_empty(),
        "files not owned by the workspace owner {:?} (the runner user could not clean them): {foreign:?}\n{}",
        step.owner(),
        r.dump()
    );
    let (ok, ps, _) = docker::docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("name=^{}$", step.name()),
    ]);
    assert!(
        ok && ps.trim().is_empty(),
        "container {} still exists after the run (--rm)",
        step.name()
    );
}

// ---------------------------------------------------------------------------------------------
// Static contract: action metadata, Dockerfile, release workflow. No daemon needed.

#[test]
fn every_action_yml_runs_gantry_in_docker_with_entrypoint_and_args() {
    let digest = regex::Regex::new(r"^docker://[a-z0-9./_-]+@sha256:[0-9a-f]{64}$").expect("re");
    let known: Vec<&str> = ACTIONS.iter().map(|s| s.name).collect();
    let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
    for entry in std::fs::read_dir(root().join("actions")).expect("actions/") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(
            known.contains(&name),
            "actions/{name}/ is not one of the five actions {known:?}"
        );
        files.push((dir.join("action.yml"), Some(name.to_string())));
    }
    for name in &known {
        assert!(
            files.iter().any(|(_, n)| n.as_deref() == Some(*name)),
            "actions/{name}/action.yml is missing"
        );
    }
    files.push((root().join("action.yml"), None));
    let mut published: Vec<String> = Vec::new();
    for (path, name) in &files {
        let v: Value =
            serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let runs = &v["runs"];
        let at = path.display();
        assert_eq!(runs["using"].as_str(), Some("docker"), "{at}: runs.using");
        // Without runs.entrypoint the legacy `with: entrypoint:` input could replace gantry.
        assert_eq!(
            runs["entrypoint"].as_str(),
            Some("/usr/local/bin/gantry"),
            "{at}: runs.entrypoint must be set to the binary (A1.5)"
        );
        let args = runs["args"].as_sequence().unwrap_or_else(|| {
            panic!("{at}: runs.args must be set (else the legacy `args` input is spliced in)")
        });
        let first = args.first().and_then(Value::as_str);
        match name {
            Some(n) => assert_eq!(first, Some(n.as_str()), "{at}: args[0] is the subcommand"),
            None => assert_eq!(
                first,
                Some("${{ inputs.command }}"),
                "{at}: the root action dispatches on its `command` input"
            ),
        }
        for key in ["pre-entrypoint", "post-entrypoint"] {
            if let Some(e) = runs[key].as_str() {
                assert!(e.starts_with("/usr/local/bin/"), "{at}: {key} `{e}`");
            }
        }
        let image = runs["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: runs.image"));
        if image.starts_with("docker://") {
            assert!(
                digest.is_match(image),
                "{at}: a published image is pinned by digest, got `{image}`"
            );
            published.push(image.to_string());
        } else {
            // The runner builds the Dockerfile with its parent directory as context.
            let dockerfile = path.parent().expect("dir").join(image);
            let dockerfile = dockerfile
                .canonicalize()
                .unwrap_or_else(|e| panic!("{at}: image `{image}` does not exist: {e}"));
            assert_eq!(
                dockerfile,
                root()
                    .join("Dockerfile")
                    .canonicalize()
                    .expect("Dockerfile"),
                "{at}: image must be the repository's Dockerfile (context = repo root)"
            );
        }
    }
    published.dedup();
    assert!(
        published.len() <= 1 || published.iter().all(|p| p == &published[0]),
        "actions point at different images: {published:?}"
    );
    assert!(
        published.is_empty() || published.len() == 1,
        "either every action uses the published image or none does"
    );
}

/// The Dockerfile, checked as text: the rules the runner and GitHub impose, and the ordering the
/// local (legacy-builder) build depends on.
#[test]
fn dockerfile_follows_the_container_action_rules() {
    let text = read(&root().join("Dockerfile"));
    // Joined logical lines, comments dropped.
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for raw in text.lines() {
        let t = raw.trim();
        if t.starts_with('#') && cur.is_empty() {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            if !cur.trim().is_empty() {
                lines.push(cur.trim().to_string());
            }
            cur.clear();
        }
    }
    let upper = |l: &str| {
        l.split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    };
    let stages: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| upper(l) == "FROM")
        .map(|(i, l)| (i, l.as_str()))
        .collect();
    assert!(stages.len() >= 3, "multi-stage: {stages:?}");
    let stage_name = |l: &str| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.iter()
            .position(|x| x.eq_ignore_ascii_case("AS"))
            .and_then(|i| w.get(i + 1))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    // The local target comes first, from the local base: the legacy builder builds every stage
    // up to --target, and must not pull anything.
    let (_, first) = stages[0];
    assert_eq!(stage_name(first), "local", "first stage: {first}");
    assert!(first.contains("${LOCAL_BASE}"), "local stage base: {first}");
    // The last stage is the from-source runtime (what `image: Dockerfile` builds without --target).
    let (last_at, last) = *stages.last().expect("stages");
    assert_eq!(stage_name(last), "runtime", "last stage: {last}");
    let final_stage = &lines[last_at..];
    let entry: Vec<&String> = final_stage
        .iter()
        .filter(|l| upper(l) == "ENTRYPOINT")
        .collect();
    assert_eq!(
        entry.last().map(|s| s.as_str()),
        Some(r#"ENTRYPOINT ["/usr/local/bin/gantry"]"#),
        "exec-form ENTRYPOINT (a shell drops INPUT_DRY-RUN)"
    );
    assert!(
        final_stage
            .iter()
            .any(|l| l.contains("COPY --from=build") && l.contains("/usr/local/bin/gantry")),
        "the runtime stage takes the binary from the source build"
    );
    for l in &lines {
        assert!(
            !matches!(upper(l).as_str(), "USER" | "WORKDIR"),
            "GitHub's container-action rules forbid `{l}`"
        );
        // Syntax the Docker 20.10 legacy builder cannot parse (it parses every stage).
        for bad in ["--mount", "--link", "--checksum", "<<EOF"] {
            assert!(!l.contains(bad), "legacy builder cannot parse `{bad}`: {l}");
        }
    }
    let build = lines
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build step");
    assert!(
        build.contains("--locked") && build.contains("--release"),
        "{build}"
    );
    assert!(build.contains("GANTRY_COMMIT"), "{build}");
    // kubectl: 1.32, pinned per architecture by sha256 and checked.
    let sha = regex::Regex::new(r"KUBECTL_SHA256_(AMD64|ARM64)=[0-9a-f]{64}\b").expect("re");
    assert_eq!(
        sha.find_iter(&text).count(),
        2,
        "kubectl sha256 for amd64 and arm64"
    );
    assert!(text.contains("KUBECTL_VERSION=1.32."), "kubectl 1.32.x");
    assert!(text.contains("sha256sum -c"), "the download is verified");
    for label in ["source", "revision", "version", "title", "licenses"] {
        assert!(
            text.contains(&format!("org.opencontainers.image.{label}=")),
            "OCI label {label}"
        );
    }
    let runtime_pkgs = final_stage
        .iter()
        .find(|l| l.contains("apt-get install"))
        .expect("runtime packages");
    for p in [
        "ca-certificates",
        "openssh-client",
        "git",
        "--no-install-recommends",
    ] {
        assert!(runtime_pkgs.contains(p), "runtime stage installs {p}");
    }
}

/// The from-source build's context is an allowlist (`.dockerignore`): everything `cargo build
/// --locked --bin gantry` reads must be in it — the workspace manifests and every file a crate
/// pulls in with `include_str!`/`include_bytes!` — and `target/` and `.git/` must not.
#[test]
fn dockerignore_allowlist_keeps_what_the_source_build_reads() {
    let text = read(&root().join(".dockerignore"));
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.first(), Some(&"*"), "an allowlist starts with `*`");
    let allowed: Vec<String> = rules
        .iter()
        .filter_map(|r| r.strip_prefix('!'))
        .map(|r| r.trim_end_matches('/').to_string())
        .collect();
    let kept = |rel: &Path| {
        let rel = rel.to_string_lossy();
        allowed
            .iter()
            .any(|a| rel == a.as_str() || rel.starts_with(&format!("{a}/")))
    };
    for needed in ["Cargo.toml", "Cargo.lock", "build.rs", "crates", "xtask"] {
        assert!(
            kept(Path::new(needed)),
            "`{needed}` is not in the build context"
        );
    }
    for denied in ["target", ".git"] {
        assert!(
            !kept(Path::new(denied)),
            "`{denied}` must stay out of the context"
        );
    }
    // `[[test]]`/`[[bin]]` paths of the root manifest must exist in the context too.
    for p in manifest_target_paths(&read(&root().join("Cargo.toml"))) {
        assert!(
            kept(Path::new(&p)),
            "Cargo.toml names `{p}`, outside the context"
        );
    }
    let include = regex::Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)"#).expect("re");
    let mut sources = Vec::new();
    collect_rs(&root().join("crates"), &mut sources);
    sources.push(root().join("build.rs"));
    for src in sources {
        let code = read(&src);
        for c in include.captures_iter(&code) {
            let target = src.parent().expect("dir").join(&c[1]);
            let target = target.canonicalize().unwrap_or(target);
            let rel = target.strip_prefix(root()).unwrap_or(&target);
            assert!(
                kept(rel),
                "{} includes `{}`, which .dockerignore leaves out of the image build",
                src.display(),
                rel.display()
            );
        }
    }
}

/// The `path = "…"` values of a Cargo manifest's target tables (`[[bin]]`, `[[test]]`).
fn manifest_target_paths(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| {
            let rest = l
                .trim()
                .strip_prefix("path")?
                .trim_start()
                .strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_string())
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// gantry's own release workflow: pinned, least privilege, no expression injection, and it
/// rewrites the action metadata to the pushed digest with the xtask.
#[test]
#[allow(clippy::disallowed_methods)] // runs external validators
fn release_workflow_is_pinned_least_privilege_and_pins_the_digest() {
    let path = root().join(".github/workflows/release.yml");
    let text = read(&path);
    let v: Value = serde_yaml::from_str(&text).expect("release.yml parses");
    assert_eq!(
        v["permissions"].as_mapping().map(|m| m.len()),
        Some(0),
        "top-level `permissions: {{}}`"
    );
    let pinned = regex::Regex::new(r"^[^@\s]+@[0-9a-f]{40}$").expect("re");
    let uses_line = regex::Regex::new(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$").expect("re");
    for line in text.lines() {
        if let Some(c) = uses_line.captures(line) {
            let target = &c[1];
            assert!(pinned.is_match(target), "not pinned by full SHA: {line}");
            assert!(
                c[2].contains("# v"),
                "a pinned `uses:` carries its version comment: {line}"
            );
        }
    }
    let jobs = v["jobs"].as_mapping().expect("jobs");
    for (job, body) in jobs {
        let job = job.as_str().unwrap_or_default();
        for step in body["steps"].as_sequence().into_iter().flatten() {
            if let Some(run) = step["run"].as_str() {
                assert!(
                    !run.contains("${{"),
                    "{job}: pass expressions to run: through env, not inline:\n{run}"
                );
            }
            if step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
            {
                assert_eq!(
                    step["with"]["persist-credentials"].as_bool(),
                    Some(false),
                    "{job}: checkout with persist-credentials: false"
                );
            }
        }
    }
    let xtask =
        regex::Regex::new(r"cargo (\+\S+ )?run .*-p xtask -- generate --image ").expect("re");
    assert!(
        xtask.is_match(&text),
        "the release rewrites the action metadata with the xtask"
    );
    assert!(text.contains("@sha256:"), "the metadata points at a digest");
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(text.contains(platform), "builds {platform}");
    }

    // The validators .ci/run installs; without them only the checks above ran.
    let tool = |name: &str| {
        let venv = root().join("target/ci-venv/bin").join(name);
        if venv.exists() {
            Some(venv)
        } else {
            gantry_test::have_program(name).then(|| PathBuf::from(name))
        }
    };
    let Some(cj) = tool("check-jsonschema") else {
        gantry_test::skip!("check-jsonschema not installed: schema and zizmor checks not run");
    };
    let out = std::process::Command::new(cj)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&path)
        .output()
        .expect("check-jsonschema");
    assert!(
        out.status.success(),
        "schema: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(z) = tool("zizmor") else {
        gantry_test::skip!("zizmor not installed: zizmor check not run");
    };
    let out = std::process::Command::new(z)
        .args([
            "--offline",
            "--persona",
            "auditor",
            "--min-severity",
            "low",
            "--no-progress",
        ])
        .arg(&path)
        .output()
        .expect("zizmor");
    assert!(
        out.status.success(),
        "zizmor (auditor persona): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The image, run the runner's way.

#[test]
fn image_config_follows_the_rules_and_ships_the_tools() {
    let image = image_or_skip!();
    let (ok, json, err) = docker::docker(&["image", "inspect", "-f", "{{json .Config}}", &image]);
    assert!(ok, "{err}");
    let cfg: serde_json::Value = serde_json::from_str(&json).expect("config json");
    assert_eq!(cfg["User"].as_str().unwrap_or(""), "", "no USER: {cfg}");
    assert_eq!(
        cfg["WorkingDir"].as_str().unwrap_or(""),
        "",
        "no WORKDIR: {cfg}"
    );
    assert_eq!(
        cfg["Entrypoint"],
        serde_json::json!(["/usr/local/bin/gantry"]),
        "exec-form entrypoint: {cfg}"
    );
    assert!(
        cfg["Cmd"].is_null() || cfg["Cmd"].as_array().is_some_and(Vec::is_empty),
        "no CMD: the runner passes the subcommand as args: {cfg}"
    );
    let labels = &cfg["Labels"];
    for l in ["source", "revision", "version", "title"] {
        assert!(
            labels[format!("org.opencontainers.image.{l}")]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "label {l}: {labels}"
        );
    }
    // The programs the actions drive, as the runner's environment would find them.
    for (tool, args, expect) in [
        ("/usr/local/bin/gantry", vec!["--version"], "gantry "),
        (
            "kubectl",
            vec!["version", "--client"],
            "Client Version: v1.32.",
        ),
        ("ssh", vec!["-V"], "OpenSSH_"),
        ("git", vec!["--version"], "git version"),
        ("docker", vec!["--version"], "Docker version"),
    ] {
        let mut a = vec!["run", "--rm", "--entrypoint", tool, image.as_str()];
        a.extend(args);
        let (ok, out, err) = docker::docker(&a);
        assert!(
            ok && format!("{out}{err}").contains(expect),
            "{tool}: {out}{err}"
        );
    }
    let (ok, out, _) = docker::docker(&["image", "inspect", "-f", "{{.Size}}", &image]);
    assert!(ok);
    let mb = out.trim().parse::<u64>().unwrap_or(0) / 1_000_000;
    assert!(mb > 0 && mb < 450, "image size {mb} MB");
}

/// Every action's dry run through the runner's exact command line: gantry is PID 1, the
/// hyphenated `INPUT_DRY-RUN` arrives (a placeholder without it would exit 1), and an action that
/// cannot dry-run without more inputs says which one, in one `::error` line.
#[test]
fn every_action_dry_runs_as_pid1_through_the_runner_command_line() {
    let image = image_or_skip!();
    for spec in ACTIONS {
        let mut step = ContainerStep::new(&image);
        step.input("dry-run", "true");
        let r = step.run(&[spec.name]);
        assert_sane(&step, &r);
        if r.status == 0 {
            continue;
        }
        assert_eq!(r.status, 1, "{}: {}", spec.name, r.dump());
        let errors = r.error_lines();
        assert_eq!(
            errors.len(),
            1,
            "{}: one ::error line\n{}",
            spec.name,
            r.dump()
        );
        assert!(
            spec.all_inputs().any(|i| errors[0].contains(i.name)),
            "{}: a dry run may only fail on its inputs, naming one:\n{}",
            spec.name,
            r.dump()
        );
    }
}

#[test]
fn bad_boolean_exits_1_with_one_error_line_naming_input_and_value() {
    let image = image_or_skip!();
    for spec in ACTIONS {
        let mut step = ContainerStep::new(&image);
        step.input("dry-run", "yes please");
        let r = step.run(&[spec.name]);
        assert_sane(&step, &r);
        assert_eq!(r.status, 1, "{}: {}", spec.name, r.dump());
        let errors = r.error_lines();
        assert_eq!(
            errors.len(),
            1,
            "{}: exactly one ::error line\n{}",
            spec.name,
            r.dump()
        );
        assert!(
            errors[0].contains("dry-run") && errors[0].contains("yes please"),
            "{}: the error names the input and the value: {}",
            spec.name,
            errors[0]
        );
        assert!(
            r.output_file.is_empty(),
            "{}: nothing is written on an input error:\n{}",
            spec.name,
            r.output_file
        );
    }
}

/// Without a required input, an action stops before doing anything, with exit 1 and one
/// `::error` line `Input required and not supplied: <name>`.
#[test]
fn missing_required_input_exits_1_naming_it() {
    let image = image_or_skip!();
    let mut checked = Vec::new();
    let mut placeholders = Vec::new();
    for spec in ACTIONS {
        // Declared-required inputs, or conditionally required ones the action decides itself:
        // run with nothing but `dry-run` (so nothing could be changed) and see who objects.
        let mut step = ContainerStep::new(&image);
        step.input("dry-run", "true");
        let r = step.run(&[spec.name]);
        assert_sane(&step, &r);
        let declared: Vec<&str> = spec
            .all_inputs()
            .filter(|i| i.required && i.default.is_none())
            .map(|i| i.name)
            .collect();
        if r.status == 0 {
            assert!(
                declared.is_empty(),
                "{}: required inputs {declared:?} missing, yet the dry run succeeded:\n{}",
                spec.name,
                r.dump()
            );
            if r.stdout.contains("Resolved inputs") {
                placeholders.push(spec.name);
            }
            continue;
        }
        let errors = r.error_lines();
        if let Some(line) = errors
            .iter()
            .find(|l| l.contains("Input required and not supplied: "))
        {
            assert_eq!(errors.len(), 1, "{}: {}", spec.name, r.dump());
            let name = line
                .rsplit("Input required and not supplied: ")
                .next()
                .unwrap_or_default()
                .trim();
            assert!(
                spec.all_inputs()
                    .any(|i| name.starts_with(i.name) || name.contains(i.name)),
                "{}: names an input of the action: {line}",
                spec.name
            );
            assert!(
                r.output_file.is_empty(),
                "{}: no outputs on input errors",
                spec.name
            );
            checked.push(spec.name);
        }
    }
    if checked.is_empty() {
        gantry_test::skip!(
            "no action reports a missing required input yet (placeholders: {placeholders:?})"
        );
    }
}

/// A secret input is masked with `::add-mask::` before anything else can print it, and never
/// appears anywhere else: not on stdout, stderr, in outputs, `GITHUB_ENV` or the summary. Run
/// twice per action: single-line values, and multi-line ones (keys, `.env` content), where no
/// line of the value may show up outside the mask command.
#[test]
fn secret_inputs_are_masked_before_any_use_and_never_leak() {
    let image = image_or_skip!();
    let mut seen_secret = false;
    for spec in ACTIONS {
        let secrets: Vec<&str> = spec
            .all_inputs()
            .filter(|i| i.secret)
            .map(|i| i.name)
            .collect();
        if secrets.is_empty() {
            continue;
        }
        seen_secret = true;
        for multiline in [false, true] {
            let mut step = ContainerStep::new(&image);
            step.input("dry-run", "true");
            let mut values = BTreeMap::new();
            for s in &secrets {
                let mut v = format!("s3cr3t-{s}-{}", docker::random_hex());
                if multiline {
                    v.push_str(&format!(
                        "\nline2-{}\nline3-{}",
                        docker::random_hex(),
                        docker::random_hex()
                    ));
                }
                step.input(s, &v);
                values.insert(*s, v);
            }
            // Plausible companions so the dry run reaches the point where secrets are read.
            for (name, value) in [("channel", "C0123456"), ("status", "success")] {
                if spec.input(name).is_some() {
                    step.input(name, value);
                }
            }
            let r = step.run(&[spec.name]);
            assert_sane(&step, &r);
            for (name, v) in &values {
                for part in v.lines() {
                    let mut masked = false;
                    for line in r.stdout.lines() {
                        if !line.contains(part) {
                            continue;
                        }
                        if line.starts_with("::add-mask::") {
                            masked = true;
                            continue;
                        }
                        panic!(
                            "{}: secret `{name}` printed {}: {line}\n{}",
                            spec.name,
                            if masked {
                                "despite its mask"
                            } else {
                                "before ::add-mask::"
                            },
                            r.dump()
                        );
                    }
                    for (what, text) in [
                        ("stderr", &r.stderr),
                        ("set_output", &r.output_file),
                        ("set_env", &r.env_file),
                        ("summary", &r.summary),
                    ] {
                        assert!(
                            !text.contains(part),
                            "{}: secret `{name}` in {what}:\n{text}",
                            spec.name
                        );
                    }
                }
            }
        }
    }
    if !seen_secret {
        gantry_test::skip!("no action declares a secret input yet");
    }
}

/// Inputs for a `tag-metadata` run on the default push-to-main event. The GitHub API is a closed
/// loopback port (the harness default), so the repository data comes from the event payload.
fn tag_metadata_inputs(step: &mut ContainerStep) {
    let spec = &gantry_tag_metadata::ACTION;
    step.input("images", "ghcr.io/octo-org/octo-app");
    if spec.input("repo-api-fallback").is_some() {
        step.input("repo-api-fallback", "true");
    }
}

/// `tag-metadata` on a push to main: outputs land in the runner's `set_output_<guid>` file in the
/// heredoc form with a random delimiter, the runner's parser reads them back, they are declared
/// outputs, and the default tag is metadata-action's `type=ref,event=branch` one.
#[test]
fn outputs_land_in_the_set_output_file_as_heredocs() {
    let image = image_or_skip!();
    let spec = &gantry_tag_metadata::ACTION;
    if spec.input("images").is_none() {
        gantry_test::skip!("tag-metadata has no `images` input yet");
    }
    let mut step = ContainerStep::new(&image);
    tag_metadata_inputs(&mut step);
    let r = step.run(&[spec.name]);
    if placeholder(&r) {
        gantry_test::skip!("tag-metadata is still the placeholder");
    }
    assert_sane(&step, &r);
    assert_eq!(r.status, 0, "{}", r.dump());
    assert!(!r.outputs.is_empty(), "no outputs:\n{}", r.dump());
    let header =
        regex::Regex::new(r"^([A-Za-z0-9_-]+)<<(ghadelimiter_[0-9a-f-]{36})$").expect("re");
    let mut lines = r.output_file.lines();
    let mut delimiters = Vec::new();
    while let Some(line) = lines.next() {
        let c = header
            .captures(line)
            .unwrap_or_else(|| panic!("not a heredoc header: `{line}`\n{}", r.output_file));
        let delim = c[2].to_string();
        assert!(
            lines.by_ref().any(|l| l == delim),
            "unterminated heredoc for {}",
            &c[1]
        );
        delimiters.push(delim);
    }
    let unique: std::collections::BTreeSet<_> = delimiters.iter().collect();
    assert_eq!(
        unique.len(),
        delimiters.len(),
        "a fresh delimiter per value"
    );
    for key in r.outputs.keys() {
        assert!(
            spec.outputs.iter().any(|o| o.name == key),
            "undeclared output `{key}`"
        );
    }
    let tags = r
        .outputs
        .get("tags")
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        tags.lines().any(|t| t == "ghcr.io/octo-org/octo-app:main"),
        "push to main tags `:main`: {tags:?}"
    );
}

/// Files an action writes into the workspace (here: tag-metadata's file outputs) belong to the
/// workspace owner on the host, not to the container's root.
#[test]
fn files_written_into_the_workspace_belong_to_its_owner() {
    let image = image_or_skip!();
    let mut step = ContainerStep::new(&image);
    tag_metadata_inputs(&mut step);
    let r = step.run(&["tag-metadata"]);
    if placeholder(&r) {
        gantry_test::skip!("tag-metadata is still the placeholder; no file outputs to check");
    }
    assert_sane(&step, &r);
    assert_eq!(r.status, 0, "{}", r.dump());
    // Output values that name files: they must exist on the host, inside the workspace.
    let mut files = Vec::new();
    for (k, v) in &r.outputs {
        let v = v.trim();
        let rel = v
            .strip_prefix(docker::CONTAINER_WORKSPACE)
            .map(|s| s.trim_start_matches('/'))
            .unwrap_or(v);
        if rel.is_empty() || rel.contains('\n') || rel.starts_with('/') {
            continue;
        }
        let host = step.workspace().join(rel);
        if host.is_file() {
            files.push((k.clone(), host));
        }
    }
    let mut written = Vec::new();
    walk_files(&step.workspace(), &mut written);
    if written.is_empty() {
        gantry_test::skip!(
            "tag-metadata wrote no file into the workspace; only the ownership invariant was checked"
        );
    }
    for (k, host) in files {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&host).expect("stat");
        assert_eq!(
            (m.uid(), m.gid()),
            step.owner(),
            "output {k}: {}",
            host.display()
        );
    }
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A loopback server that accepts connections and never answers: an action talking to it waits
/// until its own timeout. Reports each accepted connection.
fn black_hole() -> (u16, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            let _ = tx.send(());
            // Read what comes, never write; keep the socket open.
            let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            held.push(c);
        }
    });
    (port, rx)
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    /// `docker stop`: SIGTERM to PID 1 (the container's own shutdown path).
    DockerStop,
    /// SIGINT to the `docker run` client, which proxies it: what the runner does on cancel.
    ClientSigint,
}

/// An action that waits on a loopback peer that never answers.
#[derive(Clone, Copy, Debug)]
enum Waiting {
    /// `notify-slack` posting to a Slack API that accepts and never responds.
    SlackPost,
    /// `ssh-release` connecting to an "sshd" that accepts and never sends its banner.
    SshConnect,
}

impl Waiting {
    fn action(self) -> &'static str {
        match self {
            Self::SlackPost => "notify-slack",
            Self::SshConnect => "ssh-release",
        }
    }

    /// Sets the inputs that make the action talk to `127.0.0.1:port`; `false` when the action
    /// does not have them (yet).
    fn setup(self, step: &mut ContainerStep, port: u16) -> bool {
        match self {
            Self::SlackPost => {
                let spec = &gantry_notify_slack::ACTION;
                if ["token", "channel", "api"]
                    .iter()
                    .any(|i| spec.input(i).is_none())
                {
                    return false;
                }
                step.input("token", "xoxb-0000-test-token")
                    .input("channel", "C0123456")
                    .input("status", "started")
                    .input("api", &format!("http://127.0.0.1:{port}/"));
                if spec.input("fail-on-error").is_some() {
                    step.input("fail-on-error", "true");
                }
                true
            }
            Self::SshConnect => {
                let spec = &gantry_ssh_release::ACTION;
                if ["hosts", "ssh-key", "known-hosts", "artifact", "deploy-path"]
                    .iter()
                    .any(|i| spec.input(i).is_none())
                {
                    return false;
                }
                let (key, host_key) = ssh_keys(&step.runner_temp());
                step.write_workspace_file("app/index.html", b"hello\n");
                step.input("hosts", &format!("deploy@127.0.0.1:{port}"))
                    .input("ssh-key", &key)
                    .input("known-hosts", &format!("[127.0.0.1]:{port} {host_key}"))
                    .input("artifact", "app")
                    .input("deploy-path", "/srv/app");
                true
            }
        }
    }
}

/// A throwaway client key (OpenSSH private key text) and host public key (`type base64`).
#[allow(clippy::disallowed_methods)] // test fixture: runs ssh-keygen
fn ssh_keys(dir: &Path) -> (String, String) {
    let mut out = Vec::new();
    for name in ["client_key", "host_key"] {
        let path = dir.join(name);
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "gantry-test", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen (openssh-client)");
        assert!(st.success(), "ssh-keygen failed");
        out.push(path);
    }
    let key = read(&out[0]);
    let host = read(&out[1].with_extension("pub"));
    let host: Vec<&str> = host.split_whitespace().take(2).collect();
    for p in &out {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_extension("pub"));
    }
    (key, host.join(" "))
}

/// Starts the waiting action, waits until it is connected to the black hole, stops it `how`,
/// and returns (time from the signal to the end of `docker run`, the step, the result). `None`
/// when the action lacks the inputs or is still the placeholder.
fn stop_waiting_action(
    image: &str,
    what: Waiting,
    how: Stop,
) -> Option<(Duration, ContainerStep, ContainerResult)> {
    let action = what.action();
    let (port, accepted) = black_hole();
    let mut step = ContainerStep::new(image);
    // The only deviation from the runner's line: share the host's network namespace so the
    // container reaches the loopback peer (the runner adds --network only for job containers).
    step.docker_arg("--network=host");
    if !what.setup(&mut step, port) {
        return None;
    }
    let mut running = step.spawn(&[action]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if accepted.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        if let Ok(Some(_)) = running.child.try_wait() {
            let out = running.child.wait_with_output().expect("output");
            let r = step.result(
                &[action],
                out.status.code().unwrap_or(-1),
                &out.stdout,
                &out.stderr,
                running.started.elapsed(),
            );
            if placeholder(&r) {
                return None;
            }
            panic!("{action} ended before reaching its peer:\n{}", r.dump());
        }
        assert!(
            Instant::now() < deadline,
            "{action} did not connect to its peer within 30 s"
        );
    }
    // Let it settle inside the exchange, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    match how {
        Stop::DockerStop => {
            let (ok, _, err) = docker::docker(&["stop", "--time", "10", &running.name]);
            assert!(ok, "docker stop: {err}");
        }
        Stop::ClientSigint => running.interrupt(),
    }
    // Bound the test: what has not ended 12 s after the signal (the runner would have sent
    // SIGTERM at 7.5 s and killed the client at 10 s) is killed and reported.
    while running.child.try_wait().ok().flatten().is_none()
        && t0.elapsed() < Duration::from_secs(12)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    if running.child.try_wait().ok().flatten().is_none() {
        let _ = docker::docker(&["kill", &running.name]);
    }
    let out = running.child.wait_with_output().expect("docker run output");
    let took = t0.elapsed();
    let r = step.result(
        &[action],
        out.status.code().unwrap_or(-1),
        &out.stdout,
        &out.stderr,
        running.started.elapsed(),
    );
    Some((took, step, r))
}

/// Runs every waiting scenario concurrently, stopped `how`; each must end within 2 s with the
/// cancelled exit code 130 and leave nothing behind. Failures are reported together.
fn assert_waiting_actions_stop(how: Stop) {
    let image = match docker::ensure_daemon() {
        Ok(()) => docker::local_image(&gantry_test::gantry_bin()),
        Err(reason) => gantry_test::skip!("{reason}"),
    };
    let handles: Vec<_> = [Waiting::SlackPost, Waiting::SshConnect]
        .into_iter()
        .map(|w| {
            let image = image.clone();
            (
                w,
                std::thread::spawn(move || stop_waiting_action(&image, w, how)),
            )
        })
        .collect();
    let mut failures = Vec::new();
    let mut ran = Vec::new();
    for (w, h) in handles {
        match h.join() {
            Err(p) => failures.push(format!(
                "{}: {}",
                w.action(),
                p.downcast_ref::<String>().cloned().unwrap_or_default()
            )),
            Ok(None) => {}
            Ok(Some((took, step, r))) => {
                ran.push(w.action());
                if took >= Duration::from_secs(2) || r.status != 130 {
                    failures.push(format!(
                        "{} did not end within 2 s with exit 130 after {how:?}: took {took:?}\n{}",
                        w.action(),
                        r.dump()
                    ));
                } else {
                    assert_sane(&step, &r);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    if ran.is_empty() {
        gantry_test::skip!("no action waits on the network yet (placeholders)");
    }
}

/// A loopback Slack API that answers every request `429 Too Many Requests` with
/// `Retry-After: 20`: notify-slack then sleeps before retrying, in a wait that observes
/// cancellation. Reports each answered request.
fn rate_limited_api() -> (u16, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 65536];
            let _ = c.read(&mut buf);
            use std::io::Write;
            let _ = c.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 20\r\nContent-Type: application/json\r\nContent-Length: 35\r\nConnection: close\r\n\r\n{\"ok\":false,\"error\":\"ratelimited\"}",
            );
            let _ = tx.send(());
        }
    });
    (port, rx)
}

/// The positive control for the stop tests below: when the action waits in a place that
/// observes cancellation (notify-slack sleeping out a Slack `Retry-After`), `docker stop`'s
/// SIGTERM goes through gantry's PID-1 init to the action and the container is gone within 2 s
/// with exit 130.
#[test]
fn docker_stop_during_a_cancellable_wait_exits_130_within_two_seconds() {
    let image = image_or_skip!();
    let spec = &gantry_notify_slack::ACTION;
    if ["token", "channel", "api"]
        .iter()
        .any(|i| spec.input(i).is_none())
    {
        gantry_test::skip!("notify-slack has no token/channel/api inputs yet");
    }
    let (port, answered) = rate_limited_api();
    let mut step = ContainerStep::new(&image);
    step.docker_arg("--network=host");
    step.input("token", "xoxb-0000-test-token")
        .input("channel", "C0123456")
        .input("api", &format!("http://127.0.0.1:{port}/"));
    let mut running = step.spawn(&["notify-slack"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.recv_timeout(Duration::from_millis(100)).is_err() {
        if let Ok(Some(_)) = running.child.try_wait() {
            let out = running.child.wait_with_output().expect("output");
            let r = step.result(
                &["notify-slack"],
                out.status.code().unwrap_or(-1),
                &out.stdout,
                &out.stderr,
                running.started.elapsed(),
            );
            if placeholder(&r) {
                gantry_test::skip!("notify-slack is still the placeholder");
            }
            panic!("notify-slack ended before calling the API:\n{}", r.dump());
        }
        assert!(
            Instant::now() < deadline,
            "notify-slack never called the API"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let (ok, _, err) = docker::docker(&["stop", "--time", "10", &running.name]);
    assert!(ok, "docker stop: {err}");
    let out = running.child.wait_with_output().expect("docker run output");
    let took = t0.elapsed();
    let r = step.result(
        &["notify-slack"],
        out.status.code().unwrap_or(-1),
        &out.stdout,
        &out.stderr,
        running.started.elapsed(),
    );
    assert!(
        took < Duration::from_secs(2),
        "stopped after {took:?}\n{}",
        r.dump()
    );
    assert_eq!(r.status, 130, "cancelled exit code\n{}", r.dump());
    assert_eq!(r.error_lines().len(), 1, "one ::error line\n{}", r.dump());
    assert_sane(&step, &r);
}

/// `docker stop` sends SIGTERM to PID 1: gantry's init forwards it, the action cancels its
/// in-flight work, and the container is gone within 2 s with exit 130 (a PID 1 that ignores the
/// signal, or an action that finishes a 15 s request first, is SIGKILLed after the grace period;
/// on a runner, after 7.5 s + 2.5 s).
#[test]
fn docker_stop_ends_a_waiting_action_within_two_seconds() {
    assert_waiting_actions_stop(Stop::DockerStop);
}

/// The runner cancels by sending SIGINT to the `docker run` client (then SIGTERM after 7.5 s);
/// the client proxies it to PID 1, and the step ends promptly.
#[test]
fn sigint_to_the_docker_client_cancels_like_the_runner() {
    assert_waiting_actions_stop(Stop::ClientSigint);
}
