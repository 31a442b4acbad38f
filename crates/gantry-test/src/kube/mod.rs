//! A fake Kubernetes API server on a free loopback port, faithful enough for real `kubectl` 1.32
//! and for `kube`: discovery, `apps/v1` Deployments/StatefulSets/DaemonSets/ReplicaSets,
//! `batch/v1` Jobs, `v1` Namespaces/Services/ConfigMaps/Secrets/Pods/Events and pod logs,
//! list/watch with resourceVersions, server-side apply with field managers, conflicts, force and
//! `dryRun`, merge/strategic/JSON patches (what `kubectl rollout undo` sends), and a scripted
//! controller (`controller`) that advances workload status and fails rollouts by image tag
//! (`crashloop`, `imagepullbackoff`, `deadline`).
//!
//! Test-only: plain HTTP, optional bearer-token check, no RBAC, no OpenAPI, no admission. It
//! must never listen on anything but 127.0.0.1.
//!
//! See: <https://kubernetes.io/docs/reference/using-api/api-concepts/>

mod controller;
mod ssa;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, broadcast};

use ssa::Manager;

/// One resource type the fake serves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResDef {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) short: &'static [&'static str],
    pub(crate) status: bool,
}

impl ResDef {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn res(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
) -> ResDef {
    ResDef {
        group,
        version: "v1",
        plural,
        kind,
        namespaced,
        short,
        status,
    }
}

pub(crate) static RESOURCES: &[ResDef] = &[
    res("", "namespaces", "Namespace", false, &["ns"], true),
    res("", "services", "Service", true, &["svc"], true),
    res("", "configmaps", "ConfigMap", true, &["cm"], false),
    res("", "secrets", "Secret", true, &[], false),
    res("", "pods", "Pod", true, &["po"], true),
    res("", "events", "Event", true, &["ev"], false),
    res(
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
    ),
    res("apps", "deployments", "Deployment", true, &["deploy"], true),
    res("apps", "statefulsets", "StatefulSet", true, &["sts"], true),
    res("apps", "daemonsets", "DaemonSet", true, &["ds"], true),
    res("apps", "replicasets", "ReplicaSet", true, &["rs"], true),
    res(
        "apps",
        "controllerrevisions",
        "ControllerRevision",
        true,
        &[],
        false,
    ),
    res("batch", "jobs", "Job", true, &[], true),
];

fn find_res(group: &str, plural: &str) -> Option<&'static ResDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

pub(crate) fn res_by_plural(plural: &str) -> &'static ResDef {
    RESOURCES
        .iter()
        .find(|r| r.plural == plural)
        .unwrap_or(&RESOURCES[0])
}

/// A stored object.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) obj: Value,
    pub(crate) managers: Vec<Manager>,
}

/// One watch event.
#[derive(Clone, Debug)]
pub(crate) struct WatchEvent {
    rv: u64,
    plural: &'static str,
    ns: String,
    typ: &'static str,
    obj: Value,
}

/// Timing knobs of the scripted controller.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How often the controller runs.
    pub tick: Duration,
    /// How long a new generation stays unobserved (the stale-status window).
    pub observe_delay: Duration,
    /// How long a new pod takes to become ready (or to fail).
    pub ready_delay: Duration,
    /// After how long a rollout with image tag `deadline` reports `ProgressDeadlineExceeded`.
    pub deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(50),
            observe_delay: Duration::from_millis(300),
            ready_delay: Duration::from_millis(200),
            deadline: Duration::from_secs(2),
        }
    }
}

/// A request the server received (for assertions).
#[derive(Clone, Debug)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Content type.
    pub content_type: String,
}

pub(crate) struct Inner {
    pub(crate) rv: u64,
    pub(crate) objects: BTreeMap<(&'static str, String, String), Stored>,
    log: Vec<Arc<WatchEvent>>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    pub(crate) pod_logs: HashMap<(String, String), (String, String)>,
    pub(crate) requests: Vec<Request>,
    token: Option<String>,
    pub(crate) timing: Timing,
    pub(crate) paused: bool,
    pub(crate) side: HashMap<String, controller::Side>,
    pub(crate) first_crashloop: Option<Instant>,
    pub(crate) name_seq: u64,
    port: u16,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Inner {
    fn key(r: &ResDef, ns: &str, name: &str) -> (&'static str, String, String) {
        let plural: &'static str = res_by_plural(r.plural).plural;
        (
            plural,
            if r.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    fn emit(&mut self, plural: &'static str, ns: &str, typ: &'static str, obj: Value) {
        let ev = Arc::new(WatchEvent {
            rv: self.rv,
            plural,
            ns: ns.to_string(),
            typ,
            obj,
        });
        if self.log.len() > 50_000 {
            self.log.drain(..10_000);
        }
        self.log.push(ev.clone());
        let _ = self.tx.send(ev);
    }

    pub(crate) fn get(&self, plural: &str, ns: &str, name: &str) -> Option<&Stored> {
        let r = res_by_plural(plural);
        self.objects.get(&Self::key(r, ns, name))
    }

    pub(crate) fn list(&self, plural: &str, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((p, n, _), _)| *p == plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, s)| s.obj.clone())
            .collect()
    }

    /// Objects of `plural` in `ns` with an ownerReference to `owner_uid` (cloned only when they match).
    pub(crate) fn owned(&self, plural: &str, ns: &str, owner_uid: &str) -> Vec<Value> {
        self.objects
            .range((res_by_plural(plural).plural, ns.to_string(), String::new())..)
            .take_while(|((p, n, _), _)| *p == plural && n == ns)
            .filter(|(_, s)| {
                s.obj["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|o| o["uid"] == owner_uid))
            })
            .map(|(_, s)| s.obj.clone())
            .collect()
    }

    /// Stores `obj` (already merged), filling server-owned metadata; returns the stored object.
    /// No-op writes return the live object unchanged (no new resourceVersion).
    pub(crate) fn store(
        &mut self,
        r: &'static ResDef,
        ns: &str,
        mut obj: Value,
        managers: Vec<Manager>,
        dry_run: bool,
    ) -> Value {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = Self::key(r, ns, &name);
        let old = self.objects.get(&key).cloned();
        obj["apiVersion"] = json!(r.api_version());
        obj["kind"] = json!(r.kind);
        let meta = obj["metadata"]
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut meta = meta;
        if r.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.remove("managedFields");
        match &old {
            Some(o) => {
                for k in ["uid", "creationTimestamp"] {
                    if let Some(v) = o.obj["metadata"].get(k) {
                        meta.insert(k.into(), v.clone());
                    }
                }
                if let Some(v) = o.obj["metadata"].get("generation") {
                    meta.insert("generation".into(), v.clone());
                }
            }
            None => {
                meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
                if r.status && !r.group.is_empty() {
                    meta.insert("generation".into(), json!(1));
                }
            }
        }
        obj["metadata"] = Value::Object(meta);
        controller::defaults(r, &mut obj);
        if let Some(o) = &old {
            if r.status && !r.group.is_empty() && spec_of(&o.obj) != spec_of(&obj) {
                let g = o.obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                obj["metadata"]["generation"] = json!(g);
            }
            let mut a = o.obj.clone();
            strip_volatile(&mut a);
            let mut b = obj.clone();
            strip_volatile(&mut b);
            if a == b && same_owners(&o.managers, &managers) {
                return o.obj.clone();
            }
        }
        obj["metadata"]["managedFields"] = ssa::managed_fields(&managers);
        if dry_run {
            obj["metadata"]["resourceVersion"] = json!((self.rv + 1).to_string());
            return obj;
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let typ = if old.is_some() { "MODIFIED" } else { "ADDED" };
        self.objects.insert(
            key,
            Stored {
                obj: obj.clone(),
                managers,
            },
        );
        self.emit(r.plural, ns, typ, obj.clone());
        obj
    }

    /// Replaces the status of a stored object (controller writes; manager skipped).
    pub(crate) fn set_status(&mut self, plural: &str, ns: &str, name: &str, status: Value) {
        let r = res_by_plural(plural);
        let key = Self::key(r, ns, name);
        let Some(s) = self.objects.get(&key) else {
            return;
        };
        if s.obj.get("status") == Some(&status) {
            return;
        }
        let mut obj = s.obj.clone();
        obj["status"] = status;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if let Some(s) = self.objects.get_mut(&key) {
            s.obj = obj.clone();
        }
        self.emit(r.plural, ns, "MODIFIED", obj);
    }

    /// Replaces a whole stored object as the controller (metadata/spec changes, no managers).
    pub(crate) fn put_raw(&mut self, plural: &str, ns: &str, obj: Value) -> Value {
        let r = res_by_plural(plural);
        let managers = self
            .get(
                plural,
                ns,
                obj["metadata"]["name"].as_str().unwrap_or_default(),
            )
            .map(|s| s.managers.clone())
            .unwrap_or_default();
        self.store(r, ns, obj, managers, false)
    }

    /// Deletes an object and (like the garbage collector) everything it owns.
    pub(crate) fn delete(&mut self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let r = res_by_plural(plural);
        let key = Self::key(r, ns, name);
        let stored = self.objects.remove(&key)?;
        self.rv += 1;
        let mut obj = stored.obj.clone();
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(r.plural, ns, "DELETED", obj.clone());
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let owned: Vec<(&'static str, String, String)> = self
            .objects
            .iter()
            .filter(|(_, s)| {
                s.obj["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|o| o["uid"] == uid.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (p, n, nm) in owned {
            self.delete(p, &n, &nm);
        }
        if plural == "namespaces" {
            let inside: Vec<(&'static str, String, String)> = self
                .objects
                .keys()
                .filter(|(_, n, _)| n == name)
                .cloned()
                .collect();
            for (p, n, nm) in inside {
                self.delete(p, &n, &nm);
            }
        }
        self.side.remove(&uid);
        Some(obj)
    }

    pub(crate) fn next_name(&mut self) -> String {
        self.name_seq += 1;
        let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.name_seq.wrapping_mul(2654435761) % 14_348_907;
        let mut s = String::new();
        for _ in 0..5 {
            s.push(alphabet[(n % 27) as usize] as char);
            n /= 27;
        }
        s
    }
}

fn same_owners(a: &[Manager], b: &[Manager]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.name == y.name && x.operation == y.operation && x.fields == y.fields)
}

fn strip_volatile(v: &mut Value) {
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
}

fn spec_of(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    c
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub(crate) wake: Notify,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake API server; stopped on drop.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeKube {
    /// Starts the server and its controller on 127.0.0.1 (a free port) with default timing.
    pub fn start() -> Self {
        Self::start_with(Timing::default())
    }

    /// Starts the server with the given controller timing.
    pub fn start_with(timing: Timing) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (tx, _) = broadcast::channel(65_536);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 100,
                objects: BTreeMap::new(),
                log: Vec::new(),
                tx,
                pod_logs: HashMap::new(),
                requests: Vec::new(),
                token: None,
                timing,
                paused: false,
                side: HashMap::new(),
                first_crashloop: None,
                name_seq: 0,
                port: addr.port(),
            }),
            wake: Notify::new(),
        });
        for ns in ["default", "kube-system", "kube-public"] {
            let mut inner = shared.lock();
            let r = res_by_plural("namespaces");
            inner.store(
                r,
                "",
                json!({"metadata":{"name": ns},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}),
                Vec::new(),
                false,
            );
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let ctl = tokio::spawn(controller::run(sh.clone()));
                let app = axum::Router::new().fallback(handle).with_state(sh);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await;
                ctl.abort();
            });
            rt.shutdown_timeout(Duration::from_millis(200));
        });
        crate::wait_for_port(addr, Duration::from_secs(5));
        Self {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requires `Authorization: Bearer <token>` on every request (None: no auth).
    pub fn require_token(&self, token: Option<&str>) {
        self.shared.lock().token = token.map(str::to_string);
    }

    /// A kubeconfig for this server (context `fake`, namespace `default`), with `token` as the
    /// user's bearer token when given.
    pub fn kubeconfig(&self, token: Option<&str>) -> String {
        let user = match token {
            Some(t) => format!("    token: {t}\n"),
            None => "    username: admin\n".to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake-admin\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake-admin\n  user:\n{user}",
            self.url()
        )
    }

    /// Changes the controller timing.
    pub fn set_timing(&self, timing: Timing) {
        self.shared.lock().timing = timing;
    }

    /// Stops (true) or resumes (false) the scripted controller.
    pub fn pause_controller(&self, paused: bool) {
        self.shared.lock().paused = paused;
        self.shared.wake.notify_one();
    }

    /// The object `plural`/`ns`/`name` (`ns` ignored for cluster-scoped kinds).
    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.shared
            .lock()
            .get(plural, ns, name)
            .map(|s| s.obj.clone())
    }

    /// All objects of `plural` in `ns` (all namespaces when None).
    pub fn list(&self, plural: &str, ns: Option<&str>) -> Vec<Value> {
        self.shared.lock().list(plural, ns)
    }

    /// Creates or replaces an object directly, as manager `manager` (operation Update).
    pub fn put(&self, obj: Value, manager: &str) -> Value {
        let mut inner = self.shared.lock();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let r = RESOURCES
            .iter()
            .find(|r| r.kind == kind)
            .unwrap_or(&RESOURCES[0]);
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let old = inner.get(r.plural, &ns, &name).cloned();
        let mgrs = ssa::update(
            old.as_ref().map(|s| &s.obj),
            &obj,
            old.as_ref().map(|s| s.managers.as_slice()).unwrap_or(&[]),
            manager,
            &r.api_version(),
            &now_rfc3339(),
            None,
        );
        let out = inner.store(r, &ns, obj, mgrs, false);
        drop(inner);
        self.shared.wake.notify_one();
        out
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// Requests that could change state (everything but GET), excluding dry runs.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.query.contains("dryRun=All"))
            .collect()
    }

    /// When the controller first reported a new pod in `CrashLoopBackOff`.
    pub fn first_crashloop(&self) -> Option<Instant> {
        self.shared.lock().first_crashloop
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // Watches are long-lived: wake them by dropping the broadcast sender's subscribers.
        {
            let mut inner = self.shared.lock();
            let (tx, _) = broadcast::channel(1);
            inner.tx = tx;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn status_err(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok_json(code: u16, v: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn not_found(r: &ResDef, name: &str) -> Response {
    let what = if r.group.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}.{}", r.plural, r.group)
    };
    let mut resp = status_err(404, "NotFound", &format!("{what} \"{name}\" not found"));
    let _ = &mut resp;
    resp
}

fn resource_list(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        resources.push(json!({
            "name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
            "kind": r.kind, "verbs": verbs, "shortNames": r.short,
        }));
        if r.status {
            resources.push(
                json!({"name": format!("{}/status", r.plural), "singularName": "",
                "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get","patch","update"]}),
            );
        }
        if r.plural == "pods" {
            resources.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"]}),
            );
        }
        if matches!(r.plural, "deployments" | "statefulsets" | "replicasets") {
            resources.push(
                json!({"name": format!("{}/scale", r.plural), "singularName": "",
                "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get","patch","update"]}),
            );
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn group_list() -> Value {
    let groups: Vec<Value> = ["apps", "batch"]
        .iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

struct Route {
    r: &'static ResDef,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn route(group: &str, rest: &[&str]) -> Option<Route> {
    let mk = |plural: &str, ns: Option<&str>, name: Option<&&str>, sub: Option<&&str>| {
        find_res(group, plural).map(|r| Route {
            r,
            ns: ns.map(str::to_string),
            name: name.map(|s| s.to_string()),
            sub: sub.map(|s| s.to_string()),
        })
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if find_res(group, plural).is_some_and(|r| r.namespaced) =>
        {
            mk(plural, Some(ns), tail.first(), tail.get(1))
        }
        [plural, tail @ ..] => mk(plural, None, tail.first(), tail.get(1)),
        [] => None,
    }
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let q = query_map(&uri);
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_string();
    {
        let mut inner = shared.lock();
        inner.requests.push(Request {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            content_type: ctype.clone(),
        });
        if let Some(t) = &inner.token {
            let got = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if got != format!("Bearer {t}") {
                return status_err(401, "Unauthorized", "Unauthorized");
            }
        }
    }
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => {
            return ok_json(
                200,
                &json!({"major":"1","minor":"32","gitVersion":"v1.32.4-gantry-fake",
                "gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean",
                "buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.23","compiler":"gc","platform":"linux/amd64"}),
            );
        }
        ["healthz"] | ["readyz"] | ["livez"] => return (StatusCode::OK, "ok").into_response(),
        ["api"] => {
            let port = shared.lock().port;
            return ok_json(
                200,
                &json!({"kind":"APIVersions","versions":["v1"],
                "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":format!("127.0.0.1:{port}")}]}),
            );
        }
        ["apis"] => return ok_json(200, &group_list()),
        ["api", "v1"] => return ok_json(200, &resource_list("", "v1")),
        ["apis", g] if ["apps", "batch"].contains(g) => {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            return ok_json(
                200,
                &json!({"kind":"APIGroup","apiVersion":"v1","name":g,"versions":[gv.clone()],"preferredVersion":gv}),
            );
        }
        ["apis", g, "v1"] if ["apps", "batch"].contains(g) => {
            return ok_json(200, &resource_list(g, "v1"));
        }
        _ => {}
    }
    let (group, rest): (&str, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] => (g, rest),
        _ => {
            return status_err(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
        }
    };
    let Some(rt) = route(group, rest) else {
        return status_err(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let ns = rt.ns.clone().unwrap_or_default();
    let field_manager = q
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| ua.split('/').next().unwrap_or("unknown").to_string());
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    let resp = match (&method, &rt.name, rt.sub.as_deref()) {
        (&Method::GET, None, _) => {
            if q.get("watch").is_some_and(|v| v == "true" || v == "1") {
                return watch(shared.clone(), rt.r, rt.ns.clone(), &q);
            }
            list(&shared, rt.r, rt.ns.as_deref(), &q)
        }
        (&Method::GET, Some(name), Some("log")) => {
            let inner = shared.lock();
            match inner.pod_logs.get(&(ns.clone(), name.clone())) {
                Some((cur, prev)) => {
                    let text = if q.get("previous").is_some_and(|v| v == "true") {
                        prev
                    } else {
                        cur
                    };
                    let tail: usize = q
                        .get("tailLines")
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(usize::MAX);
                    let lines: Vec<&str> = text.lines().collect();
                    let start = lines.len().saturating_sub(tail);
                    let out = lines[start..]
                        .iter()
                        .map(|l| format!("{l}\n"))
                        .collect::<String>();
                    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], out).into_response()
                }
                None if inner.get("pods", &ns, name).is_some() => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain")],
                    String::new(),
                )
                    .into_response(),
                None => not_found(rt.r, name),
            }
        }
        (&Method::GET, Some(name), _) => {
            let inner = shared.lock();
            match inner.get(rt.r.plural, &ns, name) {
                Some(s) => ok_json(200, &s.obj),
                None => not_found(rt.r, name),
            }
        }
        (&Method::POST, None, _) => create(&shared, rt.r, &ns, &body, &field_manager, dry_run),
        (&Method::PUT, Some(name), sub) => replace(
            &shared,
            rt.r,
            &ns,
            name,
            sub,
            &body,
            &field_manager,
            dry_run,
        ),
        (&Method::PATCH, Some(name), sub) => patch(
            &shared,
            rt.r,
            &ns,
            name,
            sub,
            &body,
            &ctype,
            &field_manager,
            q.get("force").is_some_and(|v| v == "true"),
            dry_run,
        ),
        (&Method::DELETE, Some(name), None) => {
            let mut inner = shared.lock();
            if dry_run {
                match inner.get(rt.r.plural, &ns, name) {
                    Some(s) => ok_json(200, &s.obj),
                    None => not_found(rt.r, name),
                }
            } else {
                match inner.delete(rt.r.plural, &ns, name) {
                    Some(obj) => ok_json(200, &obj),
                    None => not_found(rt.r, name),
                }
            }
        }
        _ => status_err(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
    };
    shared.wake.notify_one();
    resp
}

/// Parses and matches a label selector (`a=b,c!=d,e in (x,y),f`).
pub(crate) fn labels_match(selector: &str, labels: &Value) -> bool {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .all(|p| {
            let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
            if let Some((k, v)) = p.split_once("!=") {
                get(k) != Some(v.trim())
            } else if let Some((k, v)) = p.split_once("==") {
                get(k) == Some(v.trim())
            } else if let Some((k, v)) = p.split_once('=') {
                get(k) == Some(v.trim())
            } else if let Some((k, set)) = p.split_once(" notin ") {
                let set = set.trim().trim_start_matches('(').trim_end_matches(')');
                !set.split(',').any(|s| get(k) == Some(s.trim()))
            } else if let Some((k, set)) = p.split_once(" in ") {
                let set = set.trim().trim_start_matches('(').trim_end_matches(')');
                set.split(',').any(|s| get(k) == Some(s.trim()))
            } else if let Some(k) = p.strip_prefix('!') {
                get(k).is_none()
            } else {
                get(p).is_some()
            }
        })
}

fn fields_match(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|p| !p.is_empty()).all(|p| {
        let (k, v, neg) = match p.split_once("!=") {
            Some((k, v)) => (k, v, true),
            None => match p.split_once("==").or_else(|| p.split_once('=')) {
                Some((k, v)) => (k, v, false),
                None => return true,
            },
        };
        let mut cur = obj;
        for seg in k.split('.') {
            cur = &cur[seg];
        }
        let actual = match cur {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        (actual == v) != neg
    })
}

fn matches(q: &HashMap<String, String>, obj: &Value) -> bool {
    q.get("labelSelector")
        .is_none_or(|s| labels_match(s, &obj["metadata"]["labels"]))
        && q.get("fieldSelector").is_none_or(|s| fields_match(s, obj))
}

fn list(
    shared: &Shared,
    r: &'static ResDef,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> Response {
    let inner = shared.lock();
    let items: Vec<Value> = inner
        .list(r.plural, ns.filter(|_| r.namespaced))
        .into_iter()
        .filter(|o| matches(q, o))
        .collect();
    ok_json(
        200,
        &json!({"kind": format!("{}List", r.kind), "apiVersion": r.api_version(),
            "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items}),
    )
}

fn watch(
    shared: Arc<Shared>,
    r: &'static ResDef,
    ns: Option<String>,
    q: &HashMap<String, String>,
) -> Response {
    let q = q.clone();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let from: Option<u64> = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    let wanted = move |ev: &WatchEvent| {
        ev.plural == r.plural
            && ns.as_ref().is_none_or(|n| !r.namespaced || n == &ev.ns)
            && matches(&q, &ev.obj)
    };
    let (initial, mut rx, current_rv) = {
        let inner = shared.lock();
        let rx = inner.tx.subscribe();
        let initial: Vec<Value> = match from {
            Some(rv) => {
                let oldest = inner.log.first().map(|e| e.rv).unwrap_or(0);
                if rv + 1 < oldest {
                    vec![
                        json!({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",
                        "message":"too old resource version","reason":"Expired","code":410}}),
                    ]
                } else {
                    inner
                        .log
                        .iter()
                        .filter(|e| e.rv > rv && wanted(e))
                        .map(|e| json!({"type": e.typ, "object": e.obj}))
                        .collect()
                }
            }
            None => inner
                .log
                .iter()
                .filter(|e| wanted(e))
                .fold(BTreeMap::new(), |mut acc, e| {
                    let k = (
                        e.ns.clone(),
                        e.obj["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    if e.typ == "DELETED" {
                        acc.remove(&k);
                    } else {
                        acc.insert(k, e.obj.clone());
                    }
                    acc
                })
                .into_values()
                .map(|o| json!({"type":"ADDED","object": o}))
                .collect(),
        };
        (initial, rx, inner.rv)
    };
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
    tokio::spawn(async move {
        for ev in initial {
            if tx.send(Ok(Bytes::from(format!("{ev}\n")))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rv = current_rv;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep(Duration::from_secs(5)), if bookmarks => {
                    let bm = json!({"type":"BOOKMARK","object":{"kind": r.kind, "apiVersion": r.api_version(),
                        "metadata":{"resourceVersion": last_rv.to_string()}}});
                    if tx.send(Ok(Bytes::from(format!("{bm}\n")))).await.is_err() { return; }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        last_rv = ev.rv;
                        if !wanted(&ev) { continue; }
                        let line = json!({"type": ev.typ, "object": ev.obj});
                        if tx.send(Ok(Bytes::from(format!("{line}\n")))).await.is_err() { return; }
                    }
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(out, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Transfer-Encoding", "chunked")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status_err(500, "InternalError", "stream"))
}

#[allow(clippy::result_large_err)]
fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice::<Value>(body))
        .map_err(|e| {
            status_err(
                400,
                "BadRequest",
                &format!("the body of the request was in an unknown format: {e}"),
            )
        })
}

#[allow(clippy::result_large_err)]
fn ns_exists(inner: &Inner, r: &ResDef, ns: &str) -> Option<Response> {
    if r.namespaced && inner.get("namespaces", "", ns).is_none() {
        Some(status_err(
            404,
            "NotFound",
            &format!("namespaces \"{ns}\" not found"),
        ))
    } else {
        None
    }
}

fn check_identity(r: &ResDef, obj: &Value, name: Option<&str>, ns: &str) -> Option<Response> {
    if obj["kind"].as_str().is_some_and(|k| k != r.kind) {
        return Some(status_err(
            400,
            "BadRequest",
            &format!(
                "the kind of the object ({}) does not match the resource ({})",
                obj["kind"], r.kind
            ),
        ));
    }
    if let (Some(n), Some(b)) = (name, obj["metadata"]["name"].as_str())
        && n != b
    {
        return Some(status_err(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL",
        ));
    }
    if r.namespaced
        && let Some(b) = obj["metadata"]["namespace"].as_str()
        && b != ns
    {
        return Some(status_err(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    None
}

fn create(
    shared: &Shared,
    r: &'static ResDef,
    ns: &str,
    body: &Bytes,
    manager: &str,
    dry_run: bool,
) -> Response {
    let mut obj = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if let Some(e) = check_identity(r, &obj, None, ns) {
        return e;
    }
    let mut inner = shared.lock();
    if let Some(e) = ns_exists(&inner, r, ns) {
        return e;
    }
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        match obj["metadata"]["generateName"].as_str() {
            Some(g) => {
                let n = format!("{g}{}", inner.next_name());
                obj["metadata"]["name"] = json!(n);
            }
            None => return status_err(422, "Invalid", "name or generateName is required"),
        }
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if inner.get(r.plural, ns, &name).is_some() {
        let what = if r.group.is_empty() {
            r.plural.to_string()
        } else {
            format!("{}.{}", r.plural, r.group)
        };
        return status_err(
            409,
            "AlreadyExists",
            &format!("{what} \"{name}\" already exists"),
        );
    }
    let mgrs = ssa::update(
        None,
        &obj,
        &[],
        manager,
        &r.api_version(),
        &now_rfc3339(),
        None,
    );
    let out = inner.store(r, ns, obj, mgrs, dry_run);
    ok_json(201, &out)
}

#[allow(clippy::too_many_arguments)]
fn replace(
    shared: &Shared,
    r: &'static ResDef,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    body: &Bytes,
    manager: &str,
    dry_run: bool,
) -> Response {
    let new = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if let Some(e) = check_identity(r, &new, Some(name), ns) {
        return e;
    }
    let mut inner = shared.lock();
    let Some(old) = inner.get(r.plural, ns, name).cloned() else {
        return not_found(r, name);
    };
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old.obj["metadata"]["resourceVersion"].as_str()
    {
        return status_err(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                r.plural
            ),
        );
    }
    let merged = merge_subresource(&old.obj, new, sub);
    let mgrs = ssa::update(
        Some(&old.obj),
        &merged,
        &old.managers,
        manager,
        &r.api_version(),
        &now_rfc3339(),
        sub,
    );
    let out = inner.store(r, ns, merged, mgrs, dry_run);
    ok_json(200, &out)
}

/// For `/status` writes only status changes; for main-resource writes status is kept.
fn merge_subresource(old: &Value, mut new: Value, sub: Option<&str>) -> Value {
    match sub {
        Some("status") => {
            let mut out = old.clone();
            out["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            out
        }
        _ => {
            if let Some(s) = old.get("status") {
                new["status"] = s.clone();
            }
            new
        }
    }
}

/// A strategic merge patch, approximated: maps merge (null deletes), keyed lists merge by key,
/// `$patch: replace`/`delete` directives honoured on maps.
fn strategic(live: &mut Value, patch: &Value, field: &str) {
    match (live, patch) {
        (Value::Object(l), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p = p.clone();
                p.remove("$patch");
                *l = p;
                return;
            }
            for (k, v) in p {
                if k.starts_with("$setElementOrder") || k.starts_with("$retainKeys") {
                    continue;
                }
                if v.is_null() {
                    l.remove(k);
                } else if let Some(existing) = l.get_mut(k) {
                    strategic(existing, v, k);
                } else {
                    let mut v = v.clone();
                    strip_directives(&mut v);
                    l.insert(k.clone(), v);
                }
            }
        }
        (Value::Array(l), Value::Array(p)) => {
            let mut tmp = Value::Array(l.clone());
            let keyed = ssa::field_set(&json!({"x": {field: p}}))
                .iter()
                .any(|path| path.iter().any(|s| matches!(s, ssa::Seg::K(_))));
            if keyed {
                ssa::merge(&mut tmp, &Value::Array(p.clone()), field);
                *l = tmp.as_array().cloned().unwrap_or_default();
            } else {
                *l = p.clone();
            }
        }
        (l, p) => {
            let mut p = p.clone();
            strip_directives(&mut p);
            *l = p;
        }
    }
}

fn strip_directives(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| !k.starts_with('$'));
        for c in m.values_mut() {
            strip_directives(c);
        }
    } else if let Some(a) = v.as_array_mut() {
        for c in a {
            strip_directives(c);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn patch(
    shared: &Shared,
    r: &'static ResDef,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    body: &Bytes,
    ctype: &str,
    manager: &str,
    force: bool,
    dry_run: bool,
) -> Response {
    let mut inner = shared.lock();
    let old = inner.get(r.plural, ns, name).cloned();
    let now = now_rfc3339();
    if ctype.starts_with("application/apply-patch") {
        let applied = match parse_body(body) {
            Ok(v) => v,
            Err(e) => return e,
        };
        if let Some(e) = check_identity(r, &applied, Some(name), ns) {
            return e;
        }
        if applied["apiVersion"].as_str().is_none() || applied["kind"].as_str().is_none() {
            return status_err(
                400,
                "BadRequest",
                "apiVersion and kind must be set in an apply patch",
            );
        }
        if old.is_none()
            && let Some(e) = ns_exists(&inner, r, ns)
        {
            return e;
        }
        let mut applied_nostatus = applied.clone();
        if sub != Some("status")
            && let Some(m) = applied_nostatus.as_object_mut()
        {
            m.remove("status");
        }
        let (mut merged, mgrs) = match ssa::apply(
            old.as_ref().map(|s| &s.obj),
            old.as_ref().map(|s| s.managers.as_slice()).unwrap_or(&[]),
            &applied_nostatus,
            manager,
            force,
            &r.api_version(),
            &now,
        ) {
            Ok(x) => x,
            Err(conflicts) => {
                let n = conflicts.len();
                let lines: Vec<String> = conflicts
                    .iter()
                    .map(|c| {
                        format!(
                            "conflict with \"{}\" using {}: {}",
                            c.manager,
                            r.api_version(),
                            ssa::display(&c.path)
                        )
                    })
                    .collect();
                let msg = if n == 1 {
                    format!("Apply failed with 1 conflict: {}", lines.join(""))
                } else {
                    format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
                };
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| json!({"reason":"FieldManagerConflict","message": format!("conflict with \"{}\" using {}", c.manager, r.api_version()),"field": ssa::display(&c.path)}))
                    .collect();
                let body = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message": msg, "reason":"Conflict", "details": {"name": name, "group": r.group, "kind": r.plural, "causes": causes}, "code": 409});
                return ok_json(409, &body);
            }
        };
        if merged["metadata"]["name"].is_null() {
            merged["metadata"]["name"] = json!(name);
        }
        if let Some(o) = &old
            && let Some(s) = o.obj.get("status")
        {
            merged["status"] = s.clone();
        }
        let code = if old.is_some() { 200 } else { 201 };
        let out = inner.store(r, ns, merged, mgrs, dry_run);
        return ok_json(code, &out);
    }
    let Some(old) = old else {
        return not_found(r, name);
    };
    let p = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut new = old.obj.clone();
    if ctype.starts_with("application/json-patch+json") {
        let ops: json_patch::Patch = match serde_json::from_value(p) {
            Ok(x) => x,
            Err(e) => return status_err(400, "BadRequest", &format!("invalid JSON patch: {e}")),
        };
        if let Err(e) = json_patch::patch(&mut new, &ops) {
            return status_err(
                422,
                "Invalid",
                &format!("the server rejected our request due to an error in our request: {e}"),
            );
        }
    } else if ctype.starts_with("application/merge-patch+json") {
        json_patch::merge(&mut new, &p);
    } else if ctype.starts_with("application/strategic-merge-patch+json") {
        strategic(&mut new, &p, "");
    } else {
        return status_err(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ctype})"
            ),
        );
    }
    let merged = merge_subresource(&old.obj, new, sub);
    let mgrs = ssa::update(
        Some(&old.obj),
        &merged,
        &old.managers,
        manager,
        &r.api_version(),
        &now,
        sub,
    );
    let out = inner.store(r, ns, merged, mgrs, dry_run);
    ok_json(200, &out)
}

/// Standard base64 of `s` (kubeconfigs are stored that way in CI secrets).
pub fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Where the real kubectl is on this machine (the google-cloud-sdk 1.32 binary, then `kubectl` on
/// PATH), or None.
pub fn kubectl() -> Option<String> {
    [
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
        "/usr/local/bin/kubectl",
        "/usr/bin/kubectl",
    ]
    .iter()
    .find(|p| std::path::Path::new(p).is_file())
    .map(|p| p.to_string())
    .or_else(|| crate::have_program("kubectl").then(|| "kubectl".to_string()))
}

/// Decodes `metadata.managedFields` managers of an object as (manager, operation) pairs.
pub fn managers_of(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["manager"].as_str().unwrap_or_default().to_string(),
                        m["operation"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[allow(dead_code)]
fn _assert_map(_: Map<String, Value>) {}

#[cfg(test)]
mod kubectl_tests;
