//! build-image `assemble` mode: the parallel layer compression keeps digests reproducible
//! whatever the core count, the registry accepts what we compute and an independent gzip decodes
//! it to the `diff_id`, and a failed layer upload leaves the tag where it was. Runs the real
//! binary against a local `docker-registry`; must not reach any non-loopback address.

use std::io::Write;
use std::process::{Command, Stdio};

use gantry_test::TestContext;
use gantry_test::faultproxy::{Fault, FaultProxy, Rule};
use gantry_test::registry::{Registry, RegistryKind, noise};

fn start() -> Option<Registry> {
    match Registry::start(RegistryKind::Plain) {
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

/// A ~3.4 MiB tree spanning several 1 MiB compression chunks: random bytes (sent stored) and
/// text (compressed), so both paths and the chunk seams are in the digest.
fn app_tree(ctx: &TestContext) {
    let ws = ctx.workspace();
    std::fs::create_dir_all(ws.join("dist/static")).expect("mkdir");
    std::fs::write(ws.join("dist/server"), noise(7, 1_900_000)).expect("write");
    let mut text = std::fs::File::create(ws.join("dist/static/app.js")).expect("create");
    for i in 0..40_000 {
        writeln!(text, "console.log('line {i}', {});", i * 7919 % 1000).expect("write");
    }
    std::fs::write(ws.join("dist/static/blob.bin"), noise(8, 300_000)).expect("write");
}

fn inputs(ctx: &mut TestContext, tag: &str) {
    ctx.input("mode", "assemble")
        .input("layers", "dist:/app")
        .input("entrypoint", r#"["/app/server"]"#)
        .input("tags", tag)
        .input("push", "true")
        .env("SOURCE_DATE_EPOCH", "1700000000");
}

/// Runs the binary pinned to CPU 0 (`taskset`), so it sees one core and compresses on one thread.
#[allow(clippy::disallowed_methods)] // test harness: wraps the real binary in taskset
fn run_on_one_core(ctx: &TestContext) -> Option<gantry_test::RunResult> {
    let inner = ctx.command("build-image");
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg("0")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .stdin(Stdio::null());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    if let Some(d) = inner.get_current_dir() {
        cmd.current_dir(d);
    }
    let out = cmd.output().ok()?;
    Some(ctx.result(out.status.code().unwrap_or(-1), out.stdout, out.stderr))
}

#[allow(clippy::disallowed_methods)] // test harness: probes for util-linux taskset
fn has_taskset() -> bool {
    Command::new("taskset").arg("--version").output().is_ok()
}

#[allow(clippy::disallowed_methods)] // test harness: reads blobs with curl and gzip
fn blob(host: &str, repo: &str, digest: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-fsS", &format!("http://{host}/v2/{repo}/blobs/{digest}")])
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET blob {digest}: {out:?}");
    out.stdout
}

#[allow(clippy::disallowed_methods)] // test harness: an independent gzip decoder
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("gzip output");
    writer.join().expect("join").expect("write to gzip");
    assert!(out.status.success(), "gzip -t failed: {out:?}");
    out.stdout
}

#[test]
fn one_core_and_all_cores_push_the_same_digest_and_gzip_decodes_it_to_the_diff_id() {
    let Some(reg) = start() else {
        return;
    };
    if !has_taskset() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIP: taskset (util-linux) is not installed");
        }
        return;
    }
    let mut all = TestContext::new();
    app_tree(&all);
    inputs(&mut all, &format!("{}/acme/app:all", reg.host));
    let a = all.run("build-image");
    a.assert_success();

    let mut one = TestContext::new();
    app_tree(&one);
    inputs(&mut one, &format!("{}/acme/app:one", reg.host));
    let b = run_on_one_core(&one).expect("taskset runs");
    b.assert_success();

    let digest = a.output("digest").expect("digest").to_string();
    assert_eq!(
        b.output("digest"),
        Some(digest.as_str()),
        "one thread and every core must produce the same image"
    );

    // The registry verified the layer digest on upload; decode it with gzip(1) and check that
    // the tar hashes to the diff_id the config records.
    let raw = reg
        .skopeo_inspect(&format!("{}/acme/app:one", reg.host), true)
        .expect("inspect");
    assert_eq!(sha256(raw.as_bytes()), digest);
    let m: serde_json::Value = serde_json::from_str(&raw).expect("manifest");
    let layer = m["layers"][0]["digest"].as_str().expect("layer digest");
    let gz = blob(&reg.host, "acme/app", layer);
    assert_eq!(sha256(&gz), layer);
    let tar = gunzip(&gz);
    assert!(tar.len() > 2_200_000, "{} tar bytes", tar.len());
    let cfg_digest = m["config"]["digest"].as_str().expect("config digest");
    let cfg: serde_json::Value =
        serde_json::from_slice(&blob(&reg.host, "acme/app", cfg_digest)).expect("config");
    assert_eq!(cfg["rootfs"]["diff_ids"][0], sha256(&tar).as_str());
    // The random file went in stored, the text compressed: the layer is smaller than the tar
    // but not smaller than the random bytes.
    assert!(
        (gz.len() as u64) < tar.len() as u64 && gz.len() > 2_200_000,
        "{} gzip bytes for {} tar bytes",
        gz.len(),
        tar.len()
    );
}

#[test]
fn a_failed_layer_upload_leaves_the_tag_and_pushes_no_manifest() {
    let Some(reg) = start() else {
        return;
    };
    let tag = format!("{}/acme/app:prod", reg.host);
    let old = reg.seed_image(&tag, &["linux/amd64"], &[1000]);
    // Every blob upload body is refused: the config is tiny, the layer is the big one; nothing
    // that follows (manifest by digest, tag) may happen.
    let p = FaultProxy::start(
        &format!("http://{}", reg.host),
        vec![Rule::new(
            "PUT",
            "/blobs/uploads/",
            Fault::Status {
                code: 500,
                retry_after: None,
            },
            100,
        )],
    );
    let mut ctx = TestContext::new();
    app_tree(&ctx);
    inputs(&mut ctx, &format!("{}/acme/app:prod", p.host));
    ctx.input("retries", "1");
    let r = ctx.run("build-image");
    r.assert_exit(1);
    let log = p.log();
    assert!(
        log.iter().any(|l| l.starts_with("PUT")
            && l.contains("/blobs/uploads/")
            && l.contains("[fault]")),
        "the layer upload was attempted and refused: {log:?}"
    );
    assert!(
        p.log()
            .iter()
            .all(|l| !l.contains("/manifests/") || l.starts_with("GET") || l.starts_with("HEAD")),
        "no manifest was written: {:?}",
        p.log()
    );
    let raw = reg.skopeo_inspect(&tag, true).expect("inspect");
    assert_eq!(
        sha256(raw.as_bytes()),
        old,
        "prod still points at the old image"
    );
}
