//! A fault-injecting HTTP proxy for registry tests: it forwards to an upstream registry and, for
//! requests matching a rule, answers 429 with `Retry-After`, a 5xx, a 202 instead of a mount, cuts a
//! blob download mid-body, cuts an upload mid-body, loses the registry's answer after forwarding,
//! or delays the first byte. It records every request it saw.
//!
//! Test-only code, loopback only. It must not alter requests it has no rule for (apart from the
//! `Host` header, so the registry's `Location` URLs point back at the proxy).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures::StreamExt;

/// One injected fault.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and `Retry-After: <secs>` when given), not forwarding.
    Status {
        /// HTTP status.
        code: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Forward a mount request (`?mount=…&from=…`) as a plain upload start, so the registry
    /// answers 202 with an open session instead of 201.
    RefuseMount,
    /// Forward, then cut the response body after this many bytes (a dropped connection).
    DropAfter(usize),
    /// Forward, but wait this long before answering.
    SlowFirstByte(Duration),
    /// Forward the whole request, then drop the registry's answer and send this status instead
    /// (a gateway that timed out after the registry had taken the request).
    ForwardThenStatus(u16),
    /// Forward only the first this-many bytes of the request body, then abort the upstream
    /// request and answer 502 (a connection lost mid-upload).
    TruncateRequest(usize),
    /// Answer with this status, content type and body, not forwarding (a registry's refusal,
    /// an oversized document).
    Reply {
        /// HTTP status.
        code: u16,
        /// `Content-Type`.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
}

/// A rule: the first `times` requests whose method matches and whose path contains `path`.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `GET`, `PUT`, … or `*`.
    pub method: String,
    /// Substring of the path and query.
    pub path: String,
    /// What to do.
    pub fault: Fault,
    /// How many matching requests to hit (then the rule is spent).
    pub times: usize,
    /// Matching requests to let through untouched before the first hit.
    pub skip: usize,
}

impl Rule {
    /// A rule.
    pub fn new(method: &str, path: &str, fault: Fault, times: usize) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            fault,
            times,
            skip: 0,
        }
    }

    /// Lets the first `n` matching requests through before the rule hits.
    pub fn after(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }
}

struct ProxyState {
    upstream: String,
    host: String,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<String>>,
    http: reqwest::Client,
}

/// The running proxy (stopped on drop).
pub struct FaultProxy {
    /// `127.0.0.1:<port>`.
    pub host: String,
    state: Arc<ProxyState>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let host = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            host: host.clone(),
            rules: Mutex::new(rules),
            log: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("client"),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(handle).with_state(st);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Self {
            host,
            state,
            _shutdown: tx,
        }
    }

    /// Requests seen, as `METHOD path?query -> status` (`[fault]` marks injected ones).
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Rules not yet spent.
    pub fn pending(&self) -> Vec<Rule> {
        self.state
            .rules
            .lock()
            .map(|r| r.iter().filter(|r| r.times > 0).cloned().collect())
            .unwrap_or_default()
    }
}

fn take_fault(st: &ProxyState, method: &str, path: &str) -> Option<Fault> {
    let mut rules = st.rules.lock().ok()?;
    let r = rules.iter_mut().find(|r| {
        r.times > 0 && (r.method == "*" || r.method == method) && path.contains(&r.path)
    })?;
    if r.skip > 0 {
        r.skip -= 1;
        return None;
    }
    r.times -= 1;
    Some(r.fault.clone())
}

async fn handle(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let method = req.method().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let fault = take_fault(&st, &method, &pq);
    let log = |s: String| {
        if let Ok(mut l) = st.log.lock() {
            l.push(s);
        }
    };
    if let Some(Fault::Status { code, retry_after }) = &fault {
        log(format!("{method} {pq} -> {code} [fault]"));
        let mut b = Response::builder().status(*code);
        if let Some(s) = retry_after {
            b = b.header("retry-after", s.to_string());
        }
        return b
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#,
            ))
            .expect("response");
    }
    if let Some(Fault::Reply {
        code,
        content_type,
        body,
    }) = &fault
    {
        log(format!("{method} {pq} -> {code} [reply]"));
        return Response::builder()
            .status(*code)
            .header("content-type", content_type.as_str())
            .header("docker-distribution-api-version", "registry/2.0")
            .body(Body::from(body.clone()))
            .expect("response");
    }
    if let Some(Fault::SlowFirstByte(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let mut target = pq.clone();
    if matches!(fault, Some(Fault::RefuseMount)) {
        target = target.split('?').next().unwrap_or("/").to_string();
    }
    let (parts, body) = req.into_parts();
    let mut out = st
        .http
        .request(parts.method.clone(), format!("{}{target}", st.upstream))
        .header("host", st.host.clone());
    for (k, v) in &parts.headers {
        if !matches!(k.as_str(), "host" | "connection" | "transfer-encoding") {
            out = out.header(k, v);
        }
    }
    if let Some(Fault::TruncateRequest(n)) = &fault {
        let n = *n;
        let mut sent = 0usize;
        let cut = body.into_data_stream().map(move |c| {
            let c = c.map_err(std::io::Error::other)?;
            if sent + c.len() > n {
                let keep = n - sent;
                sent = n;
                if keep == 0 {
                    return Err(std::io::Error::other("injected: request cut"));
                }
                return Ok(c.slice(..keep));
            }
            sent += c.len();
            Ok(c)
        });
        // Send the kept bytes, then fail the body: the upstream sees the connection end early.
        let cut = cut.chain(futures::stream::once(async {
            Err::<bytes::Bytes, _>(std::io::Error::other("injected: request cut"))
        }));
        let res = out.body(reqwest::Body::wrap_stream(cut)).send().await;
        log(format!(
            "{method} {pq} -> 502 [truncated after {n} bytes; upstream: {}]",
            match res {
                Ok(r) => r.status().to_string(),
                Err(_) => "aborted".into(),
            }
        ));
        return Response::builder()
            .status(502)
            .body(Body::empty())
            .expect("response");
    }
    out = out.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            log(format!("{method} {pq} -> 502 (upstream: {e})"));
            return Response::builder()
                .status(502)
                .body(Body::empty())
                .expect("response");
        }
    };
    let status = resp.status().as_u16();
    if let Some(Fault::ForwardThenStatus(code)) = &fault {
        let _ = resp.bytes().await;
        log(format!(
            "{method} {pq} -> {code} [upstream answered {status}, dropped]"
        ));
        return Response::builder()
            .status(*code)
            .body(Body::empty())
            .expect("response");
    }
    log(format!(
        "{method} {pq} -> {status}{}",
        if fault.is_some() { " [fault]" } else { "" }
    ));
    let mut b = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if !matches!(k.as_str(), "connection" | "transfer-encoding") {
            b = b.header(k, v);
        }
    }
    let stream = resp.bytes_stream();
    let body = match fault {
        Some(Fault::DropAfter(n)) => {
            let mut sent = 0usize;
            Body::from_stream(stream.map(move |c| {
                let c = c.map_err(std::io::Error::other)?;
                if sent >= n {
                    return Err(std::io::Error::other("injected: connection dropped"));
                }
                let keep = (n - sent).min(c.len());
                sent += keep;
                if keep < c.len() {
                    return Err(std::io::Error::other("injected: connection dropped"));
                }
                Ok(c)
            }))
        }
        _ => Body::from_stream(stream),
    };
    b.body(body).expect("response")
}
