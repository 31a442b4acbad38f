//! A fake GitHub REST API for deployments on a free loopback port: create and list deployments,
//! create and list deployment statuses, with bearer-token checks and the response shapes
//! octocrab deserialises. It records every request and stops when dropped.
//!
//! It must not implement anything else of the GitHub API, and serves only 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The token the fake accepts.
pub const GITHUB_TOKEN: &str = "ghs_gantryFAKEgithubTOKEN0123456789";

/// A stored deployment.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// Id.
    pub id: u64,
    /// `owner/repo`.
    pub repo: String,
    /// Ref as sent.
    pub git_ref: String,
    /// Environment.
    pub environment: String,
    /// Payload.
    pub payload: Value,
    /// `production_environment`.
    pub production: bool,
    /// Statuses, oldest first: `(state, environment_url, log_url)`.
    pub statuses: Vec<(String, Option<String>, Option<String>)>,
}

#[derive(Default)]
struct Inner {
    deployments: Vec<Deployment>,
    requests: Vec<(String, String, String)>,
    next_id: u64,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The running fake.
pub struct FakeGitHub {
    server: crate::serve::LoopbackServer,
    state: Shared,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub")
            .field("port", &self.server.port())
            .finish()
    }
}

impl FakeGitHub {
    /// Starts the fake.
    pub fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Inner {
            next_id: 1000,
            ..Inner::default()
        }));
        let st = state.clone();
        let app = Router::new()
            .route("/repos/{owner}/{repo}/deployments", get(list).post(create))
            .route(
                "/repos/{owner}/{repo}/deployments/{id}/statuses",
                get(list_statuses).post(create_status),
            )
            .with_state(st);
        Self {
            server: crate::serve::LoopbackServer::start(app),
            state,
        }
    }

    /// `GITHUB_API_URL` for the binary.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// Stored deployments.
    pub fn deployments(&self) -> Vec<Deployment> {
        lock(&self.state).deployments.clone()
    }

    /// Recorded requests `(method, path, body)`.
    pub fn requests(&self) -> Vec<(String, String, String)> {
        lock(&self.state).requests.clone()
    }

    /// Adds a deployment whose latest status is `state` (an earlier deploy of the environment).
    pub fn seed(&self, repo: &str, environment: &str, state: &str) -> u64 {
        let mut g = lock(&self.state);
        g.next_id += 1;
        let id = g.next_id;
        g.deployments.push(Deployment {
            id,
            repo: repo.into(),
            git_ref: "0000000000000000000000000000000000000000".into(),
            environment: environment.into(),
            payload: json!({}),
            production: false,
            statuses: vec![(state.into(), None, None)],
        });
        id
    }
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a == format!("Bearer {GITHUB_TOKEN}") || a == format!("token {GITHUB_TOKEN}")
        })
}

fn gh_err(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"message": msg, "documentation_url": "https://docs.github.com/rest"}).to_string(),
    )
        .into_response()
}

fn dep_json(base: &str, d: &Deployment) -> Value {
    let url = format!("{base}/repos/{}/deployments/{}", d.repo, d.id);
    json!({
        "url": url, "id": d.id, "node_id": format!("DE_{}", d.id), "sha": d.git_ref, "ref": d.git_ref, "task": "deploy",
        "payload": d.payload, "original_environment": d.environment, "environment": d.environment, "description": null,
        "creator": null, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "statuses_url": format!("{url}/statuses"), "repository_url": format!("{base}/repos/{}", d.repo),
        "transient_environment": false, "production_environment": d.production,
    })
}

fn status_json(base: &str, d: &Deployment, i: usize) -> Value {
    let (state, env_url, log_url) = &d.statuses[i];
    let url = format!("{base}/repos/{}/deployments/{}", d.repo, d.id);
    json!({
        "url": format!("{url}/statuses/{i}"), "id": d.id * 100 + i as u64, "node_id": format!("DES_{}_{i}", d.id), "state": state,
        "creator": null, "description": "", "environment": d.environment, "target_url": log_url, "log_url": log_url,
        "environment_url": env_url, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "deployment_url": url, "repository_url": format!("{base}/repos/{}", d.repo),
    })
}

fn base(h: &HeaderMap) -> String {
    format!(
        "http://{}",
        h.get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1")
    )
}

fn record(st: &Shared, method: &str, path: String, body: &Bytes) {
    lock(st).requests.push((
        method.into(),
        path,
        String::from_utf8_lossy(body).into_owned(),
    ));
}

async fn create(
    State(st): State<Shared>,
    Path((o, r)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    record(&st, "POST", format!("/repos/{o}/{r}/deployments"), &body);
    if !authorized(&h) {
        return gh_err(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return gh_err(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(git_ref) = v.get("ref").and_then(Value::as_str) else {
        return gh_err(StatusCode::UNPROCESSABLE_ENTITY, "ref is missing");
    };
    let mut g = lock(&st);
    g.next_id += 1;
    let d = Deployment {
        id: g.next_id,
        repo: format!("{o}/{r}"),
        git_ref: git_ref.into(),
        environment: v
            .get("environment")
            .and_then(Value::as_str)
            .unwrap_or("production")
            .into(),
        payload: v.get("payload").cloned().unwrap_or(json!({})),
        production: v
            .get("production_environment")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        statuses: Vec::new(),
    };
    let out = dep_json(&base(&h), &d);
    g.deployments.push(d);
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        out.to_string(),
    )
        .into_response()
}

async fn list(
    State(st): State<Shared>,
    Path((o, r)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    record(
        &st,
        "GET",
        format!(
            "/repos/{o}/{r}/deployments?{}",
            q.clone().unwrap_or_default()
        ),
        &Bytes::new(),
    );
    if !authorized(&h) {
        return gh_err(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let g = lock(&st);
    let repo = format!("{o}/{r}");
    let items: Vec<Value> = g
        .deployments
        .iter()
        .rev()
        .filter(|d| d.repo == repo)
        .filter(|d| q.get("sha").is_none_or(|s| &d.git_ref == s))
        .filter(|d| q.get("environment").is_none_or(|e| &d.environment == e))
        .take(per_page)
        .map(|d| dep_json(&base(&h), d))
        .collect();
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        Value::Array(items).to_string(),
    )
        .into_response()
}

async fn create_status(
    State(st): State<Shared>,
    Path((o, r, id)): Path<(String, String, u64)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &st,
        "POST",
        format!("/repos/{o}/{r}/deployments/{id}/statuses"),
        &body,
    );
    if !authorized(&h) {
        return gh_err(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return gh_err(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let state = v.get("state").and_then(Value::as_str).unwrap_or("");
    if ![
        "error",
        "failure",
        "inactive",
        "in_progress",
        "queued",
        "pending",
        "success",
    ]
    .contains(&state)
    {
        return gh_err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "state is not included in the list",
        );
    }
    let mut g = lock(&st);
    let Some(d) = g
        .deployments
        .iter_mut()
        .find(|d| d.id == id && d.repo == format!("{o}/{r}"))
    else {
        return gh_err(StatusCode::NOT_FOUND, "Not Found");
    };
    d.statuses.push((
        state.into(),
        v.get("environment_url")
            .and_then(Value::as_str)
            .map(str::to_string),
        v.get("log_url").and_then(Value::as_str).map(str::to_string),
    ));
    let out = status_json(&base(&h), d, d.statuses.len() - 1);
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        out.to_string(),
    )
        .into_response()
}

async fn list_statuses(
    State(st): State<Shared>,
    Path((o, r, id)): Path<(String, String, u64)>,
    h: HeaderMap,
) -> Response {
    record(
        &st,
        "GET",
        format!("/repos/{o}/{r}/deployments/{id}/statuses"),
        &Bytes::new(),
    );
    if !authorized(&h) {
        return gh_err(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let g = lock(&st);
    let Some(d) = g.deployments.iter().find(|d| d.id == id) else {
        return gh_err(StatusCode::NOT_FOUND, "Not Found");
    };
    let items: Vec<Value> = (0..d.statuses.len())
        .rev()
        .map(|i| status_json(&base(&h), d, i))
        .collect();
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        Value::Array(items).to_string(),
    )
        .into_response()
}
