//! Integration tests: tag_metadata. The real binary in a scrubbed runner environment, with
//! recorded runner environments and event payloads (`tests/fixtures/tag-metadata/<kind>/`), the
//! GitHub API served by gantry-test's fake on loopback, and "now" pinned with SOURCE_DATE_EPOCH.

use std::path::PathBuf;

use gantry_test::TestContext;
use gantry_test::github::{FakeRepoApi, repo_json};
use serde_json::Value;

const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";
/// 2020-01-10T00:30:00Z, the instant upstream's tests pin.
const EPOCH: &str = "1578616200";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tag-metadata")
}

fn fake_api() -> FakeRepoApi {
    let api = FakeRepoApi::start();
    api.set_repo(
        "acme/hello",
        repo_json("acme/hello", "Hello service", Some("MIT")),
    );
    api
}

/// A runner context for a recorded event kind, talking to `api`.
fn ctx(kind: &str, api: &FakeRepoApi) -> TestContext {
    let mut c = TestContext::new();
    let dir = fixtures().join(kind);
    c.env_file(&dir.join("env"));
    let payload: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("event.json")).expect("event"))
            .expect("json");
    let text = std::fs::read_to_string(dir.join("env")).expect("env");
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("GITHUB_EVENT_NAME="))
        .unwrap_or("push")
        .to_string();
    c.event(&name, payload)
        .env("GITHUB_API_URL", &api.api_url())
        .env("SOURCE_DATE_EPOCH", EPOCH);
    c
}

fn lines(s: Option<&str>) -> Vec<&str> {
    s.unwrap_or_default().lines().collect()
}

#[test]
fn default_tags_for_every_recorded_event_kind() {
    let api = fake_api();
    let cases: &[(&str, &[&str])] = &[
        ("push-branch", &["ghcr.io/acme/hello:dev"]),
        ("push-default-branch", &["ghcr.io/acme/hello:master"]),
        (
            "push-tag",
            &["ghcr.io/acme/hello:v1.1.1", "ghcr.io/acme/hello:latest"],
        ),
        ("pull-request", &["ghcr.io/acme/hello:pr-15"]),
        ("pull-request-target", &["ghcr.io/acme/hello:pr-15"]),
        (
            "schedule",
            &["ghcr.io/acme/hello:nightly", "ghcr.io/acme/hello:master"],
        ),
        (
            "release",
            &["ghcr.io/acme/hello:v1.1.1", "ghcr.io/acme/hello:latest"],
        ),
        ("workflow-dispatch", &["ghcr.io/acme/hello:master"]),
    ];
    for (kind, want) in cases {
        let mut c = ctx(kind, &api);
        c.input("images", "ghcr.io/acme/hello");
        let r = c.run("tag-metadata");
        r.assert_success();
        assert_eq!(lines(r.output("tags")), *want, "{kind}\n{}", r.stdout);
    }
}

#[test]
fn push_tag_outputs_match_upstream_formats() {
    let api = fake_api();
    let mut c = ctx("push-tag", &api);
    c.input(
        "images",
        "ghcr.io/acme/hello\nname=docker.io/Acme/Hello,enable=true",
    )
    .input(
        "tags",
        "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=sha",
    )
    .input("labels", "maintainer=ops");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert_eq!(r.output("version"), Some("1.1.1"));
    assert_eq!(
        lines(r.output("tags")),
        vec![
            "ghcr.io/acme/hello:1.1.1",
            "ghcr.io/acme/hello:1.1",
            "ghcr.io/acme/hello:sha-860c190",
            "ghcr.io/acme/hello:latest",
            "docker.io/acme/hello:1.1.1",
            "docker.io/acme/hello:1.1",
            "docker.io/acme/hello:sha-860c190",
            "docker.io/acme/hello:latest",
        ]
    );
    assert_eq!(
        lines(r.output("tag-names")),
        vec!["1.1.1", "1.1", "sha-860c190", "latest"]
    );
    assert_eq!(
        lines(r.output("labels")),
        vec![
            "maintainer=ops",
            "org.opencontainers.image.created=2020-01-10T00:30:00.000Z",
            "org.opencontainers.image.description=Hello service",
            "org.opencontainers.image.licenses=MIT",
            &format!("org.opencontainers.image.revision={SHA}"),
            "org.opencontainers.image.source=https://github.com/acme/hello",
            "org.opencontainers.image.title=hello",
            "org.opencontainers.image.url=https://github.com/acme/hello",
            "org.opencontainers.image.version=1.1.1",
        ]
    );
    assert!(
        r.output("annotations")
            .unwrap_or_default()
            .starts_with("manifest:org.opencontainers.image.created=")
    );
    let json: Value = serde_json::from_str(r.output("json").expect("json")).expect("valid json");
    assert_eq!(json["tag-names"][1], "1.1");
    assert_eq!(json["labels"]["maintainer"], "ops");
    // Bake files are under the workspace and the output path is relative to it (host-usable).
    assert_eq!(
        std::fs::read_to_string(c.workspace().join(".gantry/.gitignore"))
            .ok()
            .as_deref(),
        Some("*\n")
    );
    let rel = r.output("bake-file-tags").expect("bake-file-tags");
    assert_eq!(
        rel,
        ".gantry/tag-metadata/docker-metadata-action-bake-tags.json"
    );
    let bake: Value =
        serde_json::from_str(&std::fs::read_to_string(c.workspace().join(rel)).expect("bake file"))
            .expect("json");
    assert_eq!(
        bake["target"]["docker-metadata-action"]["args"]["DOCKER_META_VERSION"],
        "1.1.1"
    );
    assert_eq!(
        bake["target"]["docker-metadata-action"]["args"]["DOCKER_META_IMAGES"],
        "ghcr.io/acme/hello,docker.io/acme/hello"
    );
    for name in ["bake-file-labels", "bake-file-annotations", "bake-file"] {
        let p = c.workspace().join(r.output(name).expect(name));
        assert!(p.is_file(), "{name}");
    }
    // Env mirror of every upstream output.
    for name in [
        "VERSION",
        "TAGS",
        "TAG_NAMES",
        "LABELS",
        "ANNOTATIONS",
        "JSON",
        "BAKE_FILE_TAGS",
        "BAKE_FILE_LABELS",
        "BAKE_FILE_ANNOTATIONS",
        "BAKE_FILE",
    ] {
        assert!(
            r.env_exports
                .contains_key(&format!("DOCKER_METADATA_OUTPUT_{name}")),
            "{name}"
        );
    }
    assert_eq!(
        r.env_exports
            .get("DOCKER_METADATA_OUTPUT_VERSION")
            .map(String::as_str),
        Some("1.1.1")
    );
    // Build args for build-image.
    assert_eq!(
        lines(r.output("build-args")),
        vec![
            "VERSION=1.1.1",
            &format!("COMMIT={SHA}"),
            "SHORT_SHA=860c190",
            "BUILD_DATE=2020-01-10T00:30:00.000Z"
        ]
    );
    // Log groups and summary.
    for g in [
        "::group::Docker image version",
        "::group::Docker tags",
        "::group::Docker labels",
        "::group::Annotations",
    ] {
        assert!(r.stdout.contains(g), "missing {g}\n{}", r.stdout);
    }
    assert!(
        r.summary.contains("| tag | ghcr.io/acme/hello:1.1.1 |"),
        "{}",
        r.summary
    );
    // The API was asked for the repository only (no commit lookup: no commit_date in use).
    let paths: Vec<String> = api.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths, vec!["/repos/acme/hello"]);
}

#[test]
fn separators_env_switches_and_build_arg_names() {
    let api = fake_api();
    let mut c = ctx("pull-request", &api);
    c.input("images", "x/y")
        .input(
            "tags",
            "type=ref,event=pr\ntype=sha\ntype=raw,value={{head_ref}}",
        )
        .input("sep-tags", ",")
        .input(
            "build-arg-names",
            "version=APP_VERSION\nshort-sha=\nbuild_date=CREATED",
        )
        .env("DOCKER_METADATA_PR_HEAD_SHA", "true")
        .env("DOCKER_METADATA_SHORT_SHA_LENGTH", "10")
        .env("DOCKER_METADATA_SET_OUTPUT_ENV", "false")
        .env("DOCKER_METADATA_ANNOTATIONS_LEVELS", "manifest,index");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert_eq!(
        r.output("tags"),
        Some("x/y:pr-15,x/y:feature-login,x/y:sha-5f3331d7f7")
    );
    assert!(r.env_exports.is_empty(), "{:?}", r.env_exports);
    let ann = lines(r.output("annotations"));
    assert_eq!(ann.len(), 16);
    assert!(ann[8].starts_with("index:"));
    assert!(
        r.output("labels")
            .unwrap_or_default()
            .contains("revision=5f3331d7f7044c18ca9f12c77d961c4d7cf3276a")
    );
    assert_eq!(
        lines(r.output("build-args")),
        vec![
            "APP_VERSION=pr-15",
            "COMMIT=5f3331d7f7044c18ca9f12c77d961c4d7cf3276a",
            "CREATED=2020-01-10T00:30:00.000Z"
        ]
    );
}

#[test]
fn api_failure_fails_with_the_url_and_writes_no_outputs() {
    let api = fake_api();
    api.fail("/repos/acme/hello", 500);
    let mut c = ctx("push-tag", &api);
    c.input("images", "x/y");
    let r = c.run("tag-metadata");
    r.assert_exit(1);
    let errs = r.error_lines().join("\n");
    assert!(
        errs.contains(&format!("{}/repos/acme/hello", api.api_url())) && errs.contains("500"),
        "{}",
        r.stdout
    );
    assert!(r.outputs.is_empty(), "{:?}", r.outputs);
    assert!(!c.workspace().join(".gantry").exists());
}

#[test]
fn unreachable_api_names_the_url() {
    let port = gantry_test::free_port();
    let api = fake_api();
    let mut c = ctx("push-branch", &api);
    c.env("GITHUB_API_URL", &format!("http://127.0.0.1:{port}"));
    let r = c.run("tag-metadata");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .join("\n")
            .contains(&format!("127.0.0.1:{port}/repos/acme/hello")),
        "{}",
        r.stdout
    );
}

#[test]
fn repo_api_fallback_uses_the_payload_with_a_warning() {
    let api = fake_api();
    api.fail("/repos/", 503);
    let mut c = ctx("push-branch", &api);
    c.input("repo-api-fallback", "true");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert!(r.stdout.contains("::warning"), "{}", r.stdout);
    assert!(
        r.output("labels")
            .unwrap_or_default()
            .contains("org.opencontainers.image.title=hello")
    );
    assert!(
        r.output("labels")
            .unwrap_or_default()
            .contains("org.opencontainers.image.licenses=\n")
    );
}

#[test]
fn enterprise_base_url_and_token_are_used_and_masked() {
    let api = FakeRepoApi::start_with_prefix("/api/v3");
    api.set_repo("acme/hello", repo_json("acme/hello", "d", None));
    let mut c = ctx("push-branch", &api);
    c.input("github-token", "ghs_secretTOKENvalue123");
    let r = c.run("tag-metadata");
    r.assert_success();
    let reqs = api.requests();
    assert_eq!(reqs[0].path, "/api/v3/repos/acme/hello");
    assert!(
        reqs[0]
            .authorization
            .as_deref()
            .unwrap_or_default()
            .contains("ghs_secretTOKENvalue123")
    );
    let leaked: Vec<&str> = r
        .all_output()
        .lines()
        .filter(|l| l.contains("ghs_secretTOKENvalue123") && !l.starts_with("::add-mask::"))
        .map(|_| "leak")
        .collect();
    assert!(leaked.is_empty(), "{}", r.all_output());
    assert!(r.stdout.contains("::add-mask::ghs_secretTOKENvalue123"));
}

#[test]
fn commit_date_follows_upstream_fallback_order() {
    let api = fake_api();
    api.set_commit("acme/hello", SHA, "2019-12-31T23:00:00Z");
    let tags = "type=raw,value={{commit_date 'YYYYMMDD-HHmmss'}}";
    // 1. payload commits[] by id (17:45:12+01:00)
    let mut c = ctx("push-branch", &api);
    c.input("tags", tags);
    assert_eq!(
        c.run("tag-metadata").output("version"),
        Some("20200109-164512")
    );
    // 2. head_commit when its id matches
    let mut c = ctx("push-tag", &api);
    c.input("tags", tags);
    assert_eq!(
        c.run("tag-metadata").output("version"),
        Some("20200109-235959")
    );
    // 3. the commits API
    let mut c = ctx("workflow-dispatch", &api);
    c.input("tags", tags);
    assert_eq!(
        c.run("tag-metadata").output("version"),
        Some("20191231-230000")
    );
    assert!(
        api.requests()
            .iter()
            .any(|q| q.path == format!("/repos/acme/hello/commits/{SHA}"))
    );
    // 4. now (SOURCE_DATE_EPOCH) when the API has no such commit
    let mut c = ctx("workflow-dispatch", &api);
    c.input("tags", tags)
        .env("GITHUB_SHA", "1111111111111111111111111111111111111111");
    assert_eq!(
        c.run("tag-metadata").output("version"),
        Some("20200110-003000")
    );
    // created-from: commit uses it for the label.
    let mut c = ctx("push-branch", &api);
    c.input("created-from", "commit");
    let r = c.run("tag-metadata");
    assert!(
        r.output("labels")
            .unwrap_or_default()
            .contains("created=2020-01-09T16:45:12.000Z"),
        "{:?}",
        r.output("labels")
    );
}

#[test]
fn latest_highest_semver_uses_paginated_repository_tags() {
    let api = fake_api();
    let mut many: Vec<String> = (0..150).map(|i| format!("v0.{i}.0")).collect();
    many.push("v1.2.0".into());
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    api.set_tags("acme/hello", &refs);
    let mut c = ctx("push-tag", &api);
    c.input("images", "x/y")
        .input("tags", "type=semver,pattern={{version}}")
        .input("flavor", "latest=highest-semver");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert_eq!(
        lines(r.output("tags")),
        vec!["x/y:1.1.1"],
        "hotfix of an older line must not move latest"
    );
    let pages = api
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/tags"))
        .count();
    assert_eq!(pages, 2);
    // The highest release gets latest.
    let api2 = fake_api();
    api2.set_tags("acme/hello", &["v1.1.1", "v1.0.0", "v2.0.0-rc.1"]);
    let mut c = ctx("push-tag", &api2);
    c.input("images", "x/y")
        .input("tags", "type=semver,pattern={{version}}")
        .input("flavor", "latest=highest-semver");
    assert_eq!(
        lines(c.run("tag-metadata").output("tags")),
        vec!["x/y:1.1.1", "x/y:latest"]
    );
}

#[test]
fn bad_inputs_fail_with_one_error_naming_input_and_value() {
    let api = fake_api();
    let cases: &[(&str, &str, &str)] = &[
        ("tags", "type=foo", "type=foo"),
        ("tags", "type=raw,value=x,enable=yes", "yes"),
        ("tags", "type=match,pattern=(unclosed", "(unclosed"),
        ("flavor", "latest=maybe", "latest=maybe"),
        ("images", "name=x,color=red", "color=red"),
        ("context", "cloud", "cloud"),
        ("labels", "\"unterminated", "unterminated"),
    ];
    for (input, value, needle) in cases {
        let mut c = ctx("push-tag", &api);
        c.input(input, value);
        let r = c.run("tag-metadata");
        r.assert_exit(1);
        let errs = r.error_lines();
        assert_eq!(errs.len(), 1, "{input}={value}\n{}", r.stdout);
        assert!(
            errs[0].contains(input) && errs[0].contains(needle),
            "{input}={value}: {}",
            errs[0]
        );
        assert!(r.outputs.is_empty());
    }
    // The toolkit's parseBool refuses anything but 1/t/true/0/f/false (any case form it lists).
    let mut c = ctx("push-tag", &api);
    c.env("DOCKER_METADATA_SET_OUTPUT_ENV", "no");
    let r = c.run("tag-metadata");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .join("")
            .contains("DOCKER_METADATA_SET_OUTPUT_ENV")
    );
    // A non-numeric short sha length fails only when a short sha is rendered.
    let mut c = ctx("push-tag", &api);
    c.input("tags", "type=sha")
        .env("DOCKER_METADATA_SHORT_SHA_LENGTH", "seven");
    let r = c.run("tag-metadata");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .join("")
            .contains("DOCKER_METADATA_SHORT_SHA_LENGTH is not a valid number: seven")
    );
}

#[test]
fn strict_mode_turns_surprises_into_errors() {
    let api = fake_api();
    for (tags, flavor) in [
        ("type=ref,event=tag,evnt=x", ""),
        ("type=raw,value=x,priority=high", ""),
        ("type=raw,value={{date 'YYYY' tz='Mars/Base'}}", ""),
        ("type=raw,value=latest\ntype=ref,event=tag", ""),
        ("type=ref,event=tag", "prefix=env=prod-"),
        ("type=semver,pattern={{version}},match=^app-(.*)$", ""),
    ] {
        let mut c = ctx("push-tag", &api);
        c.input("tags", tags).input("flavor", flavor);
        let loose = c.run("tag-metadata");
        loose.assert_success();
        c.input("strict", "true");
        let r = c.run("tag-metadata");
        r.assert_exit(1);
        assert_eq!(r.error_lines().len(), 1, "{tags} {flavor}\n{}", r.stdout);
    }
}

#[test]
fn laptop_cli_mode_takes_the_context_from_flags() {
    let mut c = TestContext::laptop();
    c.env_file(&fixtures().join("no-env/env"));
    c.env("SOURCE_DATE_EPOCH", EPOCH)
        .arg("--images")
        .arg("ghcr.io/acme/api")
        .arg("--tags")
        .arg("type=semver,pattern={{version}}")
        .arg("--tags")
        .arg("type=sha")
        .arg("--ref")
        .arg("refs/tags/v1.2.3")
        .arg("--sha")
        .arg(SHA)
        .arg("--output")
        .arg("json");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert!(
        r.stdout.contains(
            "ghcr.io/acme/api:1.2.3\\nghcr.io/acme/api:sha-860c190\\nghcr.io/acme/api:latest"
        ),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    // Files land in the working directory's .gantry/.
    assert!(
        c.workspace()
            .join(".gantry/tag-metadata/docker-metadata-action-bake.json")
            .is_file()
    );
}

#[test]
fn context_git_reads_the_checkout_without_git() {
    let api = fake_api();
    let mut c = ctx("workflow-dispatch", &api);
    let g = c.workspace().join(".git");
    std::fs::create_dir_all(g.join("refs/heads")).expect("mkdir");
    std::fs::write(g.join("HEAD"), format!("{SHA}\n")).expect("HEAD");
    std::fs::write(g.join("packed-refs"), format!("{SHA} refs/tags/v3.0.0\n")).expect("refs");
    c.input("context", "git")
        .input("tags", "type=semver,pattern={{version}}");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert_eq!(r.output("version"), Some("3.0.0"));
    std::fs::write(g.join("packed-refs"), "").expect("refs");
    let r = c.run("tag-metadata");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .join("")
            .contains("Cannot find detached HEAD ref")
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let api = fake_api();
    let mut c = ctx("push-tag", &api);
    c.input("images", "x/y").input("dry-run", "true");
    let r = c.run("tag-metadata");
    r.assert_success();
    assert!(r.stdout.contains("x/y:v1.1.1"), "{}", r.stdout);
    assert!(r.outputs.is_empty());
    assert!(!c.workspace().join(".gantry").exists());
}

#[test]
fn sigterm_during_the_api_call_cancels_promptly() {
    let api = fake_api();
    api.hang("/repos/acme/hello");
    let c = ctx("push-tag", &api);
    let mut cmd = c.command("tag-metadata");
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let start = std::time::Instant::now();
    while api.requests().is_empty() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    gantry_test::github::sigterm(&child);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert!(start.elapsed() < std::time::Duration::from_secs(15));
}
