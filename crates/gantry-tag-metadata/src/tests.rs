//! Table-driven tests of the rules, ported from the behaviour upstream's test suite pins (our own
//! cases and wording), one named test per "surprising behaviour" of
//! `reference/metadata-action.md` §12 (`b01_…` to `b24_…`), and property tests.

use chrono::{TimeZone, Utc};
use gantry_github::{RepoInfo, RepoLicense};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::labels::{self, Defaults};
use crate::meta::{self, Computed, MetaContext, MetaError};
use crate::tags;

const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn payload() -> Value {
    json!({"repository": {"default_branch": "master"}})
}

fn ctx(event: &str, git_ref: &str) -> MetaContext {
    ctx_with(event, git_ref, payload())
}

fn ctx_with(event: &str, git_ref: &str, payload: Value) -> MetaContext {
    let t = Utc
        .with_ymd_and_hms(2020, 1, 10, 0, 30, 0)
        .single()
        .unwrap_or_default();
    MetaContext {
        event_name: event.into(),
        git_ref: meta::workflow_ref(event, git_ref, &payload),
        sha: SHA.into(),
        payload,
        commit_date: Utc
            .with_ymd_and_hms(2020, 1, 9, 23, 15, 45)
            .single()
            .unwrap_or_default(),
        now: t,
        short_sha_length: None,
        head_ref: String::new(),
        api_default_branch: "master".into(),
        strict: false,
    }
}

fn run(
    c: &MetaContext,
    images: &[&str],
    tag_lines: &[&str],
    flavor: &[&str],
) -> Result<Computed, MetaError> {
    let images = tags::parse_images(&s(images))?;
    let t = tags::parse_tags(&s(tag_lines), c.strict)?;
    let f = tags::parse_flavor(&s(flavor), c.strict)?;
    meta::compute(c, &images, &t, &f, None)
}

fn names(c: &MetaContext, tag_lines: &[&str], flavor: &[&str]) -> Vec<String> {
    match run(c, &[], tag_lines, flavor) {
        Ok(r) => r.tag_names,
        Err(e) => vec![format!("ERR {e}")],
    }
}

/// (event, ref, tags, flavor, expected tag names)
type Case = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const CASES: &[Case] = &[
    // default tags
    ("push", "refs/heads/dev", &[], &[], &["dev"]),
    ("push", "refs/tags/v1.1.1", &[], &[], &["v1.1.1", "latest"]),
    ("pull_request", "refs/pull/15/merge", &[], &[], &["pr-15"]),
    (
        "schedule",
        "refs/heads/master",
        &[],
        &[],
        &["nightly", "master"],
    ),
    (
        "release",
        "refs/tags/v1.1.1",
        &[],
        &[],
        &["v1.1.1", "latest"],
    ),
    // semver
    (
        "push",
        "refs/tags/v1.1.1",
        &[
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
            "type=semver,pattern={{major}}",
        ],
        &[],
        &["1.1.1", "1.1", "1", "latest"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=semver,pattern={{raw}}"],
        &[],
        &["v1.1.1", "latest"],
    ),
    (
        "push",
        "refs/tags/v2.0.8-beta.67",
        &[
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
        ],
        &[],
        &["2.0.8-beta.67"],
    ),
    (
        "push",
        "refs/tags/v2.0.8-beta.67",
        &["type=semver,pattern={{raw}}"],
        &[],
        &["v2.0.8-beta.67"],
    ),
    (
        "push",
        "refs/tags/v1.1.1+build.5",
        &["type=semver,pattern={{version}}"],
        &[],
        &["1.1.1", "latest"],
    ),
    (
        "push",
        "refs/tags/release1",
        &["type=semver,pattern={{version}}"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/tags/v0.29",
        &["type=semver,pattern={{version}}"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/tags/sometag",
        &["type=semver,pattern={{version}},value=v1.2.3"],
        &[],
        &["1.2.3", "latest"],
    ),
    (
        "push",
        "refs/tags/app/v1.2.3",
        &["type=semver,pattern={{version}},match=^app/(.*)$"],
        &[],
        &["1.2.3", "latest"],
    ),
    (
        "push",
        "refs/tags/feature/v1.2.3",
        &["type=semver,pattern={{version}}"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/heads/dev",
        &["type=semver,pattern={{version}}"],
        &[],
        &[],
    ),
    // pep440
    (
        "push",
        "refs/tags/v1.1.1",
        &[
            "type=pep440,pattern={{version}}",
            "type=pep440,pattern={{major}}.{{minor}}",
        ],
        &[],
        &["1.1.1", "1.1", "latest"],
    ),
    (
        "push",
        "refs/tags/1.2",
        &["type=pep440,pattern={{major}}.{{minor}}"],
        &[],
        &["1.2", "latest"],
    ),
    (
        "push",
        "refs/tags/1.1beta2",
        &["type=pep440,pattern={{version}}"],
        &[],
        &["1.1b2"],
    ),
    (
        "push",
        "refs/tags/1.2post1",
        &["type=pep440,pattern={{major}}"],
        &[],
        &["1.2.post1"],
    ),
    (
        "push",
        "refs/tags/1.0dev4",
        &["type=pep440,pattern={{raw}}"],
        &[],
        &["1.0dev4"],
    ),
    (
        "push",
        "refs/tags/v1.2.3rc2",
        &["type=pep440,pattern={{version}}"],
        &[],
        &["1.2.3rc2"],
    ),
    // match
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=match,pattern=\\d.\\d.\\d"],
        &[],
        &["1.1.1", "latest"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=match,pattern=v(\\d.\\d),group=1"],
        &[],
        &["1.1", "latest"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=match,pattern=/V(\\d)/i,group=1"],
        &[],
        &["1", "latest"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=match,pattern=v(\\d),group=3"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=match,pattern=v(\\d),group=01"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/tags/abc",
        &["type=match,pattern=\\d"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/tags/v1.2.3",
        &["type=match,pattern=/\\d/g,group=2"],
        &[],
        &["3", "latest"],
    ),
    // edge
    ("push", "refs/heads/master", &["type=edge"], &[], &["edge"]),
    ("push", "refs/heads/dev", &["type=edge"], &[], &[]),
    (
        "push",
        "refs/heads/dev",
        &["type=edge,branch=dev"],
        &[],
        &["edge"],
    ),
    // ref
    (
        "push",
        "refs/heads/feature/new-ui",
        &["type=ref,event=branch"],
        &[],
        &["feature-new-ui"],
    ),
    (
        "push",
        "refs/tags/v1.0.0-rc.1",
        &["type=ref,event=tag"],
        &[],
        &["v1.0.0-rc.1", "latest"],
    ),
    (
        "pull_request",
        "refs/pull/15/merge",
        &["type=ref,event=pr,prefix="],
        &[],
        &["15"],
    ),
    // raw
    (
        "push",
        "refs/heads/dev",
        &[
            "type=raw,value=foo",
            "bar",
            "type=raw,value={{branch}}-{{sha}}",
        ],
        &[],
        &["foo", "bar", "dev-860c190"],
    ),
    (
        "push",
        "refs/heads/dev",
        &["type=raw,value=x,enable={{is_default_branch}}"],
        &[],
        &[],
    ),
    (
        "push",
        "refs/heads/master",
        &["type=raw,value=x,enable={{is_default_branch}}"],
        &[],
        &["x"],
    ),
    // sha
    (
        "push",
        "refs/heads/dev",
        &["type=sha"],
        &[],
        &["sha-860c190"],
    ),
    (
        "push",
        "refs/heads/dev",
        &["type=sha,format=long,prefix="],
        &[],
        &[SHA],
    ),
    // flavor
    (
        "push",
        "refs/heads/dev",
        &["type=ref,event=branch"],
        &["latest=true"],
        &["dev", "latest"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=semver,pattern={{version}}"],
        &["latest=false"],
        &["1.1.1"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=semver,pattern={{version}}"],
        &["prefix=foo-", "suffix=-bar,onlatest=true"],
        &["foo-1.1.1-bar", "latest-bar"],
    ),
    (
        "pull_request",
        "refs/pull/15/merge",
        &["type=ref,event=pr", "type=sha"],
        &["prefix=glo-,suffix=-bal"],
        &["pr-15-bal", "sha-860c190-bal"],
    ),
    (
        "push",
        "refs/heads/dev",
        &["type=ref,event=branch,suffix="],
        &["suffix=-x"],
        &["dev"],
    ),
    // priorities
    (
        "push",
        "refs/tags/v1.1.1",
        &[
            "type=raw,value=a,priority=2000",
            "type=semver,pattern={{version}}",
        ],
        &[],
        &["a", "1.1.1"],
    ),
    (
        "push",
        "refs/tags/v1.1.1",
        &["type=sha", "type=ref,event=tag", "type=raw,value=r"],
        &[],
        &["v1.1.1", "r", "sha-860c190", "latest"],
    ),
];

#[test]
fn upstream_table() {
    for (i, (event, r, t, f, want)) in CASES.iter().enumerate() {
        let got = names(&ctx(event, r), t, f);
        assert_eq!(got, s(want), "case {i}: {event} {r} {t:?} {f:?}");
    }
}

#[test]
fn images_prefix_every_tag_in_image_order() {
    let r = run(
        &ctx("push", "refs/tags/v1.1.1"),
        &["Org/App,ghcr.io/Org/App"],
        &["type=semver,pattern={{version}}"],
        &[],
    )
    .unwrap_or_default();
    assert_eq!(
        r.tags,
        s(&[
            "org/app:1.1.1",
            "org/app:latest",
            "ghcr.io/org/app:1.1.1",
            "ghcr.io/org/app:latest"
        ])
    );
    assert_eq!(r.images, s(&["org/app", "ghcr.io/org/app"]));
}

#[test]
fn b01_latest_decided_by_first_value_in_priority_order() {
    let c = ctx("push", "refs/tags/v1.1.1");
    // sha with a higher priority than semver: no latest on a release (#163).
    assert_eq!(
        names(
            &c,
            &[
                "type=sha,priority=40",
                "type=semver,pattern={{version}},priority=20"
            ],
            &[]
        ),
        s(&["sha-860c190", "1.1.1"])
    );
    // a pre-release semver entry (900) blocks a match entry (800) from adding latest (#377).
    let c = ctx("push", "refs/tags/v1.2.0-rc.1");
    assert_eq!(
        names(
            &c,
            &[
                "type=semver,pattern={{version}}",
                "type=match,pattern=v(\\d.\\d),group=1"
            ],
            &[]
        ),
        s(&["1.2.0-rc.1", "1.2"])
    );
}

#[test]
fn b02_ref_tag_and_match_always_vote_latest() {
    let c = ctx("push", "refs/tags/v2.0.0-alpha.1");
    assert_eq!(
        names(&c, &["type=ref,event=tag"], &[]),
        s(&["v2.0.0-alpha.1", "latest"])
    );
    assert_eq!(
        names(&c, &["type=match,pattern=alpha"], &[]),
        s(&["alpha", "latest"])
    );
    assert_eq!(
        names(&c, &["type=semver,pattern={{version}}"], &[]),
        s(&["2.0.0-alpha.1"])
    );
    let c = ctx("push", "refs/tags/1.0rc1");
    assert_eq!(
        names(&c, &["type=pep440,pattern={{version}}"], &[]),
        s(&["1.0rc1"])
    );
}

#[test]
fn b03_prerelease_ignores_pattern_unless_raw() {
    let c = ctx("push", "refs/tags/v5.1.0-rc.1");
    assert_eq!(
        names(&c, &["type=semver,pattern=v{{version}}"], &[]),
        s(&["5.1.0-rc.1"])
    );
    assert_eq!(
        names(
            &c,
            &[
                "type=semver,pattern={{major}}",
                "type=semver,pattern={{major}}.{{minor}}"
            ],
            &[]
        ),
        s(&["5.1.0-rc.1"])
    );
    assert_eq!(
        names(&c, &["type=semver,pattern={{ raw }}"], &[]),
        s(&["v5.1.0-rc.1"])
    );
}

#[test]
fn b04_semver_match_uses_group_one_and_fails_open() {
    let c = ctx("push", "refs/tags/app-v1.2.3");
    assert_eq!(
        names(
            &c,
            &["type=semver,pattern={{version}},match=app-(v\\d.*)"],
            &[]
        ),
        s(&["1.2.3", "latest"])
    );
    // No match: a warning, and the unmatched text continues (here: not a semver, no tag).
    let r = run(
        &c,
        &[],
        &["type=semver,pattern={{version}},match=^web-(.*)$"],
        &[],
    )
    .unwrap_or_default();
    assert!(r.tag_names.is_empty() && r.warnings.iter().any(|w| w.contains("does not match")));
    let c2 = ctx("push", "refs/tags/v1.2.3");
    assert_eq!(
        names(
            &c2,
            &["type=semver,pattern={{version}},match=^web-(.*)$"],
            &[]
        ),
        s(&["1.2.3", "latest"])
    );
    // No capture group: upstream crashes; we fail with a clear error.
    assert!(matches!(
        run(
            &c,
            &[],
            &["type=semver,pattern={{version}},match=app-v"],
            &[]
        ),
        Err(MetaError::NoGroup { .. })
    ));
    let mut strict = c2.clone();
    strict.strict = true;
    assert!(matches!(
        run(
            &strict,
            &[],
            &["type=semver,pattern={{version}},match=^web-(.*)$"],
            &[]
        ),
        Err(MetaError::Strict { .. })
    ));
}

#[test]
fn b05_value_makes_semver_pep440_match_apply_on_any_event() {
    let c = ctx("push", "refs/heads/dev");
    assert_eq!(
        names(&c, &["type=semver,pattern={{major}},value=v3.1.0"], &[]),
        s(&["3", "latest"])
    );
    assert_eq!(
        names(&c, &["type=pep440,pattern={{version}},value=2.0"], &[]),
        s(&["2.0", "latest"])
    );
    assert_eq!(
        names(&c, &["type=match,pattern=\\d+,value=build-42"], &[]),
        s(&["42", "latest"])
    );
}

#[test]
fn b06_per_tag_prefix_suppresses_flavor_and_pr_sha_have_defaults() {
    let c = ctx("pull_request", "refs/pull/15/merge");
    assert_eq!(
        names(
            &c,
            &[
                "type=ref,event=pr",
                "type=raw,value=x",
                "type=raw,value=y,prefix="
            ],
            &["prefix=glo-"]
        ),
        s(&["pr-15", "glo-x", "y"])
    );
}

#[test]
fn b07_flavor_on_latest_is_unevaluated_and_needs_onlatest() {
    let c = ctx("push", "refs/tags/v1.0.0");
    assert_eq!(
        names(
            &c,
            &["type=ref,event=tag"],
            &["prefix={{tag}}-,onlatest=true"]
        ),
        s(&["v1.0.0-v1.0.0", "-tag--latest"])
    );
    assert_eq!(
        names(&c, &["type=ref,event=tag"], &["suffix=-slim"]),
        s(&["v1.0.0-slim", "latest"])
    );
}

#[test]
fn b08_flavor_and_images_split_every_equal_tags_the_first() {
    let f =
        tags::parse_flavor(&s(&["suffix=-{{date 'YYYY' tz='UTC'}}"]), false).unwrap_or_default();
    assert_eq!(f.suffix, "-{{date 'YYYY' tz");
    let c = ctx("push", "refs/heads/dev");
    assert!(
        run(
            &c,
            &[],
            &["type=ref,event=branch"],
            &["suffix=-{{date 'YYYY' tz='UTC'}}"]
        )
        .is_err()
    );
    assert_eq!(
        tags::parse_images(&s(&["name=a=b"])).unwrap_or_default()[0].name,
        "a"
    );
    assert_eq!(names(&c, &["type=raw,value=a=b"], &[]), s(&["a-b"]));
    let l = labels_of(&c, &["k=v=w"]);
    assert!(l.contains(&("k".into(), "v=w".into())));
}

#[test]
fn b09_list_layer_strips_leading_quotes() {
    let entries = crate::csv::input_list("type=match,\"pattern=\\d{1,2}\"").unwrap_or_default();
    // The comma inside {1,2} now splits the attribute: the pattern is cut to `\d{1`.
    let t = tags::parse_tag(&entries[0], false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.attr("pattern"), "\\d{1");
    let entries =
        crate::csv::input_list("\"type=match,\"\"pattern=\\d{1,2}\"\"\"").unwrap_or_default();
    let t = tags::parse_tag(&entries[0], false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.attr("pattern"), "\\d{1,2}");
}

#[test]
fn b10_quotes_inside_tag_fields_throw_labels_keep_them() {
    assert!(tags::parse_tag("type=raw,value=a\"b\"", false).is_err());
    let l = crate::csv::input_list("description=this is a \"good\" example").unwrap_or_default();
    assert_eq!(l, s(&["description=this is a \"good\" example"]));
}

#[test]
fn b11_expressions_are_html_escaped_and_unquoted_date_is_default_format() {
    let c = ctx("push", "refs/heads/feat=x");
    assert_eq!(
        names(
            &c,
            &["type=raw,value={{branch}}", "type=ref,event=branch"],
            &[]
        ),
        s(&["feat-x", "feat-x3D-x"])
    );
    assert_eq!(
        names(&c, &["type=raw,value={{{branch}}}"], &[]),
        s(&["feat-x"])
    );
    assert_eq!(
        names(&c, &["type=raw,value={{date YYYY-MM-DD}}"], &[]),
        s(&["2020-01-10T00-30-00Z"])
    );
    assert_eq!(
        names(&c, &["type=raw,value=a{{nothing}}b"], &[]),
        s(&["ab"])
    );
    assert!(names(&c, &["type=raw,value={{foo 'x'}}"], &[])[0].contains("Missing helper"));
    let l = labels_of(&c, &["b={{branch}}"]);
    assert!(l.contains(&("b".into(), "feat&#x3D;x".into())));
}

#[test]
fn b12_is_default_branch_rules() {
    let v = |event: &str, r: &str| {
        names(
            &ctx(event, r),
            &["type=raw,value={{is_default_branch}}-{{is_not_default_branch}}"],
            &[],
        )
    };
    assert_eq!(v("push", "refs/heads/master"), s(&["true-false"]));
    assert_eq!(v("push", "refs/heads/dev"), s(&["false-true"]));
    for e in ["schedule", "create", "discussion", "issues"] {
        assert_eq!(v(e, "refs/heads/dev"), s(&["true-false"]), "{e}");
    }
    assert_eq!(v("push", "refs/tags/v1.0.0"), s(&["false-true"]));
    assert_eq!(v("pull_request", "refs/pull/1/merge"), s(&["false-true"]));
    // edge reads the API's default branch, not the payload.
    let mut c = ctx_with(
        "push",
        "refs/heads/main",
        json!({"repository": {"default_branch": "main"}}),
    );
    assert_eq!(names(&c, &["type=edge"], &[]), Vec::<String>::new());
    c.api_default_branch = "main".into();
    assert_eq!(names(&c, &["type=edge"], &[]), s(&["edge"]));
}

#[test]
fn b13_schedule_matches_by_regex_and_only_knows_dates() {
    let c = ctx("schedule", "refs/heads/master");
    assert_eq!(
        names(
            &c,
            &["type=schedule,pattern={{date 'YYYYMMDD'}}-{{branch}}"],
            &[]
        ),
        s(&["20200110-"])
    );
    assert_eq!(
        names(
            &ctx("schedule_custom", "refs/heads/master"),
            &["type=schedule"],
            &[]
        ),
        s(&["nightly"])
    );
    assert_eq!(
        names(&ctx("push", "refs/heads/master"), &["type=schedule"], &[]),
        Vec::<String>::new()
    );
}

#[test]
fn b14_pull_request_target_rewrites_the_ref() {
    let c = ctx_with(
        "pull_request_target",
        "refs/heads/master",
        json!({"number": 15, "pull_request": {"base": {"ref": "master"}}}),
    );
    assert_eq!(c.git_ref, "refs/pull/15/merge");
    assert_eq!(
        names(
            &c,
            &[
                "type=ref,event=pr",
                "type=raw,value=b{{branch}}",
                "type=raw,value={{base_ref}}"
            ],
            &[]
        ),
        s(&["pr-15", "b", "master"])
    );
    assert_eq!(
        meta::workflow_ref("pull_request_target", "refs/heads/x", &json!({})),
        "refs/pull/undefined/merge"
    );
}

#[test]
fn b15_sanitize_after_prefix_suffix_images_only_lowercased() {
    let c = ctx("push", "refs/heads/feature/ä b");
    assert_eq!(
        names(
            &c,
            &["type=ref,event=branch,prefix=x:,suffix=:{{date 'HH:mm'}}"],
            &[]
        ),
        s(&["x-feature-b-00-30"])
    );
    let r = run(&c, &["Bad Image!"], &["type=raw,value=a"], &[]).unwrap_or_default();
    assert_eq!(r.tags, s(&["bad image!:a"]));
}

#[test]
fn b16_dedup_by_final_string_and_double_latest() {
    let c = ctx("push", "refs/tags/v1.1.1");
    assert_eq!(
        names(
            &c,
            &[
                "type=raw,value=a/b",
                "type=raw,value=a:b",
                "type=raw,value=x",
                "type=raw,value=x"
            ],
            &[]
        ),
        s(&["a-b", "x"])
    );
    assert_eq!(
        names(&c, &["type=ref,event=tag", "type=raw,value=latest"], &[]),
        s(&["v1.1.1", "latest", "latest"])
    );
    let mut strict = c.clone();
    strict.strict = true;
    assert!(matches!(
        run(
            &strict,
            &[],
            &["type=ref,event=tag", "type=raw,value=latest"],
            &[]
        ),
        Err(MetaError::Strict { .. })
    ));
}

fn repo() -> RepoInfo {
    RepoInfo {
        name: "hello".into(),
        full_name: "acme/hello".into(),
        description: None,
        html_url: "https://github.com/acme/hello".into(),
        default_branch: Some("master".into()),
        license: Some(RepoLicense {
            spdx_id: Some("MIT".into()),
            name: None,
        }),
    }
}

fn labels_of(c: &MetaContext, extra: &[&str]) -> Vec<(String, String)> {
    let r = repo();
    let d = Defaults {
        repo: &r,
        version: "1.0",
        created: "2020-01-10T00:30:00.000Z",
        revision: &c.sha,
    };
    labels::compute(c, &d, "labels", &s(extra)).unwrap_or_default()
}

#[test]
fn b17_labels_drop_lines_without_equal_last_wins_sorted_defaults_kept() {
    let c = ctx("push", "refs/heads/dev");
    let l = labels_of(
        &c,
        &[
            "nolabel",
            "empty=",
            "org.opencontainers.image.title=First",
            "org.opencontainers.image.title=Second",
            "Zeta=1",
            "alpha=2",
        ],
    );
    let keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "alpha",
            "empty",
            "org.opencontainers.image.created",
            "org.opencontainers.image.description",
            "org.opencontainers.image.licenses",
            "org.opencontainers.image.revision",
            "org.opencontainers.image.source",
            "org.opencontainers.image.title",
            "org.opencontainers.image.url",
            "org.opencontainers.image.version",
            "Zeta"
        ]
    );
    assert!(l.contains(&("org.opencontainers.image.title".into(), "Second".into())));
    assert!(l.contains(&("org.opencontainers.image.description".into(), String::new())));
}

#[test]
fn b18_revision_follows_sha_and_repo_fields_come_from_the_api() {
    let mut c = ctx("pull_request", "refs/pull/1/merge");
    c.sha = "abc".into();
    let l = labels_of(&c, &[]);
    assert!(l.contains(&("org.opencontainers.image.revision".into(), "abc".into())));
    assert!(l.contains(&("org.opencontainers.image.licenses".into(), "MIT".into())));
    assert!(l.contains(&(
        "org.opencontainers.image.url".into(),
        "https://github.com/acme/hello".into()
    )));
}

#[test]
fn b19_enable_must_be_exactly_true_or_false() {
    let c = ctx("push", "refs/heads/dev");
    assert!(matches!(
        run(&c, &[], &["type=raw,value=x,enable=True"], &[]),
        Err(MetaError::Enable { .. })
    ));
    assert_eq!(
        names(
            &c,
            &["type=raw,value=x,enable=false", "type=raw,value=y"],
            &[]
        ),
        s(&["y"])
    );
}

#[test]
fn b20_separators_are_not_trimmed_and_empty_means_newline() {
    use gantry_runtime::mask::Masker;
    use gantry_runtime::{Console, Env, Inputs};
    let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
    let env = Env::from_pairs([
        ("INPUT_SEP-TAGS", " , "),
        ("INPUT_SEP-LABELS", ""),
        ("INPUT_SEP-ANNOTATIONS", " "),
    ]);
    let inputs = Inputs::new(
        Some(&crate::ACTION),
        Default::default(),
        env.clone(),
        console,
    );
    let cfg = crate::Config::resolve(&inputs, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.sep_tags, " , ");
    assert_eq!(cfg.sep_labels, "\n");
    assert_eq!(cfg.sep_annotations, " ");
}

#[test]
fn b21_single_line_images_with_commas_are_several_images() {
    assert_eq!(
        tags::parse_images(&s(&["a/b,c/d"]))
            .unwrap_or_default()
            .len(),
        2
    );
    assert_eq!(
        tags::parse_images(&s(&["a/b", "c/d"]))
            .unwrap_or_default()
            .len(),
        2
    );
    assert!(tags::parse_images(&s(&["a/b,enable=false", "c/d,x/y"])).is_ok());
}

#[test]
fn b22_short_sha_length_changes_sha_expression_and_must_be_a_number() {
    let mut c = ctx("push", "refs/heads/dev");
    c.short_sha_length = Some("12".into());
    assert_eq!(
        names(&c, &["type=sha", "type=raw,value={{sha}}"], &[]),
        s(&["860c1904a1ce", "sha-860c1904a1ce"])
    );
    c.short_sha_length = Some("100".into());
    assert_eq!(names(&c, &["type=raw,value={{sha}}"], &[]), s(&[SHA]));
    c.short_sha_length = Some("abc".into());
    assert!(run(&c, &[], &["type=sha"], &[]).is_err());
    assert_eq!(
        names(&c, &["type=raw,value=no-sha-here"], &[]),
        s(&["no-sha-here"])
    );
    // build-args (ours) falls back to 7 characters instead of failing.
    let r = crate::outputs::Result::compute(&test_config(), &c, &repo(), None);
    assert!(r.is_ok_and(|r| r.short_sha == "860c190"));
}

fn test_config() -> crate::Config {
    use gantry_runtime::mask::Masker;
    use gantry_runtime::{Console, Env, Inputs};
    let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
    let env = Env::from_pairs([("INPUT_TAGS", "type=raw,value=x")]);
    let inputs = Inputs::new(
        Some(&crate::ACTION),
        Default::default(),
        env.clone(),
        console,
    );
    crate::Config::resolve(&inputs, &env).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn b23_commit_date_payload_order() {
    let p = json!({
        "commits": [{"id": "other", "timestamp": "2001-01-01T00:00:00Z"}, {"id": SHA, "timestamp": "2020-01-09T17:45:12+01:00"}],
        "head_commit": {"id": SHA, "timestamp": "2002-02-02T00:00:00Z"}
    });
    let (d, src) = meta::payload_commit_date(&p, SHA).unwrap_or_else(|| panic!("date"));
    assert_eq!(
        (d.to_rfc3339(), src),
        ("2020-01-09T16:45:12+00:00".to_string(), "payload commits[]")
    );
    let p = json!({"commits": [], "head_commit": {"id": SHA, "timestamp": "2002-02-02T00:00:00Z"}});
    assert_eq!(
        meta::payload_commit_date(&p, SHA).map(|x| x.1),
        Some("payload head_commit")
    );
    let p = json!({"head_commit": {"id": "nope", "timestamp": "2002-02-02T00:00:00Z"}});
    assert!(meta::payload_commit_date(&p, SHA).is_none());
}

#[test]
fn b24_commit_date_expression_formats_and_zones() {
    let c = ctx("push", "refs/heads/dev");
    assert_eq!(
        names(
            &c,
            &["type=raw,value={{commit_date 'YYYYMMDD-HHmmss'}}"],
            &[]
        ),
        s(&["20200109-231545"])
    );
    assert_eq!(
        names(
            &c,
            &["type=raw,value={{commit_date 'YYYY-MM-DD' tz='Asia/Tokyo'}}"],
            &[]
        ),
        s(&["2020-01-10"])
    );
    assert_eq!(
        names(&c, &["type=raw,value={{commit_date YYYY}}"], &[]),
        s(&["2020-01-09T23-15-45Z"])
    );
    assert!(
        names(
            &c,
            &["type=raw,value={{commit_date 'YYYY' zone='UTC'}}"],
            &[]
        )[0]
        .contains("Unknown zone attribute")
    );
    assert!(names(&c, &["type=raw,value={{commit_date}}"], &[])[0].starts_with("ERR"));
    let l = labels_of(
        &c,
        &["org.opencontainers.image.created={{commit_date 'YYYY-MM-DDTHH:mm:ss.SSS[Z]'}}"],
    );
    assert!(l.contains(&(
        "org.opencontainers.image.created".into(),
        "2020-01-09T23:15:45.000Z".into()
    )));
}

#[test]
fn javascript_regex_syntax_is_translated() {
    assert_eq!(meta::js_regex_source(r"\d{1"), r"[0-9]\{1");
    assert_eq!(
        meta::js_regex_source(r"v(\d+){1,2}x}"),
        r"v([0-9]+){1,2}x\}"
    );
    assert_eq!(meta::js_regex_source(r"[a[b]]"), r"[a\[b]\]");
    assert_eq!(meta::js_regex_source(r"[\w-]"), r"[A-Za-z0-9_-]");
    let c = ctx("push", "refs/tags/v1.2.3");
    assert_eq!(
        names(&c, &["type=match,pattern=\\d{1"], &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&c, &["type=match,pattern=v(?<maj>\\d),group=1"], &[]),
        s(&["1", "latest"])
    );
}

#[test]
fn head_ref_expression_beyond_upstream() {
    let mut c = ctx("pull_request", "refs/pull/7/merge");
    c.head_ref = "feature/login".into();
    assert_eq!(
        names(
            &c,
            &["type=raw,value={{head_ref}}", "type=raw,value={{branch}}x"],
            &[]
        ),
        s(&["feature-login", "x"])
    );
}

#[test]
fn highest_semver_compares_with_repository_tags() {
    let src = meta::SemverSource {
        value: "v1.1.1".into(),
        matcher: None,
    };
    assert!(!meta::is_highest_semver(&src, &s(&["v1.2.0", "v1.1.1"])));
    assert!(meta::is_highest_semver(
        &src,
        &s(&["v1.1.0", "v1.1.1", "v2.0.0-rc.1", "junk"])
    ));
    let src = meta::SemverSource {
        value: "v2.0.0".into(),
        matcher: Some("^app/(.*)$".into()),
    };
    assert!(meta::is_highest_semver(
        &src,
        &s(&["app/v1.0.0", "web/v9.0.0"])
    ));
}

fn tag_entry() -> impl Strategy<Value = String> {
    let kinds = prop::sample::select(vec![
        "schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha", "bogus",
    ]);
    let attr = (
        prop::sample::select(vec![
            "pattern", "value", "match", "group", "event", "prefix", "suffix", "enable",
            "priority", "format", "branch", "x",
        ]),
        "[ -~]{0,12}",
    );
    (kinds, prop::collection::vec(attr, 0..5)).prop_map(|(k, attrs)| {
        let mut parts = vec![format!("type={k}")];
        parts.extend(attrs.into_iter().map(|(a, v)| format!("{a}={v}")));
        parts.join(",")
    })
}

fn git_ref() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["refs/heads/", "refs/tags/", "refs/pull/", ""]),
        "[ -~]{0,20}",
    )
        .prop_map(|(p, r)| format!("{p}{r}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_entries_and_refs_never_panic(entries in prop::collection::vec(tag_entry(), 0..5), r in git_ref(), event in "[a-z_]{0,20}", flavor in "[ -~]{0,30}") {
        let c = ctx_with(&event, &r, json!({"number": 3, "repository": {"default_branch": "main"}}));
        let lines: Vec<&str> = entries.iter().map(String::as_str).collect();
        let _ = run(&c, &["img/x"], &lines, &[flavor.as_str()]);
        let _ = crate::csv::input_list(&entries.join("\n"));
    }

    #[test]
    fn strict_mode_only_emits_valid_docker_tags(entries in prop::collection::vec(tag_entry(), 0..5), r in git_ref()) {
        let mut c = ctx("push", &r);
        c.strict = true;
        let lines: Vec<&str> = entries.iter().map(String::as_str).collect();
        if let Ok(out) = run(&c, &["ghcr.io/acme/app"], &lines, &[]) {
            for t in &out.tag_names {
                prop_assert!(meta::is_valid_docker_tag(t), "{t}");
            }
        }
    }

    #[test]
    fn list_layer_never_panics(text in "[ -~\\n\"#,]{0,80}") {
        let _ = crate::csv::input_list(&text);
        let _ = crate::expr::render(&text, &NoScope);
    }
}

struct NoScope;
impl crate::expr::Scope for NoScope {
    fn value(&self, _: &str) -> Result<Option<String>, crate::expr::ExprError> {
        Ok(None)
    }
    fn call(
        &self,
        _: &str,
        _: &[crate::expr::Arg],
        _: &[(String, crate::expr::Arg)],
    ) -> Result<Option<String>, crate::expr::ExprError> {
        Ok(None)
    }
}

#[test]
fn strict_checks_annotation_levels() {
    use gantry_runtime::mask::Masker;
    use gantry_runtime::{Console, Env, Inputs};
    let resolve = |strict: &str| {
        let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
        let env = Env::from_pairs([
            ("INPUT_STRICT", strict),
            ("DOCKER_METADATA_ANNOTATIONS_LEVELS", "manifest, index"),
        ]);
        let inputs = Inputs::new(
            Some(&crate::ACTION),
            Default::default(),
            env.clone(),
            console,
        );
        crate::Config::resolve(&inputs, &env)
    };
    // Upstream keeps the space: the level becomes " index".
    assert!(resolve("false").is_ok_and(|c| c.annotation_levels == s(&["manifest", " index"])));
    assert!(
        resolve("true")
            .is_err_and(|e| e.to_string().contains("DOCKER_METADATA_ANNOTATIONS_LEVELS"))
    );
}
