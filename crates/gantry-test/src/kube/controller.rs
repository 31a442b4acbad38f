//! The fake cluster's scripted controllers: API defaulting, and a deployment / statefulset /
//! daemonset / job controller plus a "kubelet" that moves pods through their lifecycle.
//!
//! Behaviour copies the real controllers where kubectl and our action observe it: a new
//! generation stays unobserved for `observe_delay` (the stale-status window), ReplicaSets carry
//! `deployment.kubernetes.io/revision` and `pod-template-hash`, a rollback to an old template
//! reuses the old ReplicaSet with a new revision, pods of StatefulSets/DaemonSets carry
//! `controller-revision-hash`. Images whose tag contains `crashloop`, `imagepullbackoff` or
//! `deadline` make the new pods crash-loop, fail to pull, or never start (then the Deployment
//! reports `ProgressDeadlineExceeded` after `Timing::deadline`). It must not be used outside tests.
//!
//! See: <https://github.com/kubernetes/kubernetes/tree/master/pkg/controller/deployment>

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Inner, ResDef, Shared, now_rfc3339};

/// Per-object controller memory (keyed by uid).
#[derive(Debug, Default, Clone)]
pub(crate) struct Side {
    generation: i64,
    gen_at: Option<Instant>,
    created: Option<Instant>,
    progress_at: Option<Instant>,
    last_restart: Option<Instant>,
    events: BTreeSet<String>,
}

/// API-server defaulting for the kinds we serve.
pub(crate) fn defaults(r: &ResDef, obj: &mut Value) {
    let set = |v: &mut Value, path: &[&str], value: Value| {
        let mut cur = v;
        for (i, p) in path.iter().enumerate() {
            if i + 1 == path.len() {
                if cur.get(*p).is_none_or(Value::is_null) && cur.is_object() {
                    cur[*p] = value;
                }
                return;
            }
            if cur.get(*p).is_none() && cur.is_object() {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    };
    let pod_spec = |obj: &mut Value| {
        if let Some(t) = obj.pointer_mut("/spec/template/spec") {
            set(t, &["restartPolicy"], json!("Always"));
            set(t, &["dnsPolicy"], json!("ClusterFirst"));
            set(t, &["terminationGracePeriodSeconds"], json!(30));
        }
    };
    match r.kind {
        "Deployment" => {
            set(obj, &["spec", "replicas"], json!(1));
            set(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            if obj.pointer("/spec/strategy/type").is_none() {
                set(obj, &["spec", "strategy"], json!({}));
                obj["spec"]["strategy"]["type"] = json!("RollingUpdate");
            }
            if obj.pointer("/spec/strategy/type") == Some(&json!("RollingUpdate")) {
                set(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxSurge"],
                    json!("25%"),
                );
                set(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                    json!("25%"),
                );
            }
            pod_spec(obj);
        }
        "StatefulSet" => {
            set(obj, &["spec", "replicas"], json!(1));
            set(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            set(obj, &["spec", "revisionHistoryLimit"], json!(10));
            if obj.pointer("/spec/updateStrategy/type").is_none() {
                set(obj, &["spec", "updateStrategy"], json!({}));
                obj["spec"]["updateStrategy"] =
                    json!({"type":"RollingUpdate","rollingUpdate":{"partition":0}});
            }
            pod_spec(obj);
        }
        "DaemonSet" => {
            set(obj, &["spec", "revisionHistoryLimit"], json!(10));
            if obj.pointer("/spec/updateStrategy/type").is_none() {
                set(obj, &["spec", "updateStrategy"], json!({}));
                obj["spec"]["updateStrategy"] = json!({"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}});
            }
            pod_spec(obj);
        }
        "Job" => {
            set(obj, &["spec", "completions"], json!(1));
            set(obj, &["spec", "parallelism"], json!(1));
            set(obj, &["spec", "backoffLimit"], json!(6));
            if let Some(t) = obj.pointer_mut("/spec/template/spec") {
                set(t, &["restartPolicy"], json!("Never"));
            }
        }
        "Service" => {
            set(obj, &["spec", "type"], json!("ClusterIP"));
            if obj.pointer("/spec/clusterIP").is_none() {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                let n = fnv(name) % 250 + 2;
                set(obj, &["spec", "clusterIP"], json!(format!("10.96.0.{n}")));
            }
            set(obj, &["spec", "sessionAffinity"], json!("None"));
        }
        "Namespace" => {
            set(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            set(obj, &["status", "phase"], json!("Active"));
        }
        "Secret" => {
            set(obj, &["type"], json!("Opaque"));
        }
        _ => {}
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A pod-template-hash-like string for a template.
pub(crate) fn template_hash(template: &Value) -> String {
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = fnv(&template.to_string());
    let mut s = String::new();
    for _ in 0..10 {
        s.push(alphabet[(n % 27) as usize] as char);
        n /= 27;
    }
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Healthy,
    CrashLoop,
    ImagePull,
    Deadline,
}

fn mode(pod_spec: &Value) -> Mode {
    let images = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod_spec[*k].as_array())
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect::<Vec<_>>();
    for img in images {
        let tag = img
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map(|(_, t)| t)
            .unwrap_or("");
        if tag.contains("crashloop") {
            return Mode::CrashLoop;
        }
        if tag.contains("imagepullbackoff") {
            return Mode::ImagePull;
        }
        if tag.contains("deadline") {
            return Mode::Deadline;
        }
    }
    Mode::Healthy
}

/// The controller loop.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let tick = shared.lock().timing.tick;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shared.wake.notified() => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        let mut inner = shared.lock();
        if inner.paused {
            continue;
        }
        reconcile(&mut inner);
    }
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
fn name(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
fn ns_of(v: &Value) -> String {
    v["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
fn owned_by(v: &Value, owner_uid: &str) -> bool {
    v["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|a| a.iter().any(|o| o["uid"] == owner_uid))
}
fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|a| {
        a.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}
fn owner_ref(owner: &Value) -> Value {
    json!([{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

fn reconcile(inner: &mut Inner) {
    let now = Instant::now();
    for d in inner.list("deployments", None) {
        deployment(inner, &d, now);
    }
    for s in inner.list("statefulsets", None) {
        statefulset(inner, &s, now);
    }
    for s in inner.list("daemonsets", None) {
        daemonset(inner, &s, now);
    }
    for j in inner.list("jobs", None) {
        job(inner, &j, now);
    }
    for p in inner.list("pods", None) {
        kubelet(inner, &p, now);
    }
}

/// Whether a new generation is still inside the "not yet observed" window.
fn observe(inner: &mut Inner, obj: &Value, now: Instant) -> bool {
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let observed = obj["status"]["observedGeneration"].as_i64().unwrap_or(0);
    let delay = inner.timing.observe_delay;
    let side = inner.side.entry(uid(obj)).or_default();
    if side.generation != generation {
        side.generation = generation;
        side.gen_at = Some(now);
    }
    observed >= generation || side.gen_at.is_none_or(|t| now.duration_since(t) >= delay)
}

fn new_pod(
    inner: &mut Inner,
    owner: &Value,
    pod_name: &str,
    template: &Value,
    extra_labels: Value,
    node: Option<&str>,
) {
    let ns = ns_of(owner);
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    if let Some(m) = extra_labels.as_object() {
        for (k, v) in m {
            labels[k] = v.clone();
        }
    }
    let mut spec = template["spec"].clone();
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let containers: Vec<Value> = spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| json!({"name": c["name"], "image": c["image"], "ready": false, "restartCount": 0, "started": false,
            "state": {"waiting": {"reason": "ContainerCreating"}}}))
        .collect();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
            "annotations": template["metadata"]["annotations"].clone(), "ownerReferences": owner_ref(owner)},
        "spec": spec,
        "status": {"phase": "Pending", "conditions": [{"type":"PodScheduled","status":"True"}],
            "containerStatuses": containers, "startTime": now_rfc3339()},
    });
    let stored = inner.put_raw("pods", &ns, pod);
    let side = inner.side.entry(uid(&stored)).or_default();
    side.created = Some(Instant::now());
}

fn event(inner: &mut Inner, about: &Value, typ: &str, reason: &str, message: &str) {
    let ns = ns_of(about);
    let key = format!("{reason}:{message}");
    let u = uid(about);
    let first = inner.side.entry(u.clone()).or_default().events.insert(key);
    let ev_name = format!(
        "{}.{}",
        name(about),
        fnv(&format!("{u}{reason}")) % 1_000_000
    );
    let count = inner
        .get("events", &ns, &ev_name)
        .map(|e| e.obj["count"].as_i64().unwrap_or(1) + 1)
        .unwrap_or(1);
    if !first && count > 1 && reason != "BackOff" {
        return;
    }
    let ts = now_rfc3339();
    let first_ts = inner
        .get("events", &ns, &ev_name)
        .and_then(|e| e.obj["firstTimestamp"].as_str().map(str::to_string))
        .unwrap_or_else(|| ts.clone());
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": ev_name, "namespace": ns},
        "involvedObject": {"kind": about["kind"], "name": about["metadata"]["name"], "namespace": ns,
            "uid": u, "apiVersion": about["apiVersion"]},
        "reason": reason, "message": message, "type": typ, "count": count,
        "firstTimestamp": first_ts, "lastTimestamp": ts,
        "source": {"component": if about["kind"] == "Pod" { "kubelet" } else { "deployment-controller" }},
    });
    inner.put_raw("events", &ns, ev);
}

fn condition(old: &Value, typ: &str, status: &str, reason: &str, message: &str) -> Value {
    let prev = old["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == typ).cloned());
    let ts = now_rfc3339();
    let (transition, update) = match &prev {
        Some(p) if p["status"] == status && p["reason"] == reason => {
            (p["lastTransitionTime"].clone(), p["lastUpdateTime"].clone())
        }
        Some(p) if p["status"] == status => (p["lastTransitionTime"].clone(), json!(ts)),
        _ => (json!(ts), json!(ts)),
    };
    json!({"type": typ, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": transition, "lastUpdateTime": update})
}

fn pct(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::String(s) if s.ends_with('%') => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            if round_up {
                (total * p + 99) / 100
            } else {
                total * p / 100
            }
        }
        Value::Number(n) => n.as_i64().unwrap_or(1),
        _ => 1,
    }
}

fn deployment(inner: &mut Inner, d: &Value, now: Instant) {
    if !observe(inner, d, now) {
        return;
    }
    let ns = ns_of(d);
    let duid = uid(d);
    let dname = name(d);
    let template = d["spec"]["template"].clone();
    let hash = template_hash(&template);
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut rses: Vec<Value> = inner.owned("replicasets", &ns, &duid);
    let rev_of = |r: &Value| -> i64 {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let max_rev = rses.iter().map(rev_of).max().unwrap_or(0);
    let rs_name = format!("{dname}-{hash}");
    let mut new_rs = rses
        .iter()
        .find(|r| r["metadata"]["labels"]["pod-template-hash"] == hash.as_str())
        .cloned();
    let mut changed_rs = false;
    match &mut new_rs {
        None => {
            let mut labels = template["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut t = template.clone();
            t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let rs = json!({"apiVersion":"apps/v1","kind":"ReplicaSet",
                "metadata":{"name": rs_name, "namespace": ns, "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": (max_rev + 1).to_string(),
                        "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                        "deployment.kubernetes.io/max-replicas": (desired + 1).to_string()},
                    "ownerReferences": owner_ref(d)},
                "spec": {"replicas": 0, "selector": selector, "template": t}});
            let stored = inner.put_raw("replicasets", &ns, rs);
            new_rs = Some(stored.clone());
            rses.push(stored);
            changed_rs = true;
        }
        Some(rs) if rev_of(rs) < max_rev => {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!((max_rev + 1).to_string());
            let stored = inner.put_raw("replicasets", &ns, rs.clone());
            *rs = stored;
            changed_rs = true;
        }
        Some(_) => {}
    }
    let Some(new_rs) = new_rs else { return };
    let new_rev = rev_of(&new_rs).max(1).to_string();
    if changed_rs
        || d["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()
            != Some(new_rev.as_str())
    {
        let side = inner.side.entry(duid.clone()).or_default();
        if changed_rs || side.progress_at.is_none() {
            side.progress_at = Some(now);
        }
        let mut d2 = inner
            .get("deployments", &ns, &dname)
            .map(|s| s.obj.clone())
            .unwrap_or_else(|| d.clone());
        if !d2["metadata"]["annotations"].is_object() {
            d2["metadata"]["annotations"] = json!({});
        }
        d2["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(new_rev);
        inner.put_raw("deployments", &ns, d2);
    }
    let rs_uids: Vec<String> = rses.iter().map(uid).collect();
    let new_uid = uid(&new_rs);
    let pods: Vec<Value> = rs_uids
        .iter()
        .flat_map(|u| inner.owned("pods", &ns, u))
        .collect();
    let (new_pods, old_pods): (Vec<Value>, Vec<Value>) =
        pods.into_iter().partition(|p| owned_by(p, &new_uid));
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let recreate = d["spec"]["strategy"]["type"] == "Recreate";
    let surge = pct(
        &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        desired,
        true,
    )
    .max(1);
    let max_unavail = pct(
        &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        desired,
        false,
    );
    let ready_new = new_pods.iter().filter(|p| is_ready(p)).count() as i64;
    let n_new = new_pods.len() as i64;
    let n_old = old_pods.len() as i64;
    if !paused {
        if n_new > desired {
            if let Some(p) = new_pods.iter().find(|p| !is_ready(p)).or(new_pods.last()) {
                inner.delete("pods", &ns, &name(p));
            }
        } else if !(recreate && n_old > 0) {
            // Like the real controller: scale the new ReplicaSet up to `replicas`, keeping the
            // total at most `replicas + maxSurge`.
            let room = (desired - n_new).min(desired + surge - n_new - n_old);
            for _ in 0..room.max(0) {
                let pod_name = format!("{}-{}", name(&new_rs), inner.next_name());
                let mut t = template.clone();
                if !t["metadata"].is_object() {
                    t["metadata"] = json!({});
                }
                new_pod(
                    inner,
                    &new_rs,
                    &pod_name,
                    &t,
                    json!({"pod-template-hash": hash}),
                    None,
                );
            }
        }
        // Scale old ReplicaSets down while availability allows (unready pods first).
        let excess = if recreate {
            n_old
        } else {
            ready_new + n_old - (desired - max_unavail)
        };
        let mut victims: Vec<&Value> = old_pods.iter().collect();
        victims.sort_by_key(|p| is_ready(p));
        for p in victims.into_iter().take(excess.clamp(0, n_old) as usize) {
            inner.delete("pods", &ns, &name(p));
        }
    }
    // Recount after this tick's changes.
    let pods: Vec<Value> = rs_uids
        .iter()
        .flat_map(|u| inner.owned("pods", &ns, u))
        .collect();
    for rs in &rses {
        let mine: Vec<&Value> = pods.iter().filter(|p| owned_by(p, &uid(rs))).collect();
        let ready = mine.iter().filter(|p| is_ready(p)).count();
        let mut cur = inner
            .get("replicasets", &ns, &name(rs))
            .map(|s| s.obj.clone())
            .unwrap_or_else(|| rs.clone());
        let want = if uid(rs) == new_uid {
            desired.min(mine.len() as i64).max(mine.len() as i64)
        } else {
            mine.len() as i64
        };
        if cur["spec"]["replicas"] != json!(want) {
            cur["spec"]["replicas"] = json!(want);
            cur = inner.put_raw("replicasets", &ns, cur);
        }
        let generation = cur["metadata"]["generation"].clone();
        inner.set_status("replicasets", &ns, &name(rs), json!({"replicas": mine.len(), "readyReplicas": ready,
            "availableReplicas": ready, "fullyLabeledReplicas": mine.len(), "observedGeneration": generation}));
    }
    let total = pods.len() as i64;
    let updated = pods.iter().filter(|p| owned_by(p, &new_uid)).count() as i64;
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let old_status = d["status"].clone();
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
    let available_ok = ready >= desired - max_unavail;
    let available = if available_ok {
        condition(
            &old_status,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            &old_status,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let complete = updated == desired && total == desired && ready == desired;
    let rsn = name(&new_rs);
    let progress_at = inner
        .side
        .get(&duid)
        .and_then(|s| s.progress_at)
        .unwrap_or(now);
    let pds = d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600);
    let deadline_mode = mode(&template["spec"]) == Mode::Deadline;
    let timed_out = old_status["conditions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c["reason"] == "ProgressDeadlineExceeded"))
        && old_status["observedGeneration"].as_i64() == Some(generation);
    let progressing = if complete {
        condition(
            &old_status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rsn}\" has successfully progressed."),
        )
    } else if timed_out
        || now.duration_since(progress_at).as_secs() >= pds
        || (deadline_mode && now.duration_since(progress_at) >= inner.timing.deadline)
    {
        condition(
            &old_status,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rsn}\" has timed out progressing."),
        )
    } else {
        condition(
            &old_status,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rsn}\" is progressing."),
        )
    };
    let mut status = json!({"observedGeneration": generation, "replicas": total, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": ready, "conditions": [available, progressing]});
    if total - ready > 0 {
        status["unavailableReplicas"] = json!(total - ready);
    }
    inner.set_status("deployments", &ns, &dname, status);
}

fn statefulset(inner: &mut Inner, s: &Value, now: Instant) {
    if !observe(inner, s, now) {
        return;
    }
    let ns = ns_of(s);
    let sname = name(s);
    let suid = uid(s);
    let template = s["spec"]["template"].clone();
    let rev = format!("{sname}-{}", template_hash(&template));
    let desired = s["spec"]["replicas"].as_i64().unwrap_or(1);
    let on_delete = s["spec"]["updateStrategy"]["type"] == "OnDelete";
    let partition = s["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0);
    let pods: Vec<Value> = inner.owned("pods", &ns, &suid);
    let ordinal = |p: &Value| {
        name(p)
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let all_ready = pods.iter().all(is_ready);
    let mut acted = false;
    for i in 0..desired {
        if !pods.iter().any(|p| ordinal(p) == i) {
            if all_ready {
                let pn = format!("{sname}-{i}");
                new_pod(
                    inner,
                    s,
                    &pn,
                    &template,
                    json!({"controller-revision-hash": rev, "statefulset.kubernetes.io/pod-name": pn}),
                    None,
                );
            }
            acted = true;
            break;
        }
    }
    if !acted {
        if let Some(p) = pods.iter().find(|p| ordinal(p) >= desired) {
            inner.delete("pods", &ns, &name(p));
        } else if all_ready && !on_delete {
            let mut old: Vec<&Value> = pods
                .iter()
                .filter(|p| {
                    p["metadata"]["labels"]["controller-revision-hash"] != rev.as_str()
                        && ordinal(p) >= partition
                })
                .collect();
            old.sort_by_key(|p| -ordinal(p));
            if let Some(p) = old.first() {
                inner.delete("pods", &ns, &name(p));
            }
        }
    }
    let pods: Vec<Value> = inner.owned("pods", &ns, &suid);
    let updated = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == rev.as_str())
        .count() as i64;
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let current_rev = if updated == desired && pods.len() as i64 == desired {
        rev.clone()
    } else {
        s["status"]["currentRevision"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| rev.clone())
    };
    let current = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == current_rev.as_str())
        .count();
    let generation = s["metadata"]["generation"].as_i64().unwrap_or(1);
    inner.set_status("statefulsets", &ns, &sname, json!({"observedGeneration": generation, "replicas": pods.len(),
        "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": current, "updatedReplicas": updated,
        "currentRevision": current_rev, "updateRevision": rev, "collisionCount": 0}));
}

const NODES: &[&str] = &["node-a", "node-b"];

fn daemonset(inner: &mut Inner, s: &Value, now: Instant) {
    if !observe(inner, s, now) {
        return;
    }
    let ns = ns_of(s);
    let sname = name(s);
    let suid = uid(s);
    let template = s["spec"]["template"].clone();
    let hash = template_hash(&template);
    let on_delete = s["spec"]["updateStrategy"]["type"] == "OnDelete";
    let pods: Vec<Value> = inner.owned("pods", &ns, &suid);
    for node in NODES {
        if !pods.iter().any(|p| p["spec"]["nodeName"] == *node) {
            let pn = format!("{sname}-{}", inner.next_name());
            new_pod(
                inner,
                s,
                &pn,
                &template,
                json!({"controller-revision-hash": hash}),
                Some(node),
            );
            break;
        }
    }
    if !on_delete
        && pods.len() == NODES.len()
        && pods.iter().all(is_ready)
        && let Some(p) = pods
            .iter()
            .find(|p| p["metadata"]["labels"]["controller-revision-hash"] != hash.as_str())
    {
        inner.delete("pods", &ns, &name(p));
    }
    let pods: Vec<Value> = inner.owned("pods", &ns, &suid);
    let updated = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == hash.as_str())
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let generation = s["metadata"]["generation"].as_i64().unwrap_or(1);
    inner.set_status("daemonsets", &ns, &sname, json!({"observedGeneration": generation, "desiredNumberScheduled": NODES.len(),
        "currentNumberScheduled": pods.len(), "numberReady": ready, "numberAvailable": ready,
        "numberUnavailable": NODES.len().saturating_sub(ready), "updatedNumberScheduled": updated, "numberMisscheduled": 0}));
}

fn job(inner: &mut Inner, j: &Value, _now: Instant) {
    let ns = ns_of(j);
    let jname = name(j);
    let juid = uid(j);
    let pods: Vec<Value> = inner.owned("pods", &ns, &juid);
    if pods.is_empty() && j["status"]["startTime"].is_null() {
        let pn = format!("{jname}-{}", inner.next_name());
        new_pod(
            inner,
            j,
            &pn,
            &j["spec"]["template"],
            json!({"job-name": jname, "controller-uid": juid}),
            None,
        );
        inner.set_status(
            "jobs",
            &ns,
            &jname,
            json!({"startTime": now_rfc3339(), "active": 1}),
        );
        return;
    }
    let succeeded = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    let failed = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Failed")
        .count();
    let mut status = j["status"].clone();
    if succeeded > 0 && status["succeeded"].is_null() {
        status["succeeded"] = json!(succeeded);
        status["active"] = json!(0);
        status["completionTime"] = json!(now_rfc3339());
        status["conditions"] =
            json!([{"type":"Complete","status":"True","lastTransitionTime": now_rfc3339()}]);
    } else if failed > 0 && status["failed"].is_null() {
        status["failed"] = json!(failed);
        status["active"] = json!(0);
        status["conditions"] = json!([{"type":"Failed","status":"True","reason":"BackoffLimitExceeded",
            "message":"Job has reached the specified backoff limit","lastTransitionTime": now_rfc3339()}]);
    }
    inner.set_status("jobs", &ns, &jname, status);
}

fn kubelet(inner: &mut Inner, p: &Value, now: Instant) {
    let u = uid(p);
    let ready_delay = inner.timing.ready_delay;
    let Some(created) = inner.side.get(&u).and_then(|s| s.created) else {
        return;
    };
    let age = now.duration_since(created);
    if age < ready_delay {
        return;
    }
    let ns = ns_of(p);
    let pname = name(p);
    let by_job = p["metadata"]["ownerReferences"][0]["kind"] == "Job";
    let m = mode(&p["spec"]);
    let containers: Vec<Value> = p["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ts = now_rfc3339();
    let cond = |ready: bool| {
        json!([{"type":"PodScheduled","status":"True"},{"type":"Initialized","status":"True"},
        {"type":"ContainersReady","status": if ready {"True"} else {"False"}},
        {"type":"Ready","status": if ready {"True"} else {"False"}}])
    };
    match m {
        Mode::Healthy => {
            if p["status"]["phase"] == "Running" || p["status"]["phase"] == "Succeeded" {
                return;
            }
            if by_job {
                let cs: Vec<Value> = containers.iter().map(|c| json!({"name": c["name"], "image": c["image"], "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ts}}})).collect();
                inner.set_status(
                    "pods",
                    &ns,
                    &pname,
                    json!({"phase":"Succeeded","conditions": cond(false),"containerStatuses": cs}),
                );
            } else {
                let cs: Vec<Value> = containers
                    .iter()
                    .map(|c| {
                        json!({"name": c["name"], "image": c["image"], "ready": true,
                    "started": true, "restartCount": 0, "state": {"running": {"startedAt": ts}}})
                    })
                    .collect();
                inner.set_status(
                    "pods",
                    &ns,
                    &pname,
                    json!({"phase":"Running","conditions": cond(true),"containerStatuses": cs,
                    "podIP": "10.244.0.10", "startTime": p["status"]["startTime"]}),
                );
            }
            inner.pod_logs.insert(
                (ns, pname),
                ("listening on :8080\nready\n".into(), String::new()),
            );
        }
        Mode::CrashLoop => {
            let side = inner.side.entry(u.clone()).or_default();
            if side
                .last_restart
                .is_some_and(|t| now.duration_since(t) < ready_delay * 5)
            {
                return;
            }
            side.last_restart = Some(now);
            let restarts = p["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .unwrap_or(0)
                + 1;
            let first = containers.first().cloned().unwrap_or(json!({"name":"app"}));
            let cname = first["name"].as_str().unwrap_or("app").to_string();
            if by_job {
                let cs = json!([{"name": cname, "image": first["image"], "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts}}}]);
                inner.set_status(
                    "pods",
                    &ns,
                    &pname,
                    json!({"phase":"Failed","conditions": cond(false),"containerStatuses": cs}),
                );
            } else {
                let cs: Vec<Value> = containers.iter().map(|c| json!({"name": c["name"], "image": c["image"], "ready": false,
                    "started": false, "restartCount": restarts,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={} pod={pname}_{ns}({u})", c["name"].as_str().unwrap_or(""))}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": ts, "finishedAt": ts}}})).collect();
                inner.set_status(
                    "pods",
                    &ns,
                    &pname,
                    json!({"phase":"Running","conditions": cond(false),"containerStatuses": cs,
                    "startTime": p["status"]["startTime"]}),
                );
                if inner.first_crashloop.is_none() {
                    inner.first_crashloop = Some(Instant::now());
                }
            }
            inner.pod_logs.insert(
                (ns.clone(), pname.clone()),
                (
                    "starting server\n".into(),
                    "starting server\nloading config from /etc/app/config.yaml\nerror: DATABASE_URL is not set\npanic: cannot start without a database\n".into(),
                ),
            );
            let latest = inner
                .get("pods", &ns, &pname)
                .map(|s| s.obj.clone())
                .unwrap_or_else(|| p.clone());
            event(
                inner,
                &latest,
                "Warning",
                "BackOff",
                &format!("Back-off restarting failed container {cname} in pod {pname}_{ns}({u})"),
            );
        }
        Mode::ImagePull => {
            let pulled_back = age >= ready_delay * 2;
            let reason = if pulled_back {
                "ImagePullBackOff"
            } else {
                "ErrImagePull"
            };
            if p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == reason {
                return;
            }
            let cs: Vec<Value> = containers.iter().map(|c| json!({"name": c["name"], "image": c["image"], "ready": false,
                "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": format!("Back-off pulling image \"{}\"", c["image"].as_str().unwrap_or(""))}}})).collect();
            inner.set_status(
                "pods",
                &ns,
                &pname,
                json!({"phase":"Pending","conditions": cond(false),"containerStatuses": cs,
                "startTime": p["status"]["startTime"]}),
            );
            let image = containers
                .first()
                .and_then(|c| c["image"].as_str())
                .unwrap_or("")
                .to_string();
            let latest = inner
                .get("pods", &ns, &pname)
                .map(|s| s.obj.clone())
                .unwrap_or_else(|| p.clone());
            event(
                inner,
                &latest,
                "Warning",
                "Failed",
                &format!(
                    "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                ),
            );
        }
        Mode::Deadline => {
            let latest = p.clone();
            event(
                inner,
                &latest,
                "Warning",
                "FailedScheduling",
                "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
            );
        }
    }
}
