//! A fake GitHub REST API for repository reads on a free loopback port: `GET /repos/{o}/{r}`,
//! `GET /repos/{o}/{r}/commits/{sha}` and the paginated `GET /repos/{o}/{r}/tags` (with `Link`
//! headers), optionally under a GitHub Enterprise path prefix (`/api/v3`). It records every
//! request (with whether it carried a token) and can be told to fail paths with any status.
//!
//! It must not implement writes or other endpoints, and serves only 127.0.0.1.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One recorded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Path (without the query).
    pub path: String,
    /// Query string.
    pub query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Inner {
    prefix: String,
    repos: Vec<(String, Value)>,
    commits: Vec<(String, String, String)>,
    tags: Vec<(String, Vec<String>)>,
    failures: Vec<(String, u16)>,
    hangs: Vec<String>,
    requests: Vec<Request>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The running fake; stops on drop.
pub struct FakeRepoApi {
    server: crate::serve::LoopbackServer,
    state: Shared,
}

impl std::fmt::Debug for FakeRepoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRepoApi")
            .field("port", &self.server.port())
            .finish()
    }
}

/// A repository object shaped like GitHub's.
pub fn repo_json(full_name: &str, description: &str, license: Option<&str>) -> Value {
    let name = full_name.split('/').nth(1).unwrap_or(full_name);
    json!({
        "id": 1,
        "name": name,
        "full_name": full_name,
        "private": false,
        "html_url": format!("https://github.com/{full_name}"),
        "description": description,
        "default_branch": "master",
        "license": license.map(|l| json!({"key": l.to_lowercase(), "name": l, "spdx_id": l})),
        "topics": [],
    })
}

impl FakeRepoApi {
    /// Starts the fake on a free loopback port.
    pub fn start() -> Self {
        Self::start_with_prefix("")
    }

    /// Starts the fake serving under `prefix` (e.g. `/api/v3`, as GitHub Enterprise).
    pub fn start_with_prefix(prefix: &str) -> Self {
        let state: Shared = Arc::new(Mutex::new(Inner {
            prefix: prefix.trim_end_matches('/').to_string(),
            ..Inner::default()
        }));
        let st = state.clone();
        let app = Router::new().fallback(handle).with_state(st);
        Self {
            server: crate::serve::LoopbackServer::start(app),
            state,
        }
    }

    /// `GITHUB_API_URL` for the binary (with the prefix).
    pub fn api_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}{}",
            self.server.port(),
            lock(&self.state).prefix
        )
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves `repo` for `owner/name`.
    pub fn set_repo(&self, full_name: &str, repo: Value) -> &Self {
        lock(&self.state).repos.push((full_name.to_string(), repo));
        self
    }

    /// Serves a commit with a committer date.
    pub fn set_commit(&self, full_name: &str, sha: &str, date: &str) -> &Self {
        lock(&self.state)
            .commits
            .push((full_name.to_string(), sha.to_string(), date.to_string()));
        self
    }

    /// Serves the repository's tags (newest first, as GitHub does).
    pub fn set_tags(&self, full_name: &str, tags: &[&str]) -> &Self {
        lock(&self.state).tags.push((
            full_name.to_string(),
            tags.iter().map(|t| t.to_string()).collect(),
        ));
        self
    }

    /// Answers `status` to every path containing `path_part`.
    pub fn fail(&self, path_part: &str, status: u16) -> &Self {
        lock(&self.state)
            .failures
            .push((path_part.to_string(), status));
        self
    }

    /// Never answers paths containing `path_part` (for timeout and cancellation tests).
    pub fn hang(&self, path_part: &str) -> &Self {
        lock(&self.state).hangs.push(path_part.to_string());
        self
    }

    /// Recorded requests, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }
}

/// Sends SIGTERM to a child process (the runner's cancel), for cancellation tests.
pub fn sigterm(child: &std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    )
        .into_response()
}

async fn handle(
    State(st): State<Shared>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let query = query.unwrap_or_default();
    let hang = {
        let mut g = lock(&st);
        g.requests.push(Request {
            path: path.clone(),
            query: query.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        });
        g.hangs.iter().any(|h| path.contains(h.as_str()))
    };
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    }
    let g = lock(&st);
    if let Some((_, status)) = g.failures.iter().find(|(p, _)| path.contains(p.as_str())) {
        let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            code,
            axum::Json(json!({"message": format!("fake failure {status}")})),
        )
            .into_response();
    }
    let Some(rest) = path.strip_prefix(&g.prefix) else {
        return not_found();
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["repos", o, r] => {
            let full = format!("{o}/{r}");
            match g.repos.iter().rev().find(|(n, _)| *n == full) {
                Some((_, v)) => axum::Json(v.clone()).into_response(),
                None => not_found(),
            }
        }
        ["repos", o, r, "commits", sha] => {
            let full = format!("{o}/{r}");
            match g.commits.iter().find(|(n, s, _)| *n == full && s == sha) {
                Some((_, s, d)) => axum::Json(json!({
                    "sha": s,
                    "commit": {
                        "author": {"name": "A", "email": "a@example.com", "date": d},
                        "committer": {"name": "C", "email": "c@example.com", "date": d},
                        "message": "fake"
                    }
                }))
                .into_response(),
                None => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({"message": format!("No commit found for SHA: {sha}")})),
                )
                    .into_response(),
            }
        }
        ["repos", o, r, "tags"] => {
            let full = format!("{o}/{r}");
            let Some((_, tags)) = g.tags.iter().find(|(n, _)| *n == full) else {
                return axum::Json(json!([])).into_response();
            };
            let param = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .and_then(|v| v.parse::<usize>().ok())
            };
            let per_page = param("per_page").unwrap_or(30).clamp(1, 100);
            let page = param("page").unwrap_or(1).max(1);
            let start = (page - 1) * per_page;
            let items: Vec<Value> = tags
                .iter()
                .skip(start)
                .take(per_page)
                .map(|t| json!({"name": t, "commit": {"sha": "0".repeat(40)}}))
                .collect();
            let mut resp = axum::Json(items).into_response();
            if start + per_page < tags.len() {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("127.0.0.1")
                    .to_string();
                let link = format!(
                    "<http://{host}{path}?per_page={per_page}&page={}>; rel=\"next\"",
                    page + 1
                );
                if let Ok(v) = link.parse() {
                    resp.headers_mut().insert("link", v);
                }
            }
            resp
        }
        _ => not_found(),
    }
}
