//! Cross-checks of the fake API server with the real `kubectl` 1.32: server-side apply,
//! conflicts and force, `rollout status` (watch), `rollout undo`, `get -w`. Skipped with a printed
//! reason when kubectl is not installed.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::print_stderr)] // test harness: runs kubectl directly

use std::process::{Command, Output};
use std::time::Duration;

use super::FakeKube;

pub(crate) const KUBECTL_CANDIDATES: &[&str] =
    &["/usr/lib/google-cloud-sdk/bin/kubectl.1.32", "kubectl"];

fn kubectl_bin() -> Option<&'static str> {
    KUBECTL_CANDIDATES
        .iter()
        .copied()
        .find(|c| crate::have_program(c))
}

struct Kc {
    bin: &'static str,
    cfg: tempfile::NamedTempFile,
}

impl Kc {
    fn new(k: &FakeKube) -> Option<Self> {
        let bin = kubectl_bin()?;
        let cfg = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(cfg.path(), k.kubeconfig(None)).unwrap();
        Some(Self { bin, cfg })
    }
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut c = Command::new(self.bin);
        c.env("KUBECONFIG", self.cfg.path())
            .env("HOME", "/nonexistent")
            .args(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const DEPLOY: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: staging\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: staging\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: registry.local:5000/web:IMAGE\n";

#[test]
fn kubectl_server_side_apply_rollout_status_undo_and_conflicts() {
    if std::env::var_os("FAKE_KUBE_HOLD").is_some() {
        let k = FakeKube::start();
        std::fs::write("/tmp/fake-kube.yaml", k.kubeconfig(None)).unwrap();
        eprintln!("fake kube at {}", k.url());
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let k = FakeKube::start();
    let Some(kc) = Kc::new(&k) else {
        crate::skip!("kubectl not installed");
    };
    let apply = |tag: &str, extra: &[&str]| {
        let mut args = vec![
            "apply",
            "--server-side",
            "--validate=false",
            "--field-manager=gantry",
            "-f",
            "-",
        ];
        args.extend_from_slice(extra);
        kc.run(&args, Some(&DEPLOY.replace("IMAGE", tag)))
    };
    let o = apply("1.0.0", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("deployment.apps/web serverside-applied"),
        "{}",
        text(&o)
    );
    let o = kc.run(
        &[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "staging",
            "--timeout=20s",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("successfully rolled out"), "{}", text(&o));

    // A second version, then `rollout undo` goes back to the first through the ReplicaSets.
    let o = apply("2.0.0", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = kc.run(
        &[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "staging",
            "--timeout=20s",
        ],
        None,
    );
    assert!(
        text(&o).contains("Waiting for deployment spec update to be observed")
            || text(&o).contains("successfully rolled out"),
        "{}",
        text(&o)
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = kc.run(&["rollout", "undo", "deploy/web", "-n", "staging"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("rolled back"), "{}", text(&o));
    let d = k.get("deployments", "staging", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local:5000/web:1.0.0"
    );
    // After the undo, an un-forced apply conflicts with kubectl's Update; force wins.
    let o = apply("3.0.0", &[]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("conflict"), "{}", text(&o));
    let o = apply("3.0.0", &["--force-conflicts"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = kc.run(
        &[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "staging",
            "--timeout=20s",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = kc.run(&["rollout", "history", "deploy/web", "-n", "staging"], None);
    assert!(o.status.success(), "{}", text(&o));

    // Server dry run changes nothing.
    let o = apply("4.0.0", &["--force-conflicts", "--dry-run=server"]);
    assert!(o.status.success(), "{}", text(&o));
    let d = k.get("deployments", "staging", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local:5000/web:3.0.0"
    );

    // A deadline image: rollout status fails with kubectl's message.
    let o = apply("deadline", &["--force-conflicts"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = kc.run(
        &[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "staging",
            "--timeout=20s",
        ],
        None,
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("exceeded its progress deadline"),
        "{}",
        text(&o)
    );

    // get (table or not), get -o json, events and logs.
    let o = kc.run(&["get", "deploy,rs,pods", "-n", "staging"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("web"), "{}", text(&o));
}

#[test]
fn kubectl_get_watch_streams_changes() {
    let k = FakeKube::start();
    let Some(kc) = Kc::new(&k) else {
        crate::skip!("kubectl not installed");
    };
    let o = kc.run(
        &["apply", "--server-side", "--validate=false", "-f", "-"],
        Some(&DEPLOY.replace("IMAGE", "1")),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = kc.run(
        &[
            "get",
            "deploy",
            "web",
            "-n",
            "staging",
            "-w",
            "--request-timeout=3s",
        ],
        None,
    );
    let t = text(&o);
    assert!(
        t.matches("web").count() >= 2,
        "expected several watch lines: {t}"
    );
}

const STS_DS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: data\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: data\nspec:\n  replicas: 2\n  serviceName: db\n  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n      - name: db\n        image: db:TAG\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: data\nspec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      containers:\n      - name: agent\n        image: agent:TAG\n";

#[test]
fn kubectl_rollout_status_for_statefulsets_and_daemonsets_events_and_previous_logs() {
    let k = FakeKube::start();
    let Some(kc) = Kc::new(&k) else {
        crate::skip!("kubectl not installed");
    };
    for tag in ["1", "2"] {
        let o = kc.run(
            &["apply", "--server-side", "--validate=false", "-f", "-"],
            Some(&STS_DS.replace("TAG", tag)),
        );
        assert!(o.status.success(), "{}", text(&o));
        for what in ["statefulset/db", "daemonset/agent"] {
            let o = kc.run(
                &["rollout", "status", what, "-n", "data", "--timeout=20s"],
                None,
            );
            assert!(o.status.success(), "{what}: {}", text(&o));
            assert!(
                text(&o).contains("complete") || text(&o).contains("successfully rolled out"),
                "{what}: {}",
                text(&o)
            );
        }
    }
    // A crash-looping StatefulSet: events and the previous container's logs through kubectl.
    let o = kc.run(
        &["apply", "--server-side", "--validate=false", "-f", "-"],
        Some(&STS_DS.replace("db:TAG", "db:crashloop").replace("TAG", "2")),
    );
    assert!(o.status.success(), "{}", text(&o));
    let mut seen = false;
    for _ in 0..100 {
        // No server-side Table printing: ask for the fields explicitly.
        let o = kc.run(
            &[
                "get",
                "events",
                "-n",
                "data",
                "-o",
                "jsonpath={.items[*].reason}",
            ],
            None,
        );
        if text(&o).contains("BackOff") {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = kc.run(&["get", "events,pods", "-n", "data"], None);
    assert!(seen, "no BackOff event: {}", text(&o));
    let o = kc.run(&["logs", "db-1", "-n", "data", "--previous"], None);
    assert!(text(&o).contains("DATABASE_URL is not set"), "{}", text(&o));
}
