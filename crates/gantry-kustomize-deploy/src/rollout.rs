//! Waiting for workloads: kubectl's exact `rollout status` rules as pure functions over the
//! object JSON ([`evaluate`]), an early failure when pods of the new revision crash-loop or cannot
//! pull their image ([`pod_failure`]), and the wait itself: one watch per kind and namespace,
//! every workload evaluated on every event, one deadline for all ([`wait_all`]). Diagnostics of
//! failed workloads are gathered by [`diagnose`]. It must not write to the cluster.
//!
//! See: <https://github.com/kubernetes/kubectl/blob/master/pkg/polymorphichelpers/rollout_status.go>

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::Value;

/// Where a workload's rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still going, with kubectl's message.
    Waiting(String),
    /// Done.
    Done(String),
    /// Failed (a terminal condition).
    Failed(String),
    /// Not waitable (OnDelete strategy); reported as "applied, not waited".
    NotWaited(String),
}

fn i(v: &Value, path: &str) -> i64 {
    v.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

/// kubectl's completion rules for Deployments, StatefulSets, DaemonSets; Jobs by conditions.
pub fn evaluate(kind: &str, obj: &Value) -> Progress {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let generation = i(obj, "/metadata/generation");
    let observed = i(obj, "/status/observedGeneration");
    match kind {
        "Deployment" => {
            if generation > observed {
                return Progress::Waiting(
                    "waiting for the deployment spec update to be observed".into(),
                );
            }
            if let Some(c) = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
                && c["reason"] == "ProgressDeadlineExceeded"
            {
                return Progress::Failed(format!(
                    "deployment \"{name}\" exceeded its progress deadline"
                ));
            }
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let updated = i(obj, "/status/updatedReplicas");
            let total = i(obj, "/status/replicas");
            let available = i(obj, "/status/availableReplicas");
            if updated < replicas {
                return Progress::Waiting(format!(
                    "{updated} out of {replicas} new replicas have been updated"
                ));
            }
            if total > updated {
                return Progress::Waiting(format!(
                    "{} old replicas are pending termination",
                    total - updated
                ));
            }
            if available < updated {
                return Progress::Waiting(format!(
                    "{available} of {updated} updated replicas are available"
                ));
            }
            Progress::Done(format!("{available}/{replicas} available"))
        }
        "StatefulSet" => {
            if obj
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str)
                == Some("OnDelete")
            {
                return Progress::NotWaited(
                    "updateStrategy OnDelete: pods change only when deleted".into(),
                );
            }
            if observed == 0 || generation > observed {
                return Progress::Waiting(
                    "waiting for the statefulset spec update to be observed".into(),
                );
            }
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = i(obj, "/status/readyReplicas");
            if ready < replicas {
                return Progress::Waiting(format!("{ready} of {replicas} pods are ready"));
            }
            if let Some(ru) = obj
                .pointer("/spec/updateStrategy/rollingUpdate")
                .filter(|v| v.is_object())
            {
                if let Some(p) = ru.get("partition").and_then(Value::as_i64) {
                    let updated = i(obj, "/status/updatedReplicas");
                    if updated < replicas - p {
                        return Progress::Waiting(format!(
                            "{updated} of {} pods updated (partition {p})",
                            replicas - p
                        ));
                    }
                }
                return Progress::Done(format!("{ready}/{replicas} ready"));
            }
            let cur = obj.pointer("/status/currentRevision");
            let upd = obj.pointer("/status/updateRevision");
            if cur != upd {
                return Progress::Waiting(format!(
                    "{} of {replicas} pods updated",
                    i(obj, "/status/updatedReplicas")
                ));
            }
            Progress::Done(format!("{ready}/{replicas} ready"))
        }
        "DaemonSet" => {
            if obj
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str)
                == Some("OnDelete")
            {
                return Progress::NotWaited(
                    "updateStrategy OnDelete: pods change only when deleted".into(),
                );
            }
            if generation > observed {
                return Progress::Waiting(
                    "waiting for the daemon set spec update to be observed".into(),
                );
            }
            let desired = i(obj, "/status/desiredNumberScheduled");
            let updated = i(obj, "/status/updatedNumberScheduled");
            let available = i(obj, "/status/numberAvailable");
            if updated < desired {
                return Progress::Waiting(format!(
                    "{updated} out of {desired} new pods have been updated"
                ));
            }
            if available < desired {
                return Progress::Waiting(format!(
                    "{available} of {desired} updated pods are available"
                ));
            }
            Progress::Done(format!("{available}/{desired} available"))
        }
        "Job" => {
            let conds = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(c) = conds
                .iter()
                .find(|c| c["type"] == "Failed" && c["status"] == "True")
            {
                return Progress::Failed(format!(
                    "job \"{name}\" failed: {}",
                    c["reason"].as_str().unwrap_or("Failed")
                ));
            }
            if conds
                .iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
            {
                return Progress::Done(format!("{} succeeded", i(obj, "/status/succeeded")));
            }
            Progress::Waiting(format!(
                "{} active, {} succeeded",
                i(obj, "/status/active"),
                i(obj, "/status/succeeded")
            ))
        }
        _ => Progress::Done(String::new()),
    }
}

/// Container waiting reasons that fail a rollout at once.
pub const FATAL_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// The fatal waiting reason of a pod, if any: `(container, reason)`.
pub fn pod_failure(pod: &Value) -> Option<(String, String)> {
    for key in ["initContainerStatuses", "containerStatuses"] {
        for cs in pod
            .pointer(&format!("/status/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = cs.pointer("/state/waiting/reason").and_then(Value::as_str)
                && FATAL_REASONS.contains(&r)
            {
                return Some((cs["name"].as_str().unwrap_or("").to_string(), r.to_string()));
            }
        }
    }
    None
}

/// A workload to wait for.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Workload {
    /// `Kind/namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The result per workload.
#[derive(Clone, Debug)]
pub struct WaitOutcome {
    /// Final progress per workload id.
    pub results: BTreeMap<String, Progress>,
    /// Whether the deadline passed.
    pub timed_out: bool,
    /// Failed workloads (with their failing pods).
    pub failed: Vec<(Workload, String)>,
}

fn api_resource(kind: &str) -> ApiResource {
    let (g, plural) = match kind {
        "Deployment" => ("apps", "deployments"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "ReplicaSet" => ("apps", "replicasets"),
        "Job" => ("batch", "jobs"),
        _ => ("", "pods"),
    };
    let k = if plural == "pods" { "Pod" } else { kind };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, "v1", k), plural)
}

/// Whether `pod` belongs to the *new* revision of workload `w` (given the live objects).
fn is_new_pod(
    w: &Workload,
    obj: &Value,
    pod: &Value,
    rses: &HashMap<(String, String), Value>,
) -> bool {
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let labels = &pod["metadata"]["labels"];
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("-");
    match w.kind.as_str() {
        "Deployment" => {
            let rev = obj
                .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str);
            owners.iter().any(|o| {
                o["kind"] == "ReplicaSet"
                    && rses
                        .get(&(
                            w.namespace.clone(),
                            o["name"].as_str().unwrap_or("").to_string(),
                        ))
                        .is_some_and(|rs| {
                            rs.pointer("/metadata/ownerReferences")
                                .and_then(Value::as_array)
                                .is_some_and(|a| a.iter().any(|x| x["uid"] == uid))
                                && rev.is_some()
                                && rs
                                    .pointer(
                                        "/metadata/annotations/deployment.kubernetes.io~1revision",
                                    )
                                    .and_then(Value::as_str)
                                    == rev
                        })
            })
        }
        "StatefulSet" => {
            owners.iter().any(|o| o["uid"] == uid)
                && labels["controller-revision-hash"].as_str().is_some()
                && obj
                    .pointer("/status/updateRevision")
                    .and_then(Value::as_str)
                    == labels["controller-revision-hash"].as_str()
        }
        _ => owners.iter().any(|o| o["uid"] == uid),
    }
}

type Key = (String, String, String);

/// Waits for every workload under one deadline; returns early on the first failure.
pub async fn wait_all(
    client: &kube::Client,
    workloads: &[Workload],
    timeout: Duration,
    cancel: &gantry_runtime::Cancel,
    mut progress: impl FnMut(&str),
) -> Result<WaitOutcome, kube::Error> {
    let deadline = Instant::now() + timeout;
    let mut streams = Vec::new();
    let mut namespaces: Vec<String> = workloads.iter().map(|w| w.namespace.clone()).collect();
    namespaces.sort();
    namespaces.dedup();
    let mut kinds: Vec<(String, String)> = workloads
        .iter()
        .map(|w| (w.kind.clone(), w.namespace.clone()))
        .collect();
    kinds.sort();
    kinds.dedup();
    for (kind, ns) in &kinds {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(kind));
        let k = kind.clone();
        streams.push(
            watcher(api, watcher::Config::default())
                .map_ok(move |e| (k.clone(), e))
                .boxed(),
        );
        if kind == "Deployment" {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &api_resource("ReplicaSet"));
            streams.push(
                watcher(api, watcher::Config::default())
                    .map_ok(|e| ("ReplicaSet".to_string(), e))
                    .boxed(),
            );
        }
    }
    for ns in &namespaces {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &api_resource("Pod"));
        streams.push(
            watcher(api, watcher::Config::default())
                .map_ok(|e| ("Pod".to_string(), e))
                .boxed(),
        );
    }
    let mut merged = futures::stream::select_all(streams);
    let mut objs: HashMap<Key, Value> = HashMap::new();
    let mut rses: HashMap<(String, String), Value> = HashMap::new();
    let mut pods: HashMap<(String, String), Value> = HashMap::new();
    let mut results: BTreeMap<String, Progress> = workloads
        .iter()
        .map(|w| {
            (
                w.id(),
                Progress::Waiting("waiting for the first status".into()),
            )
        })
        .collect();
    let mut last_print = Instant::now();
    let mut errors = 0u32;
    let mut gone: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    loop {
        // Evaluate everything.
        for w in workloads {
            let key = (w.kind.clone(), w.namespace.clone(), w.name.clone());
            if gone.contains(&w.id()) {
                results.insert(w.id(), Progress::Failed("deleted while waiting".into()));
                continue;
            }
            let Some(obj) = objs.get(&key) else { continue };
            let mut p = evaluate(&w.kind, obj);
            // Pods are judged only once the controller has observed this generation: before
            // that, "new revision" still means the previous one.
            let observed = obj
                .pointer("/status/observedGeneration")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                >= obj
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
            if let Progress::Waiting(_) = p
                && (observed || w.kind == "Job")
            {
                let mut bad: Vec<String> = pods
                    .values()
                    .filter(|pod| {
                        pod["metadata"]["namespace"] == w.namespace.as_str()
                            && is_new_pod(w, obj, pod, &rses)
                    })
                    .filter_map(|pod| {
                        pod_failure(pod).map(|(c, r)| {
                            format!(
                                "pod {} container {c}: {r}",
                                pod["metadata"]["name"].as_str().unwrap_or("")
                            )
                        })
                    })
                    .collect();
                bad.sort();
                if let Some(first) = bad.first() {
                    p = Progress::Failed(format!(
                        "new pods are failing: {first}{}",
                        if bad.len() > 1 {
                            format!(" (+{} more)", bad.len() - 1)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            results.insert(w.id(), p);
        }
        let failed: Vec<(Workload, String)> = workloads
            .iter()
            .filter_map(|w| match results.get(&w.id()) {
                Some(Progress::Failed(m)) => Some((w.clone(), m.clone())),
                _ => None,
            })
            .collect();
        let pending = results
            .values()
            .filter(|p| matches!(p, Progress::Waiting(_)))
            .count();
        if !failed.is_empty() || pending == 0 {
            return Ok(WaitOutcome {
                results,
                timed_out: false,
                failed,
            });
        }
        if last_print.elapsed() >= Duration::from_secs(3) {
            last_print = Instant::now();
            let line = results
                .iter()
                .filter_map(|(id, p)| match p {
                    Progress::Waiting(m) => Some(format!("{id}: {m}")),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("; ");
            progress(&format!(
                "{} of {} workloads ready; {line}",
                results.len() - pending,
                results.len()
            ));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(WaitOutcome {
                results,
                timed_out: true,
                failed: Vec::new(),
            });
        }
        let tick = (deadline - now).min(Duration::from_secs(3));
        let ev = tokio::select! {
            _ = cancel.cancelled() => return Ok(WaitOutcome { results, timed_out: true, failed }),
            _ = tokio::time::sleep(tick) => continue,
            ev = merged.next() => ev,
        };
        let Some(ev) = ev else {
            return Ok(WaitOutcome {
                results,
                timed_out: true,
                failed: Vec::new(),
            });
        };
        // Take everything already buffered before evaluating again (a rollout emits bursts).
        let mut batch = vec![ev];
        while batch.len() < 2000 {
            match futures::FutureExt::now_or_never(merged.next()) {
                Some(Some(ev)) => batch.push(ev),
                _ => break,
            }
        }
        for ev in batch {
            let (kind, ev) = match ev {
                Ok(x) => x,
                Err(e) => {
                    errors += 1;
                    tracing::warn!("watch error (retrying): {e}");
                    if errors > 50 {
                        return Err(kube::Error::Service(Box::new(e)));
                    }
                    continue;
                }
            };
            let (obj, deleted) = match ev {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => (o, false),
                watcher::Event::Delete(o) => (o, true),
                watcher::Event::Init | watcher::Event::InitDone => continue,
            };
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            let name = obj.metadata.name.clone().unwrap_or_default();
            let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
            match kind.as_str() {
                "Pod" if deleted => {
                    pods.remove(&(ns, name));
                }
                "Pod" => {
                    pods.insert((ns, name), v);
                }
                "ReplicaSet" if deleted => {
                    rses.remove(&(ns, name));
                }
                "ReplicaSet" => {
                    rses.insert((ns, name), v);
                }
                _ if deleted => {
                    objs.remove(&(kind.clone(), ns.clone(), name.clone()));
                    gone.insert(format!("{kind}/{ns}/{name}"));
                }
                _ => {
                    gone.remove(&format!("{kind}/{ns}/{name}"));
                    objs.insert((kind, ns, name), v);
                }
            }
        }
    }
}

/// Diagnostics of one failing pod.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PodReport {
    /// Pod name.
    pub pod: String,
    /// Container states (`web: waiting CrashLoopBackOff (restarts 3, last exit 1 Error)`).
    pub containers: Vec<String>,
    /// Last events (`Warning BackOff: …`).
    pub events: Vec<String>,
    /// Tail of the (previous) container log.
    pub logs: String,
}

fn container_line(cs: &Value) -> String {
    let name = cs["name"].as_str().unwrap_or("");
    let restarts = cs["restartCount"].as_i64().unwrap_or(0);
    let state = if let Some(w) = cs.pointer("/state/waiting") {
        format!("waiting {}", w["reason"].as_str().unwrap_or(""))
    } else if let Some(t) = cs.pointer("/state/terminated") {
        format!(
            "terminated {} (exit {})",
            t["reason"].as_str().unwrap_or(""),
            t["exitCode"]
        )
    } else if cs.pointer("/state/running").is_some() {
        "running".into()
    } else {
        "unknown".into()
    };
    let last = cs
        .pointer("/lastState/terminated")
        .map(|t| {
            format!(
                ", last exit {} {}",
                t["exitCode"],
                t["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let msg = cs
        .pointer("/state/waiting/message")
        .and_then(Value::as_str)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    format!("{name}: {state} (restarts {restarts}{last}){msg}")
}

/// Gathers the failing pods of the new revision of `w`, their events and log tails.
pub async fn diagnose(client: &kube::Client, w: &Workload) -> Vec<PodReport> {
    let pods_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &w.namespace, &api_resource("Pod"));
    let wl_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &w.namespace, &api_resource(&w.kind));
    let Ok(obj) = wl_api.get(&w.name).await else {
        return Vec::new();
    };
    let obj = serde_json::to_value(&obj).unwrap_or(Value::Null);
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut rses = HashMap::new();
    if w.kind == "Deployment" {
        let rs_api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &w.namespace, &api_resource("ReplicaSet"));
        if let Ok(list) = rs_api.list(&ListParams::default().labels(&selector)).await {
            for rs in list {
                let v = serde_json::to_value(&rs).unwrap_or(Value::Null);
                rses.insert(
                    (
                        w.namespace.clone(),
                        rs.metadata.name.clone().unwrap_or_default(),
                    ),
                    v,
                );
            }
        }
    }
    let Ok(list) = pods_api
        .list(&ListParams::default().labels(&selector))
        .await
    else {
        return Vec::new();
    };
    let typed_pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(client.clone(), &w.namespace);
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), &w.namespace);
    let mut out = Vec::new();
    for p in list {
        let v = serde_json::to_value(&p).unwrap_or(Value::Null);
        let ready = v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready || !is_new_pod(w, &obj, &v, &rses) {
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        let containers: Vec<String> = v
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(container_line).collect())
            .unwrap_or_default();
        let mut evs: Vec<(String, String)> = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|e| {
                        let ts = e
                            .last_timestamp
                            .as_ref()
                            .map(|t| t.0.to_string())
                            .unwrap_or_default();
                        (
                            ts,
                            format!(
                                "{} {}: {}",
                                e.type_.unwrap_or_default(),
                                e.reason.unwrap_or_default(),
                                e.message.unwrap_or_default()
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        evs.sort();
        let events_tail: Vec<String> = evs.into_iter().rev().take(5).map(|(_, m)| m).collect();
        let restarted = v
            .pointer("/status/containerStatuses/0/restartCount")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0;
        let container = v
            .pointer("/status/containerStatuses/0/name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let lp = LogParams {
            container,
            previous: restarted,
            tail_lines: Some(20),
            ..LogParams::default()
        };
        let logs = typed_pods.logs(&name, &lp).await.unwrap_or_default();
        out.push(PodReport {
            pod: name,
            containers,
            events: events_tail,
            logs,
        });
        if out.len() >= 3 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(
        generation: i64,
        observed: i64,
        updated: i64,
        total: i64,
        available: i64,
        reason: &str,
    ) -> Value {
        json!({"metadata":{"name":"web","generation":generation},"spec":{"replicas":3},
            "status":{"observedGeneration":observed,"updatedReplicas":updated,"replicas":total,"availableReplicas":available,
            "conditions":[{"type":"Progressing","status":"True","reason":reason}]}})
    }

    #[test]
    fn stale_status_is_not_completion() {
        // The status of the previous rollout says complete, but generation 2 is not observed yet.
        let d = dep(2, 1, 3, 3, 3, "NewReplicaSetAvailable");
        assert_eq!(
            evaluate("Deployment", &d),
            Progress::Waiting("waiting for the deployment spec update to be observed".into())
        );
        assert!(matches!(
            evaluate("Deployment", &dep(2, 2, 3, 3, 3, "NewReplicaSetAvailable")),
            Progress::Done(_)
        ));
    }

    #[test]
    fn deployment_rules_in_kubectl_order() {
        assert_eq!(
            evaluate("Deployment", &dep(2, 2, 1, 3, 1, "ReplicaSetUpdated")),
            Progress::Waiting("1 out of 3 new replicas have been updated".into())
        );
        assert_eq!(
            evaluate("Deployment", &dep(2, 2, 3, 4, 3, "ReplicaSetUpdated")),
            Progress::Waiting("1 old replicas are pending termination".into())
        );
        assert_eq!(
            evaluate("Deployment", &dep(2, 2, 3, 3, 2, "ReplicaSetUpdated")),
            Progress::Waiting("2 of 3 updated replicas are available".into())
        );
        assert!(matches!(
            evaluate(
                "Deployment",
                &dep(2, 2, 1, 3, 1, "ProgressDeadlineExceeded")
            ),
            Progress::Failed(_)
        ));
    }

    #[test]
    fn statefulset_and_daemonset_rules() {
        let sts = json!({"metadata":{"generation":2},"spec":{"replicas":2,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}}},
            "status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":1}});
        assert!(matches!(
            evaluate("StatefulSet", &sts),
            Progress::Waiting(_)
        ));
        let on_delete = json!({"spec":{"updateStrategy":{"type":"OnDelete"}}});
        assert!(matches!(
            evaluate("StatefulSet", &on_delete),
            Progress::NotWaited(_)
        ));
        assert!(matches!(
            evaluate("DaemonSet", &on_delete),
            Progress::NotWaited(_)
        ));
        let ds = json!({"metadata":{"generation":1},"spec":{},"status":{"observedGeneration":1,"desiredNumberScheduled":2,"updatedNumberScheduled":2,"numberAvailable":2}});
        assert!(matches!(evaluate("DaemonSet", &ds), Progress::Done(_)));
    }

    #[test]
    fn crash_looping_pod_is_fatal() {
        let p = json!({"status":{"containerStatuses":[{"name":"web","state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}});
        assert_eq!(
            pod_failure(&p),
            Some(("web".into(), "CrashLoopBackOff".into()))
        );
        let ok = json!({"status":{"containerStatuses":[{"name":"web","state":{"waiting":{"reason":"ContainerCreating"}}}]}});
        assert_eq!(pod_failure(&ok), None);
    }
}
