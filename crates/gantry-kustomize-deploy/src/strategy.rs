//! Blue-green and canary: how manifests are transformed (colored Deployments `<name>-blue` /
//! `<name>-green` with a `gantry.dev/color` selector label, canary Deployments `<name>-canary`
//! with `gantry.dev/track: canary`), which Services front which Deployments, the in-cluster
//! health-check Job, and a health watch over a fixed period. The run order lives in `run.rs`.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::apply::{self, Obj};
use crate::config::CanarySize;
use crate::rollout::{self, Progress, Workload};

/// Selector label that pins a Service to one color.
pub const COLOR_LABEL: &str = "gantry.dev/color";
/// Label of canary pods.
pub const TRACK_LABEL: &str = "gantry.dev/track";

/// The other color.
pub fn other(color: &str) -> &'static str {
    if color == "blue" { "green" } else { "blue" }
}

/// Whether Service `svc` selects the pods of Deployment `dep` (ignoring our color label).
pub fn selects(svc: &Value, dep: &Value) -> bool {
    let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    let labels = dep.pointer("/spec/template/metadata/labels");
    !sel.is_empty()
        && sel
            .iter()
            .filter(|(k, _)| k.as_str() != COLOR_LABEL)
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn relabel(o: &Obj, suffix: &str, key: &str, value: &str) -> Obj {
    let mut c = o.clone();
    c.name = format!("{}-{suffix}", o.name);
    c.manifest["metadata"]["name"] = json!(c.name);
    if !c.manifest["spec"]["selector"]["matchLabels"].is_object() {
        c.manifest["spec"]["selector"]["matchLabels"] = json!({});
    }
    c.manifest["spec"]["selector"]["matchLabels"][key] = json!(value);
    if !c.manifest["spec"]["template"]["metadata"]["labels"].is_object() {
        c.manifest["spec"]["template"]["metadata"]["labels"] = json!({});
    }
    c.manifest["spec"]["template"]["metadata"]["labels"][key] = json!(value);
    c.manifest["metadata"]["labels"][key] = json!(value);
    c
}

/// `<name>-<color>` with the color in its selector and pod labels.
pub fn colored(dep: &Obj, color: &str) -> Obj {
    relabel(dep, color, COLOR_LABEL, color)
}

/// A Service pinned to `color`.
pub fn pinned(svc: &Obj, color: &str) -> Obj {
    let mut c = svc.clone();
    c.manifest["spec"]["selector"][COLOR_LABEL] = json!(color);
    c
}

/// `<name>-canary` with `size` pods.
pub fn canary(dep: &Obj, size: CanarySize) -> Obj {
    let mut c = relabel(dep, "canary", TRACK_LABEL, "canary");
    let replicas = dep
        .manifest
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    c.manifest["spec"]["replicas"] = json!(size.pods(replicas));
    c
}

/// Runs `curl -fsS <url>` in a short-lived Job in `namespace` and waits for it.
pub async fn health_check(
    client: &kube::Client,
    namespace: &str,
    url: &str,
    image: &str,
    manager: &str,
    timeout: Duration,
    cancel: &gantry_runtime::Cancel,
) -> Result<(), String> {
    let name = format!(
        "gantry-health-{}",
        chrono::Utc::now().timestamp_millis() % 1_000_000_000
    );
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "gantry"}},
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600, "template": {
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "gantry", "gantry.dev/health-check": "true"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "check", "image": image,
                "args": ["-fsS", "--max-time", "10", "--retry", "3", "--retry-all-errors", url]}]}}},
    });
    let o = apply::from_saved("batch/v1", "Job", "jobs", Some(namespace), job);
    apply::apply_one(client, &o, manager, false)
        .await
        .map_err(|e| e.to_string())?;
    let w = Workload {
        kind: "Job".into(),
        namespace: namespace.into(),
        name: name.clone(),
    };
    let out = rollout::wait_all(client, std::slice::from_ref(&w), timeout, cancel, |_| {})
        .await
        .map_err(|e| e.to_string());
    let _ = apply::delete(client, &o, false).await;
    let out = out?;
    match out.results.get(&w.id()) {
        Some(Progress::Done(_)) => Ok(()),
        Some(Progress::Failed(m)) => Err(format!("health check of {url} failed: {m}")),
        _ => Err(format!(
            "health check of {url} did not finish in {}",
            gantry_runtime::duration::human(timeout)
        )),
    }
}

/// Watches `workloads` for `period`: fails on a failed rollout condition or a crash-looping pod.
pub async fn watch_healthy(
    client: &kube::Client,
    workloads: &[Workload],
    period: Duration,
    cancel: &gantry_runtime::Cancel,
) -> Result<(), String> {
    let end = Instant::now() + period;
    loop {
        for w in workloads {
            let ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps", "v1", "Deployment"),
                "deployments",
            );
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &w.namespace, &ar);
            let obj = api
                .get(&w.name)
                .await
                .map_err(|e| format!("{}: {e}", w.id()))?;
            let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
            if let Progress::Failed(m) = rollout::evaluate(&w.kind, &v) {
                return Err(format!("{}: {m}", w.id()));
            }
            let selector = v
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let pods: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                &w.namespace,
                &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods"),
            );
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| format!("{}: {e}", w.id()))?;
            for p in list {
                let pv = serde_json::to_value(&p).unwrap_or(Value::Null);
                if let Some((c, r)) = rollout::pod_failure(&pv) {
                    return Err(format!(
                        "{}: pod {} container {c}: {r}",
                        w.id(),
                        p.metadata.name.unwrap_or_default()
                    ));
                }
            }
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err("cancelled".into()),
            _ = tokio::time::sleep((end - now).min(Duration::from_millis(500))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep() -> Obj {
        apply::from_saved(
            "apps/v1",
            "Deployment",
            "deployments",
            Some("ns"),
            json!({"apiVersion":"apps/v1","kind":"Deployment",
            "metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":10,"selector":{"matchLabels":{"app":"web"}},
            "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"x:1"}]}}}}),
        )
    }

    #[test]
    fn colored_and_canary_variants() {
        let g = colored(&dep(), "green");
        assert_eq!(g.name, "web-green");
        assert_eq!(
            g.manifest["spec"]["selector"]["matchLabels"][COLOR_LABEL],
            "green"
        );
        assert_eq!(
            g.manifest["spec"]["template"]["metadata"]["labels"][COLOR_LABEL],
            "green"
        );
        let c = canary(&dep(), CanarySize::Percent(10));
        assert_eq!(c.name, "web-canary");
        assert_eq!(c.manifest["spec"]["replicas"], 1);
        assert_eq!(
            canary(&dep(), CanarySize::Percent(25)).manifest["spec"]["replicas"],
            3
        );
        let svc = json!({"spec":{"selector":{"app":"web", COLOR_LABEL: "blue"}}});
        assert!(selects(&svc, &dep().manifest));
        assert!(!selects(
            &json!({"spec":{"selector":{"app":"db"}}}),
            &dep().manifest
        ));
    }
}
