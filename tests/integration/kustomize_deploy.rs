//! Integration tests: kustomize_deploy. The real `gantry` binary renders the fixture overlays
//! (`tests/fixtures/kustomize-deploy/k8s`, our users' base + development/staging/production) with
//! the real kubectl, applies them to the fake Kubernetes API (`gantry_test::kube::FakeKube`) and
//! waits on its scripted controller. Skipped with a printed reason when kubectl is missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gantry_test::kube::{FakeKube, base64, kubectl, managers_of};
use gantry_test::{RunResult, TestContext};
use serde_json::Value;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.fake-service-account-token-3f9a7c";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize-deploy")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}

/// A runner context with the fixtures in the workspace, kubectl and a base64 kubeconfig.
fn ctx(kube: &FakeKube, kubectl: &str) -> TestContext {
    let mut c = TestContext::new();
    copy_dir(&fixtures(), &c.workspace());
    c.input("kubectl", kubectl)
        .input("kubeconfig", &base64(&kube.kubeconfig(Some(TOKEN))))
        .input("timeout", "60s")
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "42")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_ACTOR", "octocat");
    c
}

macro_rules! setup {
    () => {{
        let Some(k) = kubectl() else {
            gantry_test::skip!("kubectl is not installed (needed to render kustomize overlays)");
        };
        let kube = FakeKube::start();
        kube.require_token(Some(TOKEN));
        (kube, k)
    }};
}

fn image(kube: &FakeKube, ns: &str, name: &str) -> String {
    kube.get("deployments", ns, name).expect("deployment")["spec"]["template"]["spec"]["containers"]
        [0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn deploy(
    kube: &FakeKube,
    k: &str,
    overlay: &str,
    images: &str,
    extra: &[(&str, &str)],
) -> RunResult {
    let mut c = ctx(kube, k);
    c.input("overlay", overlay).input("images", images);
    for (n, v) in extra {
        c.input(n, v);
    }
    c.run("kustomize-deploy")
}

fn applied(r: &RunResult) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(r.output("applied").unwrap_or("[]"))
        .expect("applied is JSON")
}

fn assert_no_token(r: &RunResult) {
    for line in r.all_output().lines() {
        if line.starts_with("::add-mask::") {
            continue;
        }
        assert!(!line.contains(TOKEN), "token leaked: {line}");
    }
}

#[test]
fn good_deploy_completes_with_outputs_summary_and_masked_kubeconfig() {
    let (kube, k) = setup!();
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web=myreg.local:5000/shop/web:1.2.3",
        &[],
    );
    r.assert_success();
    assert_eq!(
        image(&kube, "shop-staging", "web"),
        "myreg.local:5000/shop/web:1.2.3"
    );
    // The other image on the same registry host is not touched (Azure/k8s-deploy #2).
    assert_eq!(
        image(&kube, "shop-staging", "worker"),
        "registry.example/worker:latest"
    );
    let d = kube.get("deployments", "shop-staging", "web").expect("web");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
    assert!(
        managers_of(&d).contains(&("gantry".into(), "Apply".into())),
        "{:?}",
        managers_of(&d)
    );
    let rows = applied(&r);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows.iter().all(|r| r["result"] == "created"), "{rows:?}");
    assert_eq!(r.output("revision"), Some("1"));
    assert_eq!(r.output("rolled-back"), Some("false"));
    assert!(
        r.output("images")
            .unwrap_or("")
            .contains("myreg.local:5000/shop/web:1.2.3")
    );
    assert!(
        r.summary
            .contains("| Deployment | shop-staging | web | created | ready"),
        "{}",
        r.summary
    );
    assert!(
        r.stdout.contains(&format!("::add-mask::{TOKEN}")),
        "the decoded token must be masked"
    );
    assert_no_token(&r);
    // Same overlay again: everything unchanged, a new revision.
    let r2 = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web=myreg.local:5000/shop/web:1.2.3",
        &[],
    );
    r2.assert_success();
    assert_eq!(r2.output("revision"), Some("2"));
    assert!(
        applied(&r2).iter().all(|r| r["result"] == "unchanged"),
        "{:?}",
        applied(&r2)
    );
}

#[test]
fn three_overlays_get_their_own_replicas_and_resources() {
    let (kube, k) = setup!();
    for (env, replicas, mem) in [
        ("development", 1, "64Mi"),
        ("staging", 2, "128Mi"),
        ("production", 3, "256Mi"),
    ] {
        let r = deploy(
            &kube,
            &k,
            &format!("k8s/overlays/{env}"),
            "registry.example/web:2.0.0",
            &[],
        );
        r.assert_success();
        let d = kube
            .get("deployments", &format!("shop-{env}"), "web")
            .expect("web");
        assert_eq!(d["spec"]["replicas"], replicas);
        assert_eq!(d["status"]["readyReplicas"], replicas);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
            mem
        );
    }
}

#[test]
fn crash_loop_fails_fast_prints_diagnostics_and_restores_the_exact_previous_spec() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    let before = kube.get("deployments", "shop-staging", "web").expect("web")["spec"].clone();
    let start = Instant::now();
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:2.0.0-crashloop",
        &[("timeout", "120s")],
    );
    let took = start.elapsed();
    r.assert_exit(1);
    assert!(
        took < Duration::from_secs(30),
        "must fail well before the 120s deadline, took {took:?}"
    );
    let out = r.all_output();
    assert!(out.contains("CrashLoopBackOff"), "{out}");
    assert!(
        out.contains("DATABASE_URL is not set"),
        "previous container logs expected: {out}"
    );
    assert!(
        out.contains("Back-off restarting failed container"),
        "events expected: {out}"
    );
    assert_eq!(r.output("rolled-back"), Some("true"));
    assert_eq!(r.output("revision"), Some("2"));
    let after = kube.get("deployments", "shop-staging", "web").expect("web")["spec"].clone();
    assert_eq!(
        after, before,
        "the spec must be exactly the one before the failed deploy"
    );
    assert!(
        r.summary.contains("Diagnostics") && r.summary.contains("Rolled back"),
        "{}",
        r.summary
    );
    assert!(
        r.error_lines().iter().any(|l| l.contains("rollout failed")),
        "{out}"
    );
}

#[test]
fn image_pull_backoff_and_progress_deadline_fail_before_the_timeout() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/development",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/development",
        "registry.example/web:imagepullbackoff",
        &[("rollback-on-failure", "false")],
    );
    r.assert_exit(1);
    assert!(
        r.all_output().contains("ErrImagePull") || r.all_output().contains("ImagePullBackOff"),
        "{}",
        r.all_output()
    );
    assert_eq!(r.output("rolled-back"), Some("false"));
    assert_eq!(
        image(&kube, "shop-development", "web"),
        "registry.example/web:imagepullbackoff"
    );
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/development",
        "registry.example/web:deadline",
        &[],
    );
    r.assert_exit(1);
    assert!(
        r.all_output().contains("exceeded its progress deadline"),
        "{}",
        r.all_output()
    );
}

#[test]
fn a_stale_status_is_not_mistaken_for_completion() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/development",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    // The controller stops: the status still says the previous rollout completed.
    kube.pause_controller(true);
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/development",
        "registry.example/web:1.1.0",
        &[("timeout", "3s"), ("rollback-on-failure", "false")],
    );
    r.assert_exit(1);
    assert!(
        r.all_output().contains("spec update to be observed"),
        "{}",
        r.all_output()
    );
    kube.pause_controller(false);
}

#[test]
fn deploy_after_a_manual_kubectl_rollout_undo_still_applies() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:2.0.0",
        &[],
    )
    .assert_success();
    // kubectl does not send bearer tokens over plain HTTP; let it in without one for the undo.
    kube.require_token(None);
    let cfg = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(cfg.path(), kube.kubeconfig(None)).expect("write");
    #[allow(clippy::disallowed_methods)] // the test runs the real kubectl as a user would
    let out = std::process::Command::new(&k)
        .args(["rollout", "undo", "deployment/web", "-n", "shop-staging"])
        .env("KUBECONFIG", cfg.path())
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kube.require_token(Some(TOKEN));
    assert_eq!(
        image(&kube, "shop-staging", "web"),
        "registry.example/web:1.0.0"
    );
    let d = kube.get("deployments", "shop-staging", "web").expect("web");
    assert!(
        managers_of(&d)
            .iter()
            .any(|(m, op)| m.starts_with("kubectl") && op == "Update"),
        "{:?}",
        managers_of(&d)
    );
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:3.0.0",
        &[],
    );
    r.assert_success();
    assert_eq!(
        image(&kube, "shop-staging", "web"),
        "registry.example/web:3.0.0"
    );
}

#[test]
fn manual_rollback_and_rollback_to_a_revision() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:2.0.0",
        &[],
    )
    .assert_success();
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("rollback", "true");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    assert_eq!(
        image(&kube, "shop-staging", "web"),
        "registry.example/web:1.0.0"
    );
    assert_eq!(r.output("revision"), Some("3"));
    assert_eq!(r.output("rolled-back"), Some("true"));
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("rollback-to", "2");
    c.run("kustomize-deploy").assert_success();
    assert_eq!(
        image(&kube, "shop-staging", "web"),
        "registry.example/web:2.0.0"
    );
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("rollback-to", "99");
    let r = c.run("kustomize-deploy");
    r.assert_exit(1);
    assert!(
        r.all_output().contains("revision 99 is not in the history"),
        "{}",
        r.all_output()
    );
}

#[test]
fn prune_removes_only_our_objects() {
    let (kube, k) = setup!();
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("images", "registry.example/web:1.0.0");
    c.run("kustomize-deploy").assert_success();
    // Someone else's deployment in the same namespace.
    kube.put(serde_json::json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"other","namespace":"shop-staging"},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}},"spec":{"containers":[{"name":"o","image":"o:1"}]}}}}), "human");
    // The worker leaves the overlay.
    let base = c.workspace().join("k8s/base/deployment.yaml");
    let text = std::fs::read_to_string(&base).expect("read");
    std::fs::write(&base, text.split("---").next().expect("first doc")).expect("write");
    c.input("prune", "true");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    assert!(
        kube.get("deployments", "shop-staging", "worker").is_none(),
        "worker must be pruned"
    );
    assert!(
        kube.get("deployments", "shop-staging", "other").is_some(),
        "other must stay"
    );
    assert!(
        applied(&r)
            .iter()
            .any(|x| x["name"] == "worker" && x["result"] == "pruned")
    );
}

#[test]
fn dry_run_and_server_dry_run_change_nothing_and_redact_secrets() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/production",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    let writes = kube.writes().len();
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/production")
        .input("images", "registry.example/web:2.0.0")
        .input("dry-run", "true");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    assert_eq!(
        kube.writes().len(),
        writes,
        "dry-run wrote: {:?}",
        &kube.writes()[writes..]
    );
    assert_eq!(
        image(&kube, "shop-production", "web"),
        "registry.example/web:1.0.0"
    );
    assert!(
        r.summary
            .contains("| Deployment | shop-production | web | update |"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("image"), "{}", r.summary);
    let out = r.all_output();
    assert!(
        !out.contains("prod-api-key-do-not-print")
            && !out.contains(&base64("prod-api-key-do-not-print")),
        "secret leaked: {out}"
    );
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/production")
        .input("images", "registry.example/web:2.0.0")
        .input("server-dry-run", "true");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    assert_eq!(kube.writes().len(), writes);
    assert!(
        kube.requests()
            .iter()
            .any(|q| q.query.contains("dryRun=All"))
    );
}

#[test]
fn bad_inputs_fail_clearly_and_apply_nothing() {
    let (kube, k) = setup!();
    let check = |r: &RunResult, needle: &str| {
        r.assert_exit(1);
        assert!(
            r.error_lines().iter().any(|l| l.contains(needle)),
            "expected ::error:: with {needle:?}:\n{}",
            r.all_output()
        );
        assert_no_token(r);
    };
    check(&deploy(&kube, &k, "k8s/overlays/nope", "", &[]), "overlay");
    let r = deploy(&kube, &k, "broken", "", &[]);
    check(&r, "did not find expected key");
    assert!(
        r.stdout
            .contains("file=broken/deployment.yaml,line=4::kustomize failed"),
        "{}",
        r.stdout
    );
    check(
        &deploy(&kube, &k, "k8s/overlays/staging", "web=Bad Image!", &[]),
        "images",
    );
    // Expired token.
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging").input(
        "kubeconfig",
        &base64(&kube.kubeconfig(Some("expired-token-value-123"))),
    );
    check(&c.run("kustomize-deploy"), "refused the credentials");
    // Unreachable cluster.
    let dead = FakeKube::start();
    let dead_cfg = dead.kubeconfig(None);
    drop(dead);
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("kubeconfig", &dead_cfg);
    check(&c.run("kustomize-deploy"), "cannot reach the cluster");
    // Exec plugin missing.
    let exec_cfg = kube.kubeconfig(None).replace("    username: admin\n", "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: gke-gcloud-auth-plugin-missing\n      interactiveMode: Never\n");
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("kubeconfig", &exec_cfg);
    check(&c.run("kustomize-deploy"), "gke-gcloud-auth-plugin-missing");
    // Unknown context.
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("kube-context", "prod-eu");
    check(&c.run("kustomize-deploy"), "prod-eu");
    assert!(
        kube.writes().is_empty(),
        "nothing may be applied: {:?}",
        kube.writes()
    );
}

#[test]
fn kubeconfig_file_and_context_inputs() {
    let (kube, k) = setup!();
    let mut c = ctx(&kube, &k);
    let cfg_path = c.root().join("kubeconfig.yaml");
    std::fs::write(&cfg_path, kube.kubeconfig(Some(TOKEN))).expect("write");
    c.unset("INPUT_KUBECONFIG")
        .input("kubeconfig-file", cfg_path.to_str().expect("utf8"))
        .input("kube-context", "fake")
        .input("overlay", "k8s/overlays/development")
        .input("images", "registry.example/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    assert_eq!(
        image(&kube, "shop-development", "web"),
        "registry.example/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_no_token(&r);
}

/// An overlay with `n` Deployments of 3 replicas each, written under `dir`.
fn many_deployments(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut docs = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n");
    for i in 0..n {
        docs.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i:02}\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: svc-{i:02}\n  template:\n    metadata:\n      labels:\n        app: svc-{i:02}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/app:1.0.0\n"
        ));
    }
    std::fs::write(dir.join("all.yaml"), docs).expect("write");
    std::fs::write(
        dir.join("kustomization.yaml"),
        "namespace: bench\nresources:\n- all.yaml\n",
    )
    .expect("write");
}

/// Benchmark (opt-in: `GANTRY_BENCH=1`, see bench/kustomize-deploy/run.sh): 20 Deployments with
/// gantry vs `kubectl apply --server-side -k` + sequential `kubectl rollout status`, against the
/// same fake server and controller timing; then crash-loop detection latency.
#[test]
#[allow(clippy::disallowed_methods)] // opt-in switches of a benchmark, read directly
fn bench_twenty_deployments_vs_kubectl() {
    if std::env::var_os("GANTRY_BENCH").is_none() {
        gantry_test::skip!("benchmark; set GANTRY_BENCH=1 to run it");
    }
    let Some(k) = kubectl() else {
        gantry_test::skip!("kubectl is not installed");
    };
    let timing = gantry_test::kube::Timing {
        tick: Duration::from_millis(100),
        observe_delay: Duration::from_millis(300),
        ready_delay: Duration::from_millis(500),
        deadline: Duration::from_secs(30),
    };
    let rounds: usize = std::env::var("GANTRY_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..rounds {
        // gantry
        let kube = FakeKube::start_with(timing.clone());
        let mut c = TestContext::new();
        many_deployments(&c.workspace().join("bench"), 20);
        c.input("kubectl", &k)
            .input("kubeconfig", &kube.kubeconfig(None))
            .input("overlay", "bench")
            .input("images", &format!("registry.example/app:1.0.{round}"))
            .input("timeout", "5m");
        let t = Instant::now();
        c.run("kustomize-deploy").assert_success();
        ours.push(t.elapsed());
        drop(kube);
        // kubectl
        let kube = FakeKube::start_with(timing.clone());
        let dir = tempfile::tempdir().expect("tmp");
        many_deployments(&dir.path().join("bench"), 20);
        let cfg = dir.path().join("kubeconfig");
        std::fs::write(&cfg, kube.kubeconfig(None)).expect("write");
        #[allow(clippy::disallowed_methods)] // the benchmark runs the real kubectl, as users do
        let run = |args: &[&str]| {
            let o = std::process::Command::new(&k)
                .args(args)
                .env("KUBECONFIG", &cfg)
                .env("HOME", dir.path())
                .output()
                .expect("kubectl");
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let t = Instant::now();
        run(&[
            "apply",
            "--server-side",
            "--validate=false",
            "-k",
            dir.path().join("bench").to_str().expect("utf8"),
        ]);
        for i in 0..20 {
            run(&[
                "rollout",
                "status",
                &format!("deployment/svc-{i:02}"),
                "-n",
                "bench",
                "--timeout=5m",
            ]);
        }
        theirs.push(t.elapsed());
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (o, t) = (med(&mut ours), med(&mut theirs));
    // Crash-loop detection latency: first CrashLoopBackOff in the fake → our `rollout failed` line.
    let kube = FakeKube::start_with(timing.clone());
    let mut c = TestContext::new();
    many_deployments(&c.workspace().join("bench"), 20);
    c.input("kubectl", &k)
        .input("kubeconfig", &kube.kubeconfig(None))
        .input("overlay", "bench")
        .input("timeout", "5m");
    c.run("kustomize-deploy").assert_success();
    c.input("images", "registry.example/app:2.0.0-crashloop")
        .input("rollback-on-failure", "false");
    let mut cmd = c.command("kustomize-deploy");
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut detected = None;
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        if line.contains("rollout failed") && detected.is_none() {
            detected = Some(Instant::now());
        }
    }
    let _ = child.wait();
    let first = kube.first_crashloop().expect("a pod crash-looped");
    let latency = detected
        .expect("failure reported")
        .saturating_duration_since(first);
    let line = format!(
        "kustomize-deploy bench: 20 Deployments x 3 replicas, median of {rounds}: gantry {:.2}s vs kubectl apply -k + sequential rollout status {:.2}s = {:.1}x faster; crash-loop detected {} ms after the first CrashLoopBackOff",
        o.as_secs_f64(),
        t.as_secs_f64(),
        t.as_secs_f64() / o.as_secs_f64(),
        latency.as_millis()
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{line}");
    }
    assert!(latency < Duration::from_secs(2), "{line}");
}

fn selector_color(kube: &FakeKube, ns: &str) -> Option<String> {
    kube.get("services", ns, "web")?["spec"]["selector"]["gantry.dev/color"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn blue_green_switches_keeps_the_old_color_switches_back_and_rejects_a_bad_color() {
    let (kube, k) = setup!();
    let bg = [("strategy", "blue-green")];
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:1.0.0",
        &bg,
    );
    r.assert_success();
    assert_eq!(r.output("color"), Some("blue"));
    assert_eq!(
        selector_color(&kube, "shop-staging").as_deref(),
        Some("blue")
    );
    assert_eq!(
        image(&kube, "shop-staging", "web-blue"),
        "registry.example/web:1.0.0"
    );
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:2.0.0",
        &bg,
    );
    r.assert_success();
    assert_eq!(r.output("color"), Some("green"));
    assert_eq!(
        selector_color(&kube, "shop-staging").as_deref(),
        Some("green")
    );
    assert_eq!(
        image(&kube, "shop-staging", "web-green"),
        "registry.example/web:2.0.0"
    );
    assert_eq!(
        image(&kube, "shop-staging", "web-blue"),
        "registry.example/web:1.0.0",
        "the old color is kept"
    );
    // Manual rollback switches the Service back to blue at once.
    let mut c = ctx(&kube, &k);
    c.input("overlay", "k8s/overlays/staging")
        .input("strategy", "blue-green")
        .input("rollback", "true");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    assert_eq!(r.output("color"), Some("blue"));
    assert_eq!(
        selector_color(&kube, "shop-staging").as_deref(),
        Some("blue")
    );
    // A crash-looping green is rejected: deleted, traffic stays on blue.
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/staging",
        "registry.example/web:3.0.0-crashloop",
        &bg,
    );
    r.assert_exit(1);
    assert_eq!(r.output("rolled-back"), Some("true"));
    assert_eq!(
        selector_color(&kube, "shop-staging").as_deref(),
        Some("blue")
    );
    assert!(
        kube.get("deployments", "shop-staging", "web-green")
            .is_none()
    );
    assert_eq!(
        image(&kube, "shop-staging", "web-blue"),
        "registry.example/web:1.0.0"
    );
}

#[test]
fn canary_promotes_a_healthy_version_and_rejects_a_crashing_one() {
    let (kube, k) = setup!();
    deploy(
        &kube,
        &k,
        "k8s/overlays/production",
        "registry.example/web:1.0.0",
        &[],
    )
    .assert_success();
    let canary = [
        ("strategy", "canary"),
        ("canary-duration", "1s"),
        ("canary-replicas", "34%"),
        ("health-check-url", "http://web.shop-production.svc/healthz"),
    ];
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/production",
        "registry.example/web:2.0.0",
        &canary,
    );
    r.assert_success();
    assert_eq!(
        image(&kube, "shop-production", "web"),
        "registry.example/web:2.0.0"
    );
    assert!(
        kube.requests().iter().any(|q| q.method == "PATCH"
            && q.path
                .starts_with("/apis/batch/v1/namespaces/shop-production/jobs/gantry-health-")),
        "the health check runs as an in-cluster Job"
    );
    assert!(
        kube.get("deployments", "shop-production", "web-canary")
            .is_none(),
        "canary removed after promotion"
    );
    assert!(
        applied(&r)
            .iter()
            .any(|x| x["name"] == "web-canary" && x["result"] == "deleted (promoted)"),
        "{:?}",
        applied(&r)
    );
    let r = deploy(
        &kube,
        &k,
        "k8s/overlays/production",
        "registry.example/web:3.0.0-crashloop",
        &[("strategy", "canary"), ("canary-duration", "5s")],
    );
    r.assert_exit(1);
    assert!(
        r.all_output().contains("canary rejected"),
        "{}",
        r.all_output()
    );
    assert_eq!(r.output("rolled-back"), Some("true"));
    assert_eq!(
        image(&kube, "shop-production", "web"),
        "registry.example/web:2.0.0",
        "stable untouched"
    );
    assert!(
        kube.get("deployments", "shop-production", "web-canary")
            .is_none(),
        "canary deleted after rejection"
    );
}

#[test]
fn statefulsets_daemonsets_and_jobs_are_waited_in_parallel_and_on_delete_is_reported() {
    let (kube, k) = setup!();
    let mut c = ctx(&kube, &k);
    let dir = c.workspace().join("workloads");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let pod = |name: &str| {
        format!(
            "    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: registry.example/{name}:1\n"
        )
    };
    let text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: data\n---\n\
         apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: 2\n  serviceName: db\n  selector:\n    matchLabels:\n      app: db\n  template:\n{}---\n\
         apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: legacy\nspec:\n  replicas: 1\n  updateStrategy:\n    type: OnDelete\n  selector:\n    matchLabels:\n      app: legacy\n  template:\n{}---\n\
         apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n{}---\n\
         apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n{}",
        pod("db"),
        pod("legacy"),
        pod("agent"),
        pod("migrate").replace("    spec:\n", "    spec:\n      restartPolicy: Never\n")
    );
    std::fs::write(dir.join("all.yaml"), text).expect("write");
    std::fs::write(
        dir.join("kustomization.yaml"),
        "namespace: data\nresources:\n- all.yaml\n",
    )
    .expect("write");
    c.input("overlay", "workloads")
        .input("images", "registry.example/db:2");
    let r = c.run("kustomize-deploy");
    r.assert_success();
    let sts = kube.get("statefulsets", "data", "db").expect("db");
    assert_eq!(sts["status"]["readyReplicas"], 2);
    assert_eq!(
        sts["status"]["updateRevision"],
        sts["status"]["currentRevision"]
    );
    assert_eq!(
        kube.get("daemonsets", "data", "agent").expect("agent")["status"]["numberAvailable"],
        2
    );
    assert_eq!(
        kube.get("jobs", "data", "migrate").expect("job")["status"]["succeeded"],
        1
    );
    assert!(
        r.stdout.contains("not waited::StatefulSet/data/legacy"),
        "{}",
        r.stdout
    );
    // A crash-looping StatefulSet pod fails early too (StatefulSets have no deadline condition).
    c.input("images", "registry.example/db:3-crashloop")
        .input("rollback-on-failure", "false");
    let start = Instant::now();
    let r = c.run("kustomize-deploy");
    r.assert_exit(1);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(
        r.all_output().contains("StatefulSet/data/db")
            && r.all_output().contains("CrashLoopBackOff"),
        "{}",
        r.all_output()
    );
}
