//! Integration tests: build_image. The real binary against real `docker-registry` instances on
//! loopback (plain, Basic+TLS, token auth), checked with `skopeo inspect`, with a fault-injecting
//! proxy for retries, and a recording fake `docker` for the buildx contract.

#![allow(clippy::disallowed_methods)] // tests run skopeo directly

use gantry_test::TestContext;
use gantry_test::faultproxy::{Fault, FaultProxy, Rule};
use gantry_test::registry::{PASSWORD, Registry, RegistryKind, USER};

fn start(kind: RegistryKind) -> Option<Registry> {
    match Registry::start(kind) {
        Ok(r) => Some(r),
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIP: {e}");
            }
            None
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    gantry_test::registry::gantry_oci::digest::sha256(bytes)
}

fn report(r: &gantry_test::RunResult) -> serde_json::Value {
    serde_json::from_str(r.output("report").unwrap_or("{}")).expect("report JSON")
}

/// Whether `secret` appears anywhere except in the `::add-mask::` commands that hide it.
fn leaks(r: &gantry_test::RunResult, secret: &str) -> bool {
    r.all_output()
        .lines()
        .any(|l| !l.starts_with("::add-mask::") && l.contains(secret))
}

fn creds(ctx: &mut TestContext, reg: &Registry) {
    if reg.needs_login() {
        ctx.input("registry-auth", &format!("{}={USER}:{PASSWORD}", reg.host));
    }
    if let Some(ca) = &reg.ca_file {
        ctx.input("registry-ca", &ca.display().to_string());
    }
}

#[test]
fn promote_same_registry_mounts_every_blob_keeps_digest_and_carries_signatures() {
    let Some(reg) = start(RegistryKind::Plain) else {
        return;
    };
    let src = format!("{}/acme/api", reg.host);
    let digest = reg.seed_image(
        &format!("{src}:rc1"),
        &["linux/amd64", "linux/arm64"],
        &[20_000, 30_000],
    );
    let (referrer, sig_tag) = reg.seed_signature(&src, &digest);

    let mut ctx = TestContext::new();
    ctx.input("mode", "promote")
        .input("source", &format!("{src}:rc1"))
        .input(
            "targets",
            &format!("{}/prod/api:1.0\n{}/prod/api:stable", reg.host, reg.host),
        )
        .input("require-signature", "true");
    let r = ctx.run("build-image");
    r.assert_success();
    assert_eq!(r.output("digest"), Some(digest.as_str()));
    assert_eq!(
        r.output("image-refs"),
        Some(format!("{}/prod/api@{digest}", reg.host).as_str())
    );
    for tag in ["1.0", "stable"] {
        let raw = reg
            .skopeo_inspect(&format!("{}/prod/api:{tag}", reg.host), true)
            .expect("inspect");
        assert_eq!(
            sha256(raw.as_bytes()),
            digest,
            "tag {tag} has the exact bytes"
        );
    }
    // Signatures followed: the cosign .sig tag and the referrers fallback index with our artifact.
    reg.skopeo_inspect(&format!("{}/prod/api:{sig_tag}", reg.host), true)
        .expect(".sig tag copied");
    let idx = reg
        .skopeo_inspect(
            &format!("{}/prod/api:{}", reg.host, digest.replace(':', "-")),
            true,
        )
        .expect("referrers fallback index copied");
    assert!(idx.contains(&referrer), "{idx}");
    reg.skopeo_inspect(&format!("{}/prod/api@{referrer}", reg.host), true)
        .expect("referrer copied");

    let rep = report(&r);
    let t = &rep["targets"][0];
    assert_eq!(t["ok"], true);
    assert_eq!(
        t["uploaded_bytes"], 0,
        "same registry: nothing uploaded: {t}"
    );
    assert!(t["mounted_blobs"].as_u64().unwrap_or(0) >= 6, "{t}");
    assert_eq!(rep["platforms"].as_array().map(Vec::len), Some(2));
    assert!(
        r.summary.contains("linux/arm64") && r.summary.contains("Mounted"),
        "{}",
        r.summary
    );
    // The registry saw mounts, never an upload PATCH/PUT of blob bytes into prod/api.
    let reqs = reg.requests();
    assert!(reqs.iter().any(|l| l.starts_with("POST /v2/prod/api/blobs/uploads/?mount=") && l.ends_with("201")), "{reqs:#?}");
    assert!(
        !reqs
            .iter()
            .any(|l| l.starts_with("PUT /v2/prod/api/blobs/uploads/")),
        "{reqs:#?}"
    );

    // Re-promote: zero bytes uploaded, zero mounted, everything skipped.
    let r2 = ctx.run("build-image");
    r2.assert_success();
    let t2 = report(&r2)["targets"][0].clone();
    assert_eq!(
        (t2["uploaded_bytes"].as_u64(), t2["mounted_bytes"].as_u64()),
        (Some(0), Some(0)),
        "{t2}"
    );
    assert!(t2["skipped_blobs"].as_u64().unwrap_or(0) >= 6, "{t2}");
}

#[test]
fn promote_across_registries_token_to_basic_tls_streams_and_preserves_digest() {
    let Some(tok) = start(RegistryKind::Token) else {
        return;
    };
    let Some(tls) = start(RegistryKind::BasicTls) else {
        return;
    };
    let digest = tok.seed_image(
        &format!("{}/dev/api:1", tok.host),
        &["linux/amd64"],
        &[50_000],
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/dev/api@{digest}", tok.host))
        .input("targets", &format!("{}/prod/api:1", tls.host))
        .input(
            "registry-auth",
            &format!(
                "{}={USER}:{PASSWORD}\n{}={USER}:{PASSWORD}",
                tok.host, tls.host
            ),
        )
        .input(
            "registry-ca",
            &tls.ca_file.as_ref().expect("ca").display().to_string(),
        );
    let r = ctx.run("build-image");
    r.assert_success();
    assert_eq!(r.output("digest"), Some(digest.as_str()));
    let raw = tls
        .skopeo_inspect(&format!("{}/prod/api:1", tls.host), true)
        .expect("inspect");
    assert_eq!(sha256(raw.as_bytes()), digest);
    let t = report(&r)["targets"][0].clone();
    assert!(
        t["uploaded_bytes"].as_u64().unwrap_or(0) > 50_000 / 2,
        "streamed: {t}"
    );
    assert!(!leaks(&r, PASSWORD), "the password never appears");
}

#[test]
fn promote_on_token_registry_asks_for_push_and_source_pull_in_one_token() {
    let Some(tok) = start(RegistryKind::Token) else {
        return;
    };
    let digest = tok.seed_image(
        &format!("{}/team/a:1", tok.host),
        &["linux/amd64"],
        &[10_000],
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/team/a:1", tok.host))
        .input("targets", &format!("{}/team/b", tok.host));
    creds(&mut ctx, &tok);
    let r = ctx.run("build-image");
    r.assert_success();
    let t = report(&r)["targets"][0].clone();
    assert_eq!(t["uploaded_bytes"], 0, "{t}");
    assert!(t["mounted_blobs"].as_u64().unwrap_or(0) >= 2, "{t}");
    let scopes = tok.token_requests();
    assert!(
        scopes
            .iter()
            .any(|s| s.contains(&"repository:team/b:pull,push".to_string())
                && s.contains(&"repository:team/a:pull".to_string())),
        "{scopes:?}"
    );
    // No tag in the target: the source tag is kept.
    let raw = tok
        .skopeo_inspect(&format!("{}/team/b:1", tok.host), true)
        .expect("inspect");
    assert_eq!(sha256(raw.as_bytes()), digest);
}

#[test]
fn wrong_credentials_name_the_registry_and_never_print_the_password() {
    let Some(tls) = start(RegistryKind::BasicTls) else {
        return;
    };
    tls.seed_image(&format!("{}/a/b:1", tls.host), &["linux/amd64"], &[1000]);
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/a/b:1", tls.host))
        .input("targets", &format!("{}/a/c:1", tls.host))
        .input("registry", &tls.host)
        .input("username", USER)
        .input("password", "hunter2-wrong")
        .input(
            "registry-ca",
            &tls.ca_file.as_ref().expect("ca").display().to_string(),
        );
    let r = ctx.run("build-image");
    r.assert_exit(1);
    let errors = r.error_lines().join("\n");
    assert!(
        errors.contains(&format!("authentication to {} failed", tls.host)),
        "{errors}\n{}",
        r.stdout
    );
    assert!(!leaks(&r, "hunter2-wrong"));
    assert!(
        tls.skopeo_inspect(&format!("{}/a/c:1", tls.host), true)
            .is_err(),
        "nothing tagged"
    );
}

fn write(dir: &std::path::Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, body).expect("write");
}

#[test]
fn assemble_two_platforms_is_reproducible_mounts_base_and_records_it() {
    let Some(reg) = start(RegistryKind::Plain) else {
        return;
    };
    let base = format!("{}/base/runtime:1", reg.host);
    let base_digest = reg.seed_image(&base, &["linux/amd64", "linux/arm64"], &[40_000]);
    let run = || {
        let mut ctx = TestContext::new();
        let ws = ctx.workspace();
        write(&ws, "dist/amd64/server", "#!/bin/sh\necho amd64\n");
        write(&ws, "dist/arm64/server", "#!/bin/sh\necho arm64\n");
        write(&ws, "config/app.toml", "port = 8080\n");
        ctx.input("mode", "assemble")
            .input("base", &base)
            .input("platforms", "linux/amd64,linux/arm64")
            .input(
                "layers",
                "dist/{arch}:/app\nconfig/app.toml:/etc/app/app.toml",
            )
            .input("entrypoint", r#"["/app/server"]"#)
            .input("env", "APP_ENV=prod")
            .input("image-user", "65532:65532")
            .input("expose", "8080")
            .input("labels", "org.opencontainers.image.version=1.0.0")
            .input("tags", &format!("{}/acme/app:1.0.0", reg.host))
            .input("push", "true")
            .env("SOURCE_DATE_EPOCH", "1700000000");
        ctx.run("build-image")
    };
    let a = run();
    a.assert_success();
    let b = run();
    b.assert_success();
    let digest = a.output("digest").expect("digest").to_string();
    assert_eq!(
        b.output("digest"),
        Some(digest.as_str()),
        "same inputs, same digest"
    );
    let raw = reg
        .skopeo_inspect(&format!("{}/acme/app:1.0.0", reg.host), true)
        .expect("inspect");
    assert_eq!(sha256(raw.as_bytes()), digest);
    let idx: serde_json::Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(
        idx["annotations"]["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    assert_eq!(idx["manifests"].as_array().map(Vec::len), Some(2));
    let ra = report(&a)["targets"][0].clone();
    assert!(
        ra["mounted_blobs"].as_u64().unwrap_or(0) >= 2,
        "base layers mounted: {ra}"
    );
    let rb = report(&b)["targets"][0].clone();
    assert_eq!(rb["uploaded_bytes"], 0, "re-push uploads nothing: {rb}");
    // The arm64 config carries our settings on top of the base.
    let arm = idx["manifests"][1]["digest"].as_str().expect("arm digest");
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{}/acme/app@{arm}", reg.host));
    let out = cmd.output().expect("skopeo");
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config json");
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["config"]["User"], "65532:65532");
    assert_eq!(cfg["config"]["Entrypoint"][0], "/app/server");
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    assert!(
        cfg["config"]["ExposedPorts"].get("8080/tcp").is_some(),
        "{cfg}"
    );
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(3),
        "base + 2 layers"
    );

    // Promoting the index copies both platforms side by side; the layers they share (the base,
    // config/app.toml) are mounted once each, never twice at the same time (distribution can
    // lose one of two concurrent mounts of a blob and refuse the manifest).
    let mut distinct = std::collections::BTreeSet::new();
    for child in idx["manifests"].as_array().expect("children") {
        let d = child["digest"].as_str().expect("digest");
        let raw = reg
            .skopeo_inspect(&format!("{}/acme/app@{d}", reg.host), true)
            .expect("child");
        let m: serde_json::Value = serde_json::from_str(&raw).expect("json");
        distinct.insert(m["config"]["digest"].as_str().expect("config").to_string());
        for l in m["layers"].as_array().expect("layers") {
            distinct.insert(l["digest"].as_str().expect("layer").to_string());
        }
    }
    assert!(
        distinct.len() < 8,
        "the platforms share layers: {distinct:?}"
    );
    for i in 0..3 {
        let mut ctx = TestContext::new();
        ctx.input("source", &format!("{}/acme/app:1.0.0", reg.host))
            .input("targets", &format!("{}/acme/prod{i}:1.0.0", reg.host));
        let p = ctx.run("build-image");
        p.assert_success();
        assert_eq!(p.output("digest"), Some(digest.as_str()));
        let t = report(&p)["targets"][0].clone();
        assert_eq!(
            t["mounted_blobs"].as_u64(),
            Some(distinct.len() as u64),
            "each distinct blob mounted once: {t}"
        );
    }
}

#[test]
fn assemble_without_push_computes_the_digest_locally() {
    let mut ctx = TestContext::new();
    write(&ctx.workspace(), "bin/app", "binary");
    ctx.input("layers", "bin/app:/usr/local/bin/app")
        .input("entrypoint", "/usr/local/bin/app --serve");
    let a = ctx.run("build-image");
    a.assert_success();
    let d = a.output("digest").expect("digest");
    assert!(d.starts_with("sha256:"), "{d}");
    assert_eq!(
        ctx.run("build-image").output("digest"),
        Some(d),
        "reproducible without SOURCE_DATE_EPOCH too"
    );
    ctx.input("source-date-epoch", "1");
    assert_ne!(
        ctx.run("build-image").output("digest"),
        Some(d),
        "the epoch is part of the digest"
    );
}

#[test]
fn merge_combines_matrix_digests_into_one_index() {
    let Some(reg) = start(RegistryKind::Plain) else {
        return;
    };
    let repo = format!("{}/acme/multi", reg.host);
    let amd = reg.seed_image(&repo, &["linux/amd64"], &[5_000]);
    let arm = reg.seed_image(&repo, &["linux/arm64"], &[5_000]);
    let mut ctx = TestContext::new();
    ctx.input("digests", &format!("{amd}\n{arm}")).input(
        "tags",
        &format!("{repo}:1.2.3\n{}/mirror/multi:1.2.3", reg.host),
    );
    let r = ctx.run("build-image");
    r.assert_success();
    let digest = r.output("digest").expect("digest");
    for refn in [
        format!("{repo}:1.2.3"),
        format!("{}/mirror/multi:1.2.3", reg.host),
    ] {
        let raw = reg.skopeo_inspect(&refn, true).expect("inspect");
        assert_eq!(sha256(raw.as_bytes()), digest);
        let v: serde_json::Value = serde_json::from_str(&raw).expect("json");
        let plats: Vec<String> = v["manifests"]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| {
                m["platform"]["architecture"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(plats, ["amd64", "arm64"]);
    }
    // Platforms built by separate jobs share layers (static files, a common base): merged into
    // another repository side by side, each shared blob is mounted once.
    let mut refs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let mut ctx = TestContext::new();
        let ws = ctx.workspace();
        write(
            &ws,
            "static/index.html",
            "<h1>same on every platform</h1>\n",
        );
        write(
            &ws,
            &format!("bin/{arch}/server"),
            &format!("#!/bin/sh\necho {arch}\n"),
        );
        ctx.input("mode", "assemble")
            .input("platforms", &format!("linux/{arch}"))
            .input("layers", &format!("static:/srv/static\nbin/{arch}:/app"))
            .input("tags", &format!("{}/jobs/app-{arch}:1", reg.host))
            .input("push", "true");
        let r = ctx.run("build-image");
        r.assert_success();
        refs.push(format!(
            "{}/jobs/app-{arch}@{}",
            reg.host,
            r.output("digest").expect("digest")
        ));
    }
    for i in 0..3 {
        let mut ctx = TestContext::new();
        ctx.input("digests", &refs.join("\n"))
            .input("tags", &format!("{}/release{i}/app:1", reg.host));
        let r = ctx.run("build-image");
        r.assert_success();
        let t = report(&r)["targets"][0].clone();
        // two configs, two app layers, one static layer shared by both
        assert_eq!(t["mounted_blobs"], 5, "each blob mounted once: {t}");
    }

    // Same platform twice is refused.
    let amd2 = reg.seed_image(&repo, &["linux/amd64"], &[5_000]);
    let mut ctx = TestContext::new();
    ctx.input("digests", &format!("{amd}\n{amd2}"))
        .input("tags", &format!("{repo}:bad"));
    let r = ctx.run("build-image");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .join("\n")
            .contains("two images for linux/amd64"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_inputs_fail_clearly_and_tag_nothing() {
    let Some(reg) = start(RegistryKind::Plain) else {
        return;
    };
    reg.seed_image(&format!("{}/a/b:1", reg.host), &["linux/amd64"], &[1000]);
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![
                ("source", format!("{}/a/b:1", reg.host)),
                ("targets", format!("{}/UPPER/x:1", reg.host)),
            ],
            "input `targets`: invalid value",
        ),
        (
            vec![
                ("layers", "nope:/app".into()),
                ("tags", format!("{}/a/x:1", reg.host)),
            ],
            "does not exist",
        ),
        (
            vec![
                ("layers", "f:/app".into()),
                ("platforms", "linux/amd46".into()),
            ],
            "unknown architecture `amd46`",
        ),
        (
            vec![
                ("layers", "f:/app".into()),
                ("base", format!("{}/a/missing:1", reg.host)),
                ("tags", format!("{}/a/x:1", reg.host)),
                ("push", "true".into()),
            ],
            "not found",
        ),
        (
            vec![
                ("layers", "f:/app".into()),
                ("base", format!("{}/a/b:1", reg.host)),
                ("platforms", "linux/s390x".into()),
            ],
            "platform linux/s390x is not in",
        ),
        (
            vec![
                ("source", format!("{}/a/nothere:1", reg.host)),
                ("targets", format!("{}/a/x:1", reg.host)),
            ],
            "image not found",
        ),
    ];
    for (inputs, want) in cases {
        let mut ctx = TestContext::new();
        write(&ctx.workspace(), "f", "x");
        for (k, v) in &inputs {
            ctx.input(k, v);
        }
        let r = ctx.run("build-image");
        r.assert_exit(1);
        let errs = r.error_lines().join("\n");
        assert!(
            errs.contains(want),
            "{inputs:?}: want `{want}` in\n{errs}\n{}",
            r.stderr
        );
    }
    assert!(
        reg.skopeo_inspect(&format!("{}/a/x:1", reg.host), true)
            .is_err(),
        "nothing tagged"
    );
}

#[test]
fn dry_run_prints_the_plan_and_pushes_nothing() {
    let mut ctx = TestContext::new();
    ctx.input("source", "127.0.0.1:1/a/b:1")
        .input("targets", "127.0.0.1:1/a/c:2\nghcr.io/acme/c:2")
        .input("registry-auth", "ghcr.io=octo:ghp_secrettoken")
        .input("dry-run", "true");
    let r = ctx.run("build-image");
    r.assert_success();
    assert!(r.stdout.contains("\"mode\": \"promote\""), "{}", r.stdout);
    assert!(
        r.stdout.contains("http, then https (loopback)"),
        "{}",
        r.stdout
    );
    assert!(!leaks(&r, "ghp_secrettoken"));
}

#[test]
fn faults_are_retried_and_the_result_is_complete() {
    let Some(a) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(b) = start(RegistryKind::Plain) else {
        return;
    };
    let digest = a.seed_image(
        &format!("{}/src/img:1", a.host),
        &["linux/amd64", "linux/arm64"],
        &[300_000, 20_000],
    );
    let pa = FaultProxy::start(
        &format!("http://{}", a.host),
        vec![
            Rule::new("GET", "/blobs/sha256", Fault::DropAfter(100_000), 1),
            Rule::new(
                "GET",
                "/manifests/",
                Fault::SlowFirstByte(std::time::Duration::from_millis(300)),
                1,
            ),
        ],
    );
    let pb = FaultProxy::start(
        &format!("http://{}", b.host),
        vec![
            Rule::new(
                "HEAD",
                "/blobs/",
                Fault::Status {
                    code: 503,
                    retry_after: None,
                },
                2,
            ),
            Rule::new(
                "POST",
                "/blobs/uploads/",
                Fault::Status {
                    code: 429,
                    retry_after: Some(1),
                },
                1,
            ),
            Rule::new(
                "PUT",
                "/manifests/sha256",
                Fault::Status {
                    code: 500,
                    retry_after: None,
                },
                1,
            ),
            Rule::new(
                "PUT",
                "/manifests/1",
                Fault::Status {
                    code: 502,
                    retry_after: None,
                },
                1,
            ),
        ],
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/src/img:1", pa.host))
        .input("targets", &format!("{}/dst/img:1", pb.host));
    let r = ctx.run("build-image");
    r.assert_success();
    assert!(
        pa.pending().is_empty() && pb.pending().is_empty(),
        "every fault fired: {:?} {:?}",
        pa.pending(),
        pb.pending()
    );
    assert_eq!(r.output("digest"), Some(digest.as_str()));
    // Complete and correct, checked on the registry itself (not through the proxy).
    verify_complete(&b, "dst/img:1", &digest);
    assert!(
        report(&r)["totals"]["retries"].as_u64().unwrap_or(0) >= 5,
        "{}",
        r.output("report").unwrap_or("")
    );

    // A mount that answers 202 falls back to an upload into the opened session.
    let pm = FaultProxy::start(
        &format!("http://{}", b.host),
        vec![Rule::new("POST", "mount=", Fault::RefuseMount, 1)],
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/dst/img:1", pm.host))
        .input("targets", &format!("{}/dst2/img:1", pm.host));
    let r = ctx.run("build-image");
    r.assert_success();
    let t = report(&r)["targets"][0].clone();
    assert_eq!(
        t["uploaded_blobs"], 1,
        "one blob uploaded after the 202: {t}"
    );
    assert!(
        pm.log()
            .iter()
            .any(|l| l.contains("mount=") && l.contains("-> 202")),
        "{:?}",
        pm.log()
    );
}

#[test]
fn a_failure_after_some_blobs_leaves_the_target_tag_untouched() {
    let Some(a) = start(RegistryKind::Plain) else {
        return;
    };
    let old = a.seed_image(
        &format!("{}/dst/img:prod", a.host),
        &["linux/amd64"],
        &[1000],
    );
    a.seed_image(
        &format!("{}/src/img:2", a.host),
        &["linux/amd64"],
        &[1000, 2000, 3000],
    );
    let p = FaultProxy::start(
        &format!("http://{}", a.host),
        vec![Rule::new(
            "PUT",
            "/manifests/sha256",
            Fault::Status {
                code: 500,
                retry_after: None,
            },
            100,
        )],
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/src/img:2", p.host))
        .input("targets", &format!("{}/dst/img:prod", p.host))
        .input("retries", "1");
    let r = ctx.run("build-image");
    r.assert_exit(1);
    let t = report(&r)["targets"][0].clone();
    assert!(
        t["mounted_blobs"].as_u64().unwrap_or(0) >= 3,
        "blobs went in before the failure: {t}"
    );
    let raw = a
        .skopeo_inspect(&format!("{}/dst/img:prod", a.host), true)
        .expect("inspect");
    assert_eq!(
        sha256(raw.as_bytes()),
        old,
        "prod still points at the old image"
    );
}

#[test]
fn multi_target_failure_reports_which_registry_failed() {
    let Some(a) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(tls) = start(RegistryKind::BasicTls) else {
        return;
    };
    let d = a.seed_image(&format!("{}/s/i:1", a.host), &["linux/amd64"], &[1000]);
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/s/i:1", a.host))
        .input("targets", &format!("{}/t/i:1\n{}/t/i:1", a.host, tls.host))
        .input(
            "registry-ca",
            &tls.ca_file.as_ref().expect("ca").display().to_string(),
        );
    let r = ctx.run("build-image");
    r.assert_exit(1);
    assert_eq!(
        r.output("image-refs"),
        Some(format!("{}/t/i@{d}", a.host).as_str()),
        "the success is still reported"
    );
    assert!(
        r.error_lines()
            .join("\n")
            .contains(&format!("authentication to {} failed", tls.host)),
        "{}",
        r.stdout
    );
    ctx.input("continue-on-registry-error", "true");
    ctx.run("build-image").assert_success();
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-image")
}

/// A `PATH` whose `docker` is the recording fake.
fn fake_docker(ctx: &TestContext) -> (String, std::path::PathBuf) {
    let bin = ctx.root().join("fakebin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::copy(fixtures().join("fake-docker.sh"), bin.join("docker")).expect("copy");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, ctx.root().join("docker-argv.log"))
}

fn argv_of(log: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("--\n")
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.lines().map(str::to_string).collect())
        .collect()
}

#[test]
fn build_drives_buildx_like_build_push_action_and_reads_the_metadata_file() {
    let mut ctx = TestContext::new();
    let (path, log) = fake_docker(&ctx);
    ctx.env("PATH", &path)
        .env("FAKE_DOCKER_LOG", &log.display().to_string())
        .input("context", ".")
        .input("file", "docker/Dockerfile")
        .input("platforms", "linux/amd64,linux/arm64")
        .input("build-args", "VERSION=1.2.3\nCOMMIT=abc123")
        .input("labels", "org.opencontainers.image.version=1.2.3")
        // a loopback address nothing listens on: the read-back of the pushed image for the summary
        // fails at once (and is only a warning); no test traffic leaves the machine
        .input(
            "tags",
            "127.0.0.1:1/acme/api:1.2.3,127.0.0.1:1/acme/api:latest",
        )
        .input("retries", "0")
        .input("target", "runtime")
        .input("cache-from", "type=gha")
        .input("cache-to", "type=gha,mode=max")
        .input("secrets", "NPM_TOKEN=npm_supersecret")
        .input("push", "true");
    let r = ctx.run("build-image");
    r.assert_success();
    let calls = argv_of(&log);
    let build = calls
        .iter()
        .find(|c| c.get(1).map(String::as_str) == Some("build"))
        .expect("buildx build call");
    let joined = build.join(" ");
    for want in [
        "buildx build",
        "--build-arg VERSION=1.2.3",
        "--build-arg COMMIT=abc123",
        "--cache-from type=gha",
        "--cache-to type=gha,mode=max",
        "--file docker/Dockerfile",
        "--label org.opencontainers.image.version=1.2.3",
        "--platform linux/amd64,linux/arm64",
        "--tag 127.0.0.1:1/acme/api:1.2.3",
        "--tag 127.0.0.1:1/acme/api:latest",
        "--target runtime",
        "--metadata-file",
        "--iidfile",
        "--push",
    ] {
        assert!(joined.contains(want), "missing `{want}` in {joined}");
    }
    assert_eq!(build.last().map(String::as_str), Some("."), "context last");
    assert!(
        !joined.contains("npm_supersecret"),
        "secret values never in argv: {joined}"
    );
    assert!(joined.contains("--secret id=NPM_TOKEN,src="), "{joined}");
    assert_eq!(
        std::fs::read_to_string(format!("{}.secret", log.display())).expect("secret file read"),
        "npm_supersecret"
    );
    assert!(
        !joined.contains("provenance") && !joined.contains("type=sbom"),
        "attestations are opt-in: {joined}"
    );
    let d2 = format!("sha256:{}", "2".repeat(64));
    assert_eq!(r.output("digest"), Some(d2.as_str()));
    assert_eq!(
        r.output("imageid"),
        Some(format!("sha256:{}", "1".repeat(64)).as_str())
    );
    let meta: serde_json::Value =
        serde_json::from_str(r.output("metadata").expect("metadata")).expect("json");
    assert_eq!(meta["buildx.build.ref"], "builder/builder0/abc");
    assert_eq!(
        r.output("image-refs"),
        Some(format!("127.0.0.1:1/acme/api@{d2}").as_str())
    );
}

#[test]
fn build_failure_reports_the_last_buildx_error_line() {
    let mut ctx = TestContext::new();
    let (path, log) = fake_docker(&ctx);
    ctx.env("PATH", &path)
        .env("FAKE_DOCKER_LOG", &log.display().to_string())
        .env("FAKE_DOCKER_FAIL", "1")
        .input("tags", "ghcr.io/acme/api:1");
    let r = ctx.run("build-image");
    r.assert_exit(1);
    assert!(
        r.error_lines().join("\n").contains("failed to solve"),
        "{}",
        r.stdout
    );
}

#[test]
fn call_check_evaluates_the_build_and_produces_nothing() {
    let mut ctx = TestContext::new();
    let (path, log) = fake_docker(&ctx);
    ctx.env("PATH", &path)
        .env("FAKE_DOCKER_LOG", &log.display().to_string())
        .input("call", "check")
        .input("tags", "ghcr.io/acme/api:1");
    let r = ctx.run("build-image");
    r.assert_success();
    let build = argv_of(&log)
        .into_iter()
        .find(|a| a.get(1).map(String::as_str) == Some("build"))
        .expect("a buildx build");
    let joined = build.join(" ");
    assert!(joined.contains("--call check"), "{joined}");
    assert_eq!(r.output("digest"), None, "nothing was built: {}", r.stdout);
    // buildx reports failed checks through its exit status.
    let mut ctx = TestContext::new();
    let (path, log) = fake_docker(&ctx);
    ctx.env("PATH", &path)
        .env("FAKE_DOCKER_LOG", &log.display().to_string())
        .env("FAKE_DOCKER_FAIL", "1")
        .input("call", "check");
    ctx.run("build-image").assert_exit(1);
    // The classic builder has no checks: said so, and nothing is built.
    let mut ctx = TestContext::new();
    let (path, log) = fake_docker(&ctx);
    ctx.env("PATH", &path)
        .env("FAKE_DOCKER_LOG", &log.display().to_string())
        .env("FAKE_DOCKER_NO_BUILDX", "1")
        .input("call", "check");
    let r = ctx.run("build-image");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .join("\n")
            .contains("`call: check` needs `docker buildx`"),
        "{}",
        r.stdout
    );
    assert!(
        !argv_of(&log)
            .iter()
            .any(|a| a.first().map(String::as_str) == Some("build")),
        "no classic build ran"
    );
}

/// Makes `gantry-test/busybox:1` from the busybox-static binary (no pulls).
fn busybox_base() -> Result<(), String> {
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", "gantry-test/busybox:1"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("busybox-static is not installed")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("rootfs");
    for d in ["bin", "etc", "tmp", "usr/local/bin"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(bb, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    for applet in ["sh", "sed", "mkdir", "chmod", "cat", "echo", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n").map_err(|e| e.to_string())?;
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf", "-", "."])
        .output()
        .map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new("docker")
        .args([
            "import",
            "-c",
            "ENV PATH=/usr/local/bin:/bin",
            "-",
            "gantry-test/busybox:1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    use std::io::Write as _;
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(&tar.stdout)
        .map_err(|e| e.to_string())?;
    let st = child.wait().map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err("docker import failed".into())
    }
}

#[test]
fn build_with_the_classic_builder_pushes_with_our_client() {
    // Starts dockerd when it is installed but not running; panics under GANTRY_REQUIRE_DOCKER=1
    // (CI) instead of skipping.
    if let Err(reason) = gantry_test::docker::ensure_daemon() {
        gantry_test::skip!("{reason}");
    }
    if let Err(e) = busybox_base() {
        gantry_test::skip!("cannot make a local base image: {e}");
    }
    let Some(reg) = start(RegistryKind::Plain) else {
        return;
    };
    let mut ctx = TestContext::new();
    // Only docker itself on PATH has no buildx plugin here; hide any buildx to force the classic path.
    ctx.env(
        "DOCKER_CONFIG",
        &ctx.root().join("docker-config").display().to_string(),
    )
    .input("context", &fixtures().display().to_string())
    .input(
        "build-args",
        "VERSION=1.2.3\nCOMMIT=abc123\nBUILD_DATE=2026-01-01T00:00:00Z",
    )
    .input("network", "none")
    .input("tags", &format!("{}/acme/app:1.2.3", reg.host))
    .input("push", "true");
    let r = ctx.run("build-image");
    if r.stdout.contains("buildx") && !r.stdout.contains("classic builder") {
        gantry_test::skip!(
            "docker buildx is installed here; the classic path is covered only without it"
        );
    }
    r.assert_success();
    let digest = r.output("digest").expect("digest");
    let raw = reg
        .skopeo_inspect(&format!("{}/acme/app:1.2.3", reg.host), true)
        .expect("inspect");
    assert_eq!(sha256(raw.as_bytes()), digest);
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/acme/app:1.2.3", reg.host));
    let cfg: serde_json::Value =
        serde_json::from_slice(&cmd.output().expect("skopeo").stdout).expect("config");
    assert_eq!(cfg["config"]["User"], "10001:10001");
    assert_eq!(
        cfg["config"]["Labels"]["org.opencontainers.image.version"],
        "1.2.3"
    );
    assert!(cfg["config"]["Healthcheck"].is_object(), "{cfg}");
    let id = r.output("imageid").expect("imageid");
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}"])
        .arg(format!("{}/acme/app:1.2.3", reg.host))
        .output()
        .expect("docker");
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        id,
        "imageid is the engine's image id"
    );
    // Pushing the same build again uploads nothing.
    let r2 = ctx.run("build-image");
    r2.assert_success();
    assert_eq!(
        report(&r2)["targets"][0]["uploaded_bytes"],
        0,
        "{}",
        r2.output("report").unwrap_or("")
    );
}

/// Logins that `docker login` left in credential helpers (`credHelpers` per host, `credsStore`
/// for the rest) are asked for with `docker-credential-<name> get`, win over `auths`, are masked,
/// and a helper that fails is a warning naming it (the push then fails on authentication).
#[test]
fn credential_helpers_from_the_docker_config_are_asked_in_docker_order() {
    let Some(tls) = start(RegistryKind::BasicTls) else {
        return;
    };
    tls.seed_image(&format!("{}/h/src:1", tls.host), &["linux/amd64"], &[1000]);
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = dir.path().join("asked.log");
    let helper = |name: &str, body: &str| {
        let p = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // the helper knows only this registry, like a real one
    helper(
        "gantrytest",
        &format!(
            "[ \"$1\" = get ] || exit 2\nread -r url\necho \"$url\" >> {log}\nif [ \"$url\" = \"{host}\" ]; then printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$url\"; else echo 'credentials not found in native keychain'; exit 1; fi",
            log = asked.display(),
            host = tls.host
        ),
    );
    helper("locked", "echo 'error: keychain is locked' >&2; exit 1");
    let conf = dir.path().join("docker");
    std::fs::create_dir_all(&conf).unwrap();
    let wrong = "dXNlcjp3cm9uZy1wYXNzd29yZA=="; // user:wrong-password
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |config: String, target: &str| {
        std::fs::write(conf.join("config.json"), config).unwrap();
        let mut ctx = TestContext::new();
        ctx.env("DOCKER_CONFIG", conf.to_str().unwrap())
            .env("PATH", &path)
            .input("source", &format!("{}/h/src:1", tls.host))
            .input("targets", &format!("{}/h/{target}:1", tls.host))
            .input(
                "registry-ca",
                &tls.ca_file.as_ref().expect("ca").display().to_string(),
            );
        ctx.run("build-image")
    };
    // credHelpers for this host beats a wrong `auths` entry; another host's helper is not run
    let r = run(
        format!(
            r#"{{"auths":{{"{h}":{{"auth":"{wrong}"}}}},"credHelpers":{{"{h}":"gantrytest","elsewhere.example:5000":"nonexistent"}}}}"#,
            h = tls.host
        ),
        "viahelper",
    );
    r.assert_success();
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        tls.host,
        "asked once, with the host"
    );
    assert!(!leaks(&r, PASSWORD), "{}", r.all_output());
    assert!(!r.stdout.contains("nonexistent"), "{}", r.stdout);
    assert!(
        tls.skopeo_inspect(&format!("{}/h/viahelper:1", tls.host), true)
            .is_ok()
    );
    // credsStore covers every host without a credHelpers entry
    let r = run(r#"{"credsStore":"gantrytest"}"#.into(), "viastore");
    r.assert_success();
    // a helper that fails: a warning naming it, then the registry's 401 as the error
    let r = run(r#"{"credsStore":"locked"}"#.into(), "locked");
    r.assert_exit(1);
    assert!(
        r.stdout.contains("docker-credential-locked"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("keychain is locked"), "{}", r.stdout);
    let errors = r.error_lines().join("\n");
    assert!(
        errors.contains(&format!("authentication to {} failed", tls.host)),
        "{errors}"
    );
}

/// A registry that refuses the manifest's media type, and a source manifest over the 4 MiB
/// limit: a clear error naming the registry and the cause, exit 1, the target tag untouched.
#[test]
fn refused_media_type_and_oversized_manifest_fail_clearly() {
    let Some(a) = start(RegistryKind::Plain) else {
        return;
    };
    let old = a.seed_image(
        &format!("{}/dst/img:prod", a.host),
        &["linux/amd64"],
        &[1000],
    );
    a.seed_image(&format!("{}/src/img:2", a.host), &["linux/amd64"], &[2000]);
    let refuse = Rule::new(
        "PUT",
        "/manifests/",
        Fault::Reply {
            code: 400,
            content_type: "application/json".into(),
            body: br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest media type"}]}"#.to_vec(),
        },
        100,
    );
    let mut huge = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend_from_slice(br#""}}"#);
    let oversized = Rule::new(
        "GET",
        "/src/img/manifests/",
        Fault::Reply {
            code: 200,
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body: huge,
        },
        100,
    );
    for (rule, want) in [
        (refuse, "unsupported manifest media type"),
        (oversized, "over the 4194304-byte limit"),
    ] {
        let p = FaultProxy::start(&format!("http://{}", a.host), vec![rule]);
        let mut ctx = TestContext::new();
        ctx.input("source", &format!("{}/src/img:2", p.host))
            .input("targets", &format!("{}/dst/img:prod", p.host))
            .input("retries", "0");
        let r = ctx.run("build-image");
        r.assert_exit(1);
        let errors = r.error_lines().join("\n");
        assert!(errors.contains(want), "{want}: {errors}\n{}", r.stdout);
        assert!(errors.contains(&p.host), "names the registry: {errors}");
        let raw = a
            .skopeo_inspect(&format!("{}/dst/img:prod", a.host), true)
            .expect("inspect");
        assert_eq!(sha256(raw.as_bytes()), old, "prod untouched");
    }
}

/// Build mode's summary gets per-platform digests and sizes from the pushed image (buildx's
/// metadata has only the index digest): a 2-platform image "pushed" by the fake buildx.
#[test]
fn build_summary_lists_each_pushed_platform_with_its_size() {
    let Some(reg) = start(RegistryKind::Plain) else {
        return;
    };
    let digest = reg.seed_image(
        &format!("{}/acme/api:1.2.3", reg.host),
        &["linux/amd64", "linux/arm64"],
        &[3000, 5000],
    );
    let mut ctx = TestContext::new();
    let (path, log) = fake_docker(&ctx);
    ctx.env("PATH", &path)
        .env("FAKE_DOCKER_LOG", &log.display().to_string())
        .env("FAKE_DOCKER_DIGEST", &digest)
        .input("context", ".")
        .input("platforms", "linux/amd64,linux/arm64")
        .input("tags", &format!("{}/acme/api:1.2.3", reg.host))
        .input("push", "true");
    let r = ctx.run("build-image");
    r.assert_success();
    let rep = report(&r);
    let rows = rep["platforms"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{rep}");
    for row in &rows {
        assert!(
            row["digest"].as_str().unwrap_or("").starts_with("sha256:"),
            "{row}"
        );
        assert!(row["size"].as_u64().unwrap_or(0) >= 3000, "{row}");
    }
    assert!(r.summary.contains("linux/arm64"), "{}", r.summary);
}

/// Promotes `src` to `dst` through `proxy` with chunked uploads of 64 KiB and returns the run.
fn chunked_promote(src: &str, dst: &str, chunk: Option<&str>) -> gantry_test::RunResult {
    let mut ctx = TestContext::new();
    ctx.input("source", src).input("targets", dst);
    if let Some(c) = chunk {
        ctx.input("upload-chunk-size", c);
    }
    ctx.run("build-image")
}

#[test]
fn chunked_uploads_resume_where_the_registry_stopped() {
    let Some(a) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(b) = start(RegistryKind::Plain) else {
        return;
    };
    // One platform, one 600 kB layer: ten 64 KiB chunks, uploaded one after the other.
    let digest = a.seed_image(
        &format!("{}/src/img:1", a.host),
        &["linux/amd64"],
        &[600_000],
    );
    let src = format!("{}/src/img:1", a.host);
    let layer_patches = "/blobs/uploads/";
    let pb = FaultProxy::start(
        &format!("http://{}", b.host),
        vec![
            // The registry refuses a range it did not expect: ask where it stands, resend.
            Rule::new(
                "PATCH",
                layer_patches,
                Fault::Status {
                    code: 416,
                    retry_after: None,
                },
                1,
            )
            .after(1),
            // A gateway loses the registry's answer to a chunk it took.
            Rule::new("PATCH", layer_patches, Fault::ForwardThenStatus(504), 1).after(1),
            // The connection drops halfway through a chunk.
            Rule::new("PATCH", layer_patches, Fault::TruncateRequest(30_000), 1).after(1),
            // The final PUT commits the blob, but its answer is lost.
            Rule::new("PUT", "digest=sha256", Fault::ForwardThenStatus(502), 1),
        ],
    );
    let r = chunked_promote(&src, &format!("{}/dst/img:1", pb.host), Some("64K"));
    r.assert_success();
    let log = pb.log();
    let dump = log.join("\n");
    assert!(
        pb.pending().is_empty(),
        "every fault fired: {:?}\n{dump}",
        pb.pending()
    );
    assert_eq!(r.output("digest"), Some(digest.as_str()));
    verify_complete(&b, "dst/img:1", &digest);

    let session = |l: &str| -> Option<String> {
        let rest = l.split("/blobs/uploads/").nth(1)?;
        Some(rest.split('?').next()?.to_string()).filter(|s| !s.is_empty())
    };
    // After the 416 the session was asked where it stands (204) and the same session went on.
    let refused = log
        .iter()
        .find(|l| l.starts_with("PATCH") && l.contains("-> 416"))
        .and_then(|l| session(l))
        .expect("a refused chunk");
    let after: Vec<&String> = log
        .iter()
        .skip_while(|l| !(l.contains(&refused) && l.contains("-> 416")))
        .filter(|l| l.contains(&refused))
        .collect();
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("GET") && l.contains("-> 204")),
        "upload status asked after the 416:\n{dump}"
    );
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("PATCH") && l.contains("-> 202")),
        "the same session resumed:\n{dump}"
    );
    // The blob whose final answer was lost was found by HEAD, never sent again.
    let lost = log
        .iter()
        .find(|l| l.contains("answered 201, dropped"))
        .and_then(|l| l.split("digest=").nth(1))
        .and_then(|d| d.split([' ', '&']).next())
        .expect("a lost commit")
        .to_string();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("PUT") && l.contains(&lost))
            .count(),
        1,
        "committed once:\n{dump}"
    );
    // distribution signs its session state into the Location, so after a lost answer or a cut
    // chunk the old Location is refused (404) and the blob starts over in a fresh session;
    // registries with plain session URLs resume instead. Either way the image is complete.
    let sessions = log.iter().filter(|l| l.starts_with("POST")).count();
    assert!(sessions <= 4, "at most two restarts for two blobs:\n{dump}");
    assert!(r.output("report").unwrap_or("").contains("\"retries\""));

    // Without the input: one PUT per blob, and chunks when the registry refuses a PUT that big.
    let pc = FaultProxy::start(
        &format!("http://{}", b.host),
        vec![Rule::new(
            "PUT",
            "digest=sha256",
            Fault::Status {
                code: 413,
                retry_after: None,
            },
            1,
        )],
    );
    let r = chunked_promote(&src, &format!("{}/dst2/img:1", pc.host), None);
    r.assert_success();
    let log = pc.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("PATCH") && l.contains("-> 202")),
        "fell back to chunks after the 413: {log:#?}"
    );
    verify_complete(&b, "dst2/img:1", &digest);

    // Bad sizes name the input.
    for bad in ["lots", "1K", "2T"] {
        let r = chunked_promote(&src, &format!("{}/dst3/img:1", b.host), Some(bad));
        assert_eq!(r.status, 1, "{bad}: {}", r.stdout);
        assert!(
            r.stdout.contains("upload-chunk-size") && r.stdout.contains(bad),
            "{bad}: {}",
            r.stdout
        );
    }
}

/// The image at `repo_tag` on `reg` has `digest` and every blob downloads and verifies
/// (`skopeo copy` to a directory, straight from the registry).
fn verify_complete(reg: &Registry, repo_tag: &str, digest: &str) {
    let raw = reg
        .skopeo_inspect(&format!("{}/{repo_tag}", reg.host), true)
        .expect("inspect");
    assert_eq!(sha256(raw.as_bytes()), digest);
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--all", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{}/{repo_tag}", reg.host))
        .arg(format!("dir:{}", dir.path().display()))
        .output()
        .expect("skopeo copy");
    assert!(
        out.status.success(),
        "every blob downloads and verifies: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tls_registries_are_trusted_through_the_system_store_or_registry_ca_only() {
    let Some(plain) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(tls) = start(RegistryKind::BasicTls) else {
        return;
    };
    let ca = tls.ca_file.as_ref().expect("ca").display().to_string();
    let digest = plain.seed_image(
        &format!("{}/dev/api:1", plain.host),
        &["linux/amd64"],
        &[20_000],
    );
    let promote = |repo: &str, extra: &dyn Fn(&mut TestContext)| {
        let mut ctx = TestContext::new();
        ctx.input("source", &format!("{}/dev/api:1", plain.host))
            .input("targets", &format!("{}/{repo}:1", tls.host))
            .input("registry-auth", &format!("{}={USER}:{PASSWORD}", tls.host));
        extra(&mut ctx);
        ctx.run("build-image")
    };
    // A CA nobody told us to trust: refused, named, nothing pushed.
    let r = promote("untrusted/api", &|_| {});
    assert_eq!(r.status, 1, "{}", r.stdout);
    let errors = r.error_lines().join("\n");
    assert!(
        errors.contains(&tls.host)
            && errors.contains("invalid peer certificate")
            && errors.contains("registry-ca"),
        "{errors}"
    );
    assert!(
        tls.skopeo_inspect(&format!("{}/untrusted/api:1", tls.host), true)
            .is_err(),
        "nothing pushed to an untrusted registry"
    );
    // The system store, as `SSL_CERT_FILE` points it (read at the first handshake).
    let r = promote("system/api", &|c| {
        c.env("SSL_CERT_FILE", &ca);
    });
    r.assert_success();
    assert_eq!(r.output("digest"), Some(digest.as_str()));
    // `registry-ca`.
    let r = promote("ca/api", &|c| {
        c.input("registry-ca", &ca);
    });
    r.assert_success();
    // A `registry-ca` file that holds no certificate is an input error before any request.
    let ws = TestContext::new();
    let bogus = ws.root().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").expect("write");
    let r = promote("bogus/api", &|c| {
        c.input("registry-ca", &bogus.display().to_string());
    });
    assert_eq!(r.status, 1, "{}", r.stdout);
    let errors = r.error_lines().join("\n");
    assert!(
        errors.contains("registry-ca")
            && errors.contains("bogus.pem")
            && errors.contains("no PEM certificate"),
        "{errors}"
    );
}

#[test]
fn several_targets_are_pushed_at_once_each_with_its_own_counts() {
    let Some(src) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(a) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(b) = start(RegistryKind::Plain) else {
        return;
    };
    let digest = src.seed_image(
        &format!("{}/app/api:1", src.host),
        &["linux/amd64"],
        &[200_000, 30_000],
    );
    // Each target registry answers its manifest PUT 2 s late: one after the other that is at
    // least 4 s, side by side about 2 s.
    let (pa, pb) = (
        slow_once(&a, "PUT", "/manifests/sha256", 2000),
        slow_once(&b, "PUT", "/manifests/sha256", 2000),
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/app/api:1", src.host))
        .input(
            "targets",
            &format!("{}/prod/api:1\n{}/prod/api:1", pa.host, pb.host),
        );
    let t = std::time::Instant::now();
    let r = ctx.run("build-image");
    let took = t.elapsed();
    r.assert_success();
    assert!(pa.pending().is_empty() && pb.pending().is_empty());
    assert!(
        took < std::time::Duration::from_millis(3600),
        "the two targets were pushed one after the other: {took:?}"
    );
    let rep = report(&r);
    let total: u64 = 200_000 + 30_000;
    for t in rep["targets"].as_array().expect("targets") {
        // each target counts its own bytes: the layers plus the config, not the other's too
        let up = t["uploaded_bytes"].as_u64().unwrap_or(0);
        assert!(up > total && up < total + 10_000, "{t}");
        assert_eq!(t["uploaded_blobs"], 3, "{t}");
    }
    assert_eq!(
        rep["totals"]["uploaded_bytes"].as_u64(),
        Some(rep["targets"][0]["uploaded_bytes"].as_u64().unwrap_or(0) * 2)
    );
    for reg in [&a, &b] {
        verify_complete(reg, "prod/api:1", &digest);
    }
}

#[test]
fn target_connections_are_warmed_while_the_source_is_read() {
    let Some(src) = start(RegistryKind::Plain) else {
        return;
    };
    let Some(dst) = start(RegistryKind::Plain) else {
        return;
    };
    let digest = src.seed_image(
        &format!("{}/app/api:1", src.host),
        &["linux/amd64"],
        &[20_000],
    );
    // A slow source manifest and a slow first answer from the target (a far registry's TLS and
    // ping): one after the other at least 3 s, overlapped about 1.5 s.
    let (ps, pd) = (
        slow_once(&src, "GET", "/manifests/1", 1500),
        slow_once(&dst, "GET", "/v2/", 1500),
    );
    let mut ctx = TestContext::new();
    ctx.input("source", &format!("{}/app/api:1", ps.host))
        .input("targets", &format!("{}/prod/api:1", pd.host));
    let t = std::time::Instant::now();
    let r = ctx.run("build-image");
    let took = t.elapsed();
    r.assert_success();
    assert!(ps.pending().is_empty() && pd.pending().is_empty());
    assert!(
        took < std::time::Duration::from_millis(2700),
        "the target was first contacted after the source was read: {took:?}"
    );
    assert_eq!(
        pd.log()
            .iter()
            .filter(|l| l.starts_with("GET /v2/ "))
            .count(),
        1,
        "one ping: {:?}",
        pd.log()
    );
    verify_complete(&dst, "prod/api:1", &digest);
}

/// A proxy in front of `reg` whose first `method` request matching `path` answers `ms` late.
fn slow_once(reg: &Registry, method: &str, path: &str, ms: u64) -> FaultProxy {
    FaultProxy::start(
        &format!("http://{}", reg.host),
        vec![Rule::new(
            method,
            path,
            Fault::SlowFirstByte(std::time::Duration::from_millis(ms)),
            1,
        )],
    )
}
