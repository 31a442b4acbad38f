//! The registry client: one HTTP stack (`reqwest`), one auth ping per registry, tokens cached per
//! scope set, retries with back-off on 408/429/5xx and connection errors (honouring
//! `Retry-After`), blob HEAD/mount/upload (monolithic, chunked fallback, streaming), manifests as
//! exact bytes, tag listing and the referrers API.
//!
//! It must not buffer a whole layer: uploads read from files or streams, downloads hand out
//! streams. It must not print credentials or send plain HTTP to a registry that is neither on
//! loopback nor listed as insecure.
//!
//! See: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md>

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::{Mutex, OnceCell};

use crate::auth::{Challenge, Credentials, IDENTITY_TOKEN_USER, basic_header, parse_challenge};
use crate::manifest::{ACCEPT_MANIFESTS, Descriptor, MAX_MANIFEST_BYTES, RawManifest};
use crate::reference::ImageRef;
use crate::{Error, digest};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Registries that may be reached over plain HTTP (loopback always may).
    pub insecure: Vec<String>,
    /// Extra PEM CA certificates to trust (on top of the system's).
    pub ca_pem: Vec<Vec<u8>>,
    /// Attempts after the first for transient failures.
    pub retries: u32,
    /// First back-off delay (doubles each attempt).
    pub backoff: Duration,
    /// Longest `Retry-After` we honour.
    pub max_retry_after: Duration,
    /// Parallel blob transfers.
    pub concurrency: usize,
    /// Chunk size for chunked uploads (the fallback when a monolithic PUT is refused).
    pub chunk_size: usize,
    /// Upload in chunks from the start instead of one PUT per blob (registries behind a proxy
    /// with a request-size limit).
    pub chunked_first: bool,
    /// Per-request connect timeout.
    pub connect_timeout: Duration,
    /// `User-Agent`.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            ca_pem: Vec::new(),
            retries: 4,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(60),
            concurrency: 6,
            chunk_size: 8 * 1024 * 1024,
            chunked_first: false,
            connect_timeout: Duration::from_secs(15),
            user_agent: concat!("gantry/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Byte and blob counters for a run (shared by parallel transfers).
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes sent in blob uploads.
    pub uploaded_bytes: AtomicU64,
    /// Blobs uploaded.
    pub uploaded_blobs: AtomicU64,
    /// Bytes made present by cross-repository mounts.
    pub mounted_bytes: AtomicU64,
    /// Blobs mounted.
    pub mounted_blobs: AtomicU64,
    /// Bytes already present (HEAD said so).
    pub skipped_bytes: AtomicU64,
    /// Blobs already present.
    pub skipped_blobs: AtomicU64,
    /// Requests retried.
    pub retries: AtomicU64,
}

/// A plain copy of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Blobs uploaded.
    pub uploaded_blobs: u64,
    /// Bytes mounted.
    pub mounted_bytes: u64,
    /// Blobs mounted.
    pub mounted_blobs: u64,
    /// Bytes skipped.
    pub skipped_bytes: u64,
    /// Blobs skipped.
    pub skipped_blobs: u64,
    /// Retried requests.
    pub retries: u64,
}

impl Stats {
    /// Reads the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            uploaded_bytes: g(&self.uploaded_bytes),
            uploaded_blobs: g(&self.uploaded_blobs),
            mounted_bytes: g(&self.mounted_bytes),
            mounted_blobs: g(&self.mounted_blobs),
            skipped_bytes: g(&self.skipped_bytes),
            skipped_blobs: g(&self.skipped_blobs),
            retries: g(&self.retries),
        }
    }
}

/// How a blob reached the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already there.
    Skipped,
    /// Mounted from another repository.
    Mounted,
    /// Bytes sent.
    Uploaded,
}

/// Where an upload's bytes come from. Each attempt re-opens the source.
#[derive(Clone, Debug)]
pub enum BlobSource {
    /// A local file.
    File(PathBuf),
    /// Small in-memory content (configs, manifests of artifacts).
    Bytes(Bytes),
    /// Another repository, maybe on another registry (mounted when on the same one, streamed
    /// otherwise).
    Remote(ImageRef),
}

#[derive(Debug)]
struct HostState {
    base: String,
    challenge: Challenge,
    tokens: Mutex<HashMap<String, String>>,
}

struct Inner {
    http: reqwest::Client,
    cfg: ClientConfig,
    creds: Credentials,
    hosts: Mutex<HashMap<String, Arc<OnceCell<Arc<HostState>>>>>,
    /// One entry per (target repository, digest) this client made present, so the same blob is
    /// never sent or mounted twice at once (distribution can lose one of two concurrent mounts of
    /// a blob into a repository) and a second request for it costs nothing.
    blobs: Mutex<HashMap<String, Arc<Mutex<Option<BlobOutcome>>>>>,
}

/// A registry client shared by all transfers of a run (cheap to clone). Clones share the
/// connections, tokens and counters; [`Client::with_own_stats`] gives a view with its own counters
/// (one per target when several are pushed at once).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.inner.creds.hosts().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Whether `host` (with optional port) is a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

type BodyFn<'a> = &'a (dyn Fn(&reqwest::Client, &str) -> RequestBuilder + Send + Sync);

fn path_of(url: &str) -> String {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let p = no_scheme.find('/').map_or("/", |i| &no_scheme[i..]);
    p.split('?').next().unwrap_or(p).to_string()
}

fn retry_after(resp: &Response, max: Duration) -> Option<Duration> {
    let v = resp
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        let now = chrono::Utc::now();
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(max))
}

fn transient_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn flatten_error(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}

/// Turns an error response into an [`Error`], reading the registry's `errors` list.
async fn error_from(resp: Response, host: &str, method: &Method, url: &str) -> Error {
    let status = resp.status();
    let www = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.bytes().await.unwrap_or_default();
    let detail = registry_error_detail(&body, status);
    match status.as_u16() {
        401 => Error::Auth {
            registry: host.to_string(),
            detail: format!("HTTP 401 for {method} {} ({detail})", path_of(url)),
        },
        403 => Error::Denied {
            registry: host.to_string(),
            repository: repo_from_path(&path_of(url)),
            action: if *method == Method::GET || *method == Method::HEAD {
                "pull".into()
            } else {
                "push".into()
            },
            detail: match www {
                Some(w) if w.contains("insufficient_scope") => {
                    format!("{detail} (token lacks the scope)")
                }
                _ => detail,
            },
        },
        _ => Error::Http {
            registry: host.to_string(),
            method: method.to_string(),
            path: path_of(url),
            status: status.as_u16(),
            detail,
        },
    }
}

fn repo_from_path(p: &str) -> String {
    let p = p.strip_prefix("/v2/").unwrap_or(p);
    for marker in ["/blobs/", "/manifests/", "/tags/", "/referrers/"] {
        if let Some(i) = p.find(marker) {
            return p[..i].to_string();
        }
    }
    p.to_string()
}

fn registry_error_detail(body: &[u8], status: StatusCode) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        /// Free-form: often the real reason ("unsupported manifest media type", the missing
        /// blob's digest).
        #[serde(default)]
        detail: serde_json::Value,
    }
    if let Ok(e) = serde_json::from_slice::<Errs>(body)
        && !e.errors.is_empty()
    {
        return e
            .errors
            .iter()
            .map(|e| {
                let detail = match &e.detail {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(d) => d.clone(),
                    other => other.to_string(),
                };
                let detail: String = detail.chars().take(300).collect();
                let mut line = format!("{} {}", e.code, e.message).trim().to_string();
                if !detail.is_empty() && !line.contains(&detail) {
                    line.push_str(&format!(" ({detail})"));
                }
                if e.code == "MANIFEST_INVALID" || status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    line.push_str(
                        "; the registry may not accept this manifest's media type (OCI vs Docker v2)",
                    );
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        text.chars().take(300).collect()
    }
}

/// Appends `key=value` to a URL that may already have a query.
fn add_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", urlencode(value))
}

fn urlencode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

impl Client {
    /// A client with `creds` and `cfg`.
    pub fn new(cfg: ClientConfig, creds: Credentials) -> Result<Self, Error> {
        let mut b = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(32);
        // Trust the platform's roots (read at the first HTTPS handshake) and `registry-ca`.
        b = b.tls_backend_preconfigured(crate::tls::client_config(&cfg.ca_pem)?);
        let http = b.build().map_err(|e| Error::Invalid {
            what: "HTTP client".into(),
            reason: flatten_error(&e),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                cfg,
                creds,
                hosts: Mutex::new(HashMap::new()),
                blobs: Mutex::new(HashMap::new()),
            }),
            stats: Arc::new(Stats::default()),
        })
    }

    /// The counters of this client (shared by its clones).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The same client (connections, tokens, blobs already made present) counting into fresh
    /// counters.
    pub fn with_own_stats(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            stats: Arc::new(Stats::default()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    fn plain_http_allowed(&self, host: &str) -> bool {
        is_loopback(host)
            || self
                .inner
                .cfg
                .insecure
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }

    /// One `GET /v2/` per registry: finds the scheme (HTTPS, or HTTP for loopback/insecure
    /// registries when HTTPS fails) and the auth challenge.
    async fn host(&self, host: &str) -> Result<Arc<HostState>, Error> {
        let cell = {
            let mut map = self.inner.hosts.lock().await;
            map.entry(host.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| self.ping(host)).await.cloned()
    }

    async fn ping(&self, host: &str) -> Result<Arc<HostState>, Error> {
        // Loopback registries are usually plain HTTP: try that first (a TLS-only server answers
        // 400 and we move on). Registries listed as insecure try HTTPS first, like Docker.
        let schemes: Vec<&str> = if is_loopback(host) {
            vec!["http", "https"]
        } else if self.plain_http_allowed(host) {
            vec!["https", "http"]
        } else {
            vec!["https"]
        };
        let mut last = String::new();
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            let url = format!("{base}/v2/");
            let mut attempt = 0;
            loop {
                match self.inner.http.get(&url).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        // A TLS server answering a plain-HTTP request (Go: 400 "Client sent an
                        // HTTP request to an HTTPS server"): not a registry on this scheme.
                        if scheme == "http"
                            && status == StatusCode::BAD_REQUEST
                            && !resp
                                .headers()
                                .contains_key("docker-distribution-api-version")
                        {
                            last = "plain HTTP refused (the server speaks TLS)".into();
                            break;
                        }
                        if transient_status(status) && attempt < self.inner.cfg.retries {
                            let d = retry_after(&resp, self.inner.cfg.max_retry_after)
                                .unwrap_or_else(|| self.backoff(attempt));
                            attempt += 1;
                            self.stats.retries.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("{host}: GET /v2/ returned {status}; retrying in {d:?}");
                            tokio::time::sleep(d).await;
                            continue;
                        }
                        let challenge = if status == StatusCode::UNAUTHORIZED {
                            resp.headers()
                                .get(header::WWW_AUTHENTICATE)
                                .and_then(|v| v.to_str().ok())
                                .and_then(parse_challenge)
                                .map(|(c, _)| c)
                                .unwrap_or(Challenge::Basic)
                        } else {
                            Challenge::None
                        };
                        tracing::debug!("{host}: {scheme}, auth {challenge:?}");
                        return Ok(Arc::new(HostState {
                            base,
                            challenge,
                            tokens: Mutex::new(HashMap::new()),
                        }));
                    }
                    Err(e) => {
                        last = flatten_error(&e);
                        // A TLS handshake against a plain-HTTP server fails at once: try HTTP
                        // (only for loopback or insecure registries). Connection refusals are
                        // retried like any transient failure.
                        if e.is_connect() && !last.contains("refused") {
                            break;
                        }
                        if attempt < self.inner.cfg.retries && (e.is_connect() || e.is_timeout()) {
                            attempt += 1;
                            self.stats.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(self.backoff(attempt)).await;
                            continue;
                        }
                        break;
                    }
                }
            }
        }
        Err(Error::Transport {
            registry: host.to_string(),
            path: "/v2/".into(),
            message: if last.contains("invalid peer certificate") {
                format!(
                    "{last} (a registry with a private CA: give its certificate in `registry-ca`)"
                )
            } else if self.plain_http_allowed(host) {
                last
            } else {
                format!(
                    "{last} (plain HTTP is only used for loopback registries and those listed in `insecure-registries`)"
                )
            },
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.cfg.backoff.as_millis() as u64;
        let ms = base.saturating_mul(1u64 << attempt.min(6));
        // Small deterministic jitter from the clock's nanoseconds, so parallel transfers spread.
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        ) % (base / 2 + 1);
        Duration::from_millis(ms + jitter)
    }

    /// The `Authorization` header for `scopes` on `host`, fetching a token when needed.
    async fn auth_header(
        &self,
        host: &str,
        state: &HostState,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<String>, Error> {
        match &state.challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self.inner.creds.get(host).map(basic_header)),
            Challenge::Bearer { realm, service } => {
                let mut key: Vec<&str> = scopes.iter().map(String::as_str).collect();
                key.sort_unstable();
                key.dedup();
                let key = key.join(" ");
                let mut tokens = state.tokens.lock().await;
                if !fresh && let Some(t) = tokens.get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let login = self.inner.creds.get(host);
                let req = match login {
                    // An identity (refresh) token from `docker login` / a credential helper is
                    // exchanged with the OAuth2 POST form, not sent as Basic auth.
                    // See: https://distribution.github.io/distribution/spec/auth/oauth/
                    Some(l) if l.username == IDENTITY_TOKEN_USER => {
                        let mut form: Vec<(&str, &str)> = vec![
                            ("grant_type", "refresh_token"),
                            ("client_id", "gantry"),
                            ("refresh_token", l.password.expose()),
                        ];
                        if let Some(s) = service {
                            form.push(("service", s));
                        }
                        let joined = scopes.join(" ");
                        if !scopes.is_empty() {
                            form.push(("scope", &joined));
                        }
                        let body = form
                            .iter()
                            .map(|(k, v)| format!("{k}={}", urlencode(v)))
                            .collect::<Vec<_>>()
                            .join("&");
                        self.inner
                            .http
                            .post(realm)
                            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body)
                    }
                    _ => {
                        let mut url = realm.clone();
                        if let Some(s) = service {
                            url = add_query(&url, "service", s);
                        }
                        for s in scopes {
                            url = add_query(&url, "scope", s);
                        }
                        let mut req = self.inner.http.get(&url);
                        if let Some(login) = login {
                            req = req.header(header::AUTHORIZATION, basic_header(login));
                        }
                        req
                    }
                };
                let resp = req.send().await.map_err(|e| Error::Transport {
                    registry: host.to_string(),
                    path: path_of(realm),
                    message: flatten_error(&e),
                })?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(Error::Auth {
                        registry: host.to_string(),
                        detail: format!(
                            "the token service answered HTTP {} ({})",
                            status.as_u16(),
                            registry_error_detail(&body, status)
                        ),
                    });
                }
                #[derive(serde::Deserialize)]
                struct Tok {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let t: Tok = resp.json().await.map_err(|e| Error::Auth {
                    registry: host.to_string(),
                    detail: format!("the token service sent no token: {e}"),
                })?;
                let Some(tok) = t.token.or(t.access_token).filter(|t| !t.is_empty()) else {
                    return Err(Error::Auth {
                        registry: host.to_string(),
                        detail: "the token service sent an empty token".into(),
                    });
                };
                tokens.insert(key, tok.clone());
                Ok(Some(format!("Bearer {tok}")))
            }
        }
    }

    /// Sends a request built by `build(http, base_url)` with auth, retrying transient failures
    /// when `retry` (the builder must then be replayable, i.e. not consume a stream).
    async fn send(
        &self,
        host: &str,
        scopes: &[String],
        retry: bool,
        build: BodyFn<'_>,
    ) -> Result<Response, Error> {
        let state = self.host(host).await?;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            let auth = self
                .auth_header(host, &state, scopes, refreshed && attempt == 0)
                .await?;
            let mut req = build(&self.inner.http, &state.base);
            if let Some(a) = &auth {
                let mut hv = HeaderValue::from_str(a).map_err(|_| Error::Auth {
                    registry: host.to_string(),
                    detail: "the credential contains characters not allowed in a header".into(),
                })?;
                hv.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, hv);
            }
            let (client, request) = req.build_split();
            let request = request.map_err(|e| Error::Invalid {
                what: "request".into(),
                reason: flatten_error(&e),
            })?;
            let method = request.method().clone();
            let url = request.url().to_string();
            match client.execute(request).await {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED
                        && !refreshed
                        && matches!(state.challenge, Challenge::Bearer { .. })
                    {
                        // The token may have expired: fetch a fresh one once.
                        refreshed = true;
                        attempt = 0;
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED && auth.is_none() {
                        return Err(Error::Auth {
                            registry: host.to_string(),
                            detail: "the registry requires credentials and none were given for it (set `username`/`password` or `registry-auth`)".into(),
                        });
                    }
                    if retry && transient_status(status) && attempt < self.inner.cfg.retries {
                        let d = retry_after(&resp, self.inner.cfg.max_retry_after)
                            .unwrap_or_else(|| self.backoff(attempt));
                        attempt += 1;
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "{host}: {method} {} returned {status}; retry {attempt}/{} in {d:?}",
                            path_of(&url),
                            self.inner.cfg.retries
                        );
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    let message = flatten_error(&e);
                    if retry && attempt < self.inner.cfg.retries {
                        let d = self.backoff(attempt);
                        attempt += 1;
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "{host}: {method} {}: {message}; retry {attempt}/{} in {d:?}",
                            path_of(&url),
                            self.inner.cfg.retries
                        );
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(Error::Transport {
                        registry: host.to_string(),
                        path: path_of(&url),
                        message,
                    });
                }
            }
        }
    }

    fn scopes(r: &ImageRef, push: bool) -> Vec<String> {
        vec![crate::auth::repo_scope(&r.repository, push)]
    }

    /// Checks that we can reach and authenticate to `r`'s registry for pull (or push).
    pub async fn check_access(&self, r: &ImageRef, push: bool) -> Result<(), Error> {
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/tags/list?n=1", r.repository);
        let resp = self
            .send(&host, &Self::scopes(r, push), true, &|h, b| {
                h.get(format!("{b}{path}"))
            })
            .await?;
        match resp.status().as_u16() {
            200 | 404 => Ok(()),
            _ => Err(error_from(resp, &host, &Method::GET, &path).await),
        }
    }

    /// Connects to `r`'s registry, learns its scheme and auth challenge (`GET /v2/`) and fetches
    /// the token that pulling (or pushing, with `push`) `r` needs, without touching the
    /// repository. Run it alongside other work (reading the source, building layers) so the
    /// first real request to a target does not wait for TLS, the ping and the token service.
    pub async fn warm_up(&self, r: &ImageRef, push: bool) -> Result<(), Error> {
        let host = r.api_host().to_string();
        let state = self.host(&host).await?;
        self.auth_header(&host, &state, &Self::scopes(r, push), false)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- manifests

    /// GETs a manifest's exact bytes. `reference` is a tag or digest. `None` when absent.
    pub async fn get_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
    ) -> Result<Option<RawManifest>, Error> {
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let resp = self
            .send(&host, &Self::scopes(r, false), true, &|h, b| {
                h.get(format!("{b}{path}"))
                    .header(header::ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(error_from(resp, &host, &Method::GET, &path).await);
        }
        if let Some(len) = resp.content_length()
            && len > MAX_MANIFEST_BYTES
        {
            return Err(Error::ManifestTooLarge {
                reference: format!("{}:{reference}", r.repo_name()),
                size: len,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let bytes = read_limited(resp, MAX_MANIFEST_BYTES, &host, &path).await?;
        let media_type = crate::manifest::sniff_media_type(&bytes)
            .or(ct)
            .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.into());
        let m = RawManifest::new(bytes, &media_type);
        if reference.starts_with("sha256:") && m.digest != reference {
            return Err(Error::DigestMismatch {
                what: format!("manifest {}", r.repo_name()),
                expected: reference.to_string(),
                actual: m.digest,
            });
        }
        Ok(Some(m))
    }

    /// HEADs a manifest: its descriptor when present.
    pub async fn head_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
    ) -> Result<Option<Descriptor>, Error> {
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let resp = self
            .send(&host, &Self::scopes(r, false), true, &|h, b| {
                h.head(format!("{b}{path}"))
                    .header(header::ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(error_from(resp, &host, &Method::HEAD, &path).await);
        }
        let h = resp.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(digest) = get("docker-content-digest") else {
            // Some registries omit it on HEAD; fall back to GET.
            return Ok(self
                .get_manifest(r, reference)
                .await?
                .map(|m| m.descriptor()));
        };
        Ok(Some(Descriptor::new(
            get("content-type").as_deref().unwrap_or_default(),
            &digest,
            resp.content_length().unwrap_or(0),
        )))
    }

    /// PUTs the exact bytes of `m` under `reference` (a digest or a tag). Returns whether the
    /// registry processed the `subject` (an `OCI-Subject` header), i.e. supports referrers.
    pub async fn put_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
        m: &RawManifest,
    ) -> Result<bool, Error> {
        if m.bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestTooLarge {
                reference: format!("{}:{reference}", r.repo_name()),
                size: m.bytes.len() as u64,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let body = m.bytes.clone();
        let ct = m.media_type.clone();
        let resp = self
            .send(&host, &Self::scopes(r, true), true, &|h, b| {
                h.put(format!("{b}{path}"))
                    .header(header::CONTENT_TYPE, ct.as_str())
                    .body(body.clone())
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Err(Error::ManifestTooLarge {
                reference: format!("{}:{reference}", r.repo_name()),
                size: m.bytes.len() as u64,
                limit: 0,
            });
        }
        if !status.is_success() {
            return Err(error_from(resp, &host, &Method::PUT, &path).await);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && d != m.digest
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest pushed to {}", r.repo_name()),
                expected: m.digest.clone(),
                actual: d.to_string(),
            });
        }
        Ok(resp.headers().contains_key("oci-subject"))
    }

    /// Lists every tag of a repository (following `Link` pages). Empty when the repository does
    /// not exist.
    pub async fn list_tags(&self, r: &ImageRef) -> Result<Vec<String>, Error> {
        let host = r.api_host().to_string();
        let mut next = Some(format!("/v2/{}/tags/list?n=1000", r.repository));
        let mut out = Vec::new();
        while let Some(path) = next.take() {
            let p = path.clone();
            let resp = self
                .send(&host, &Self::scopes(r, false), true, &|h, b| {
                    if p.starts_with("http") {
                        h.get(p.clone())
                    } else {
                        h.get(format!("{b}{p}"))
                    }
                })
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                break;
            }
            if !resp.status().is_success() {
                return Err(error_from(resp, &host, &Method::GET, &path).await);
            }
            next = link_next(resp.headers());
            #[derive(serde::Deserialize)]
            struct Tags {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let t: Tags = resp.json().await.map_err(|e| Error::Invalid {
                what: format!("tag list of {}", r.repo_name()),
                reason: e.to_string(),
            })?;
            out.extend(t.tags.unwrap_or_default());
        }
        Ok(out)
    }

    /// The referrers of `digest` via the OCI 1.1 API; `None` when the registry has no such API
    /// (404), in which case callers use the `sha256-<hex>` tag schema.
    pub async fn referrers(
        &self,
        r: &ImageRef,
        digest: &str,
    ) -> Result<Option<Vec<Descriptor>>, Error> {
        let host = r.api_host().to_string();
        let mut next = Some(format!("/v2/{}/referrers/{digest}", r.repository));
        let mut out = Vec::new();
        while let Some(path) = next.take() {
            let p = path.clone();
            let resp = self
                .send(&host, &Self::scopes(r, false), true, &|h, b| {
                    let u = if p.starts_with("http") {
                        p.clone()
                    } else {
                        format!("{b}{p}")
                    };
                    h.get(u).header(header::ACCEPT, crate::manifest::OCI_INDEX)
                })
                .await?;
            let status = resp.status();
            let is_index = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.contains("image.index"));
            if status == StatusCode::NOT_FOUND || (status.is_success() && !is_index) {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(error_from(resp, &host, &Method::GET, &path).await);
            }
            next = link_next(resp.headers());
            let bytes = read_limited(resp, MAX_MANIFEST_BYTES, &host, &path).await?;
            let view: crate::manifest::ManifestView =
                serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
                    what: format!("referrers of {digest}"),
                    reason: e.to_string(),
                })?;
            out.extend(view.manifests);
        }
        Ok(Some(out))
    }

    // ---------------------------------------------------------------- blobs

    /// Whether `digest` exists in `r`'s repository.
    pub async fn blob_exists(&self, r: &ImageRef, digest: &str, push: bool) -> Result<bool, Error> {
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/blobs/{digest}", r.repository);
        let resp = self
            .send(&host, &Self::scopes(r, push), true, &|h, b| {
                h.head(format!("{b}{path}"))
            })
            .await?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(error_from(resp, &host, &Method::HEAD, &path).await),
        }
    }

    /// GETs a small blob (a config) whole, verifying its digest.
    pub async fn get_blob_bytes(
        &self,
        r: &ImageRef,
        digest: &str,
        limit: u64,
    ) -> Result<Bytes, Error> {
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/blobs/{digest}", r.repository);
        let resp = self
            .send(&host, &Self::scopes(r, false), true, &|h, b| {
                h.get(format!("{b}{path}"))
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                what: "blob",
                reference: format!("{}@{digest}", r.repo_name()),
            });
        }
        if !resp.status().is_success() {
            return Err(error_from(resp, &host, &Method::GET, &path).await);
        }
        let bytes = read_limited(resp, limit, &host, &path).await?;
        let got = digest::sha256(&bytes);
        if got != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob from {}", r.repo_name()),
                expected: digest.into(),
                actual: got,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob. The stream yields an error at the end if the bytes do not hash to
    /// `digest` (so a truncated or corrupted download never commits upstream).
    pub async fn get_blob_stream(
        &self,
        r: &ImageRef,
        digest: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, Error> {
        let host = r.api_host().to_string();
        let path = format!("/v2/{}/blobs/{digest}", r.repository);
        let resp = self
            .send(&host, &Self::scopes(r, false), true, &|h, b| {
                h.get(format!("{b}{path}"))
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                what: "blob",
                reference: format!("{}@{digest}", r.repo_name()),
            });
        }
        if !resp.status().is_success() {
            return Err(error_from(resp, &host, &Method::GET, &path).await);
        }
        Ok(verified(
            resp.bytes_stream().map_err(std::io::Error::other),
            digest.to_string(),
        ))
    }

    /// Opens an upload session, optionally trying a cross-repository mount first.
    /// `Ok(None)` means the mount succeeded (201).
    async fn start_upload(
        &self,
        r: &ImageRef,
        mount: Option<(&str, &str)>,
    ) -> Result<Option<String>, Error> {
        let host = r.api_host().to_string();
        let mut path = format!("/v2/{}/blobs/uploads/", r.repository);
        let mut scopes = Self::scopes(r, true);
        if let Some((digest, from)) = mount {
            path = format!(
                "{path}?mount={}&from={}",
                urlencode(digest),
                urlencode(from)
            );
            scopes.push(crate::auth::repo_scope(from, false));
        }
        let resp = self
            .send(&host, &scopes, true, &|h, b| {
                h.post(format!("{b}{path}"))
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::CREATED && mount.is_some() {
            return Ok(None);
        }
        if status != StatusCode::ACCEPTED && status != StatusCode::CREATED {
            return Err(error_from(resp, &host, &Method::POST, &path).await);
        }
        let state = self.host(&host).await?;
        let loc = location(&resp, &state.base).ok_or_else(|| Error::Invalid {
            what: format!("upload session on {host}"),
            reason: "the registry sent no Location".into(),
        })?;
        Ok(Some(loc))
    }

    /// Cancels an upload session (best effort).
    async fn abort_upload(&self, r: &ImageRef, location: &str) {
        let host = r.api_host().to_string();
        let loc = location.to_string();
        let res = self
            .send(&host, &Self::scopes(r, true), false, &|h, _| {
                h.delete(loc.clone())
            })
            .await;
        if let Err(e) = res {
            tracing::debug!("{host}: cancelling upload session failed: {e}");
        }
    }

    /// Makes `desc` present in `target`: HEAD, then mount (when `source` is on the same
    /// registry), then upload (monolithic; chunked when refused), retrying transient failures
    /// with a fresh session each time and cancelling abandoned sessions.
    ///
    /// Concurrent calls for the same blob and target repository wait for the first; later calls
    /// return its outcome without a request (and without counting the blob again).
    pub async fn put_blob(
        &self,
        target: &ImageRef,
        desc: &Descriptor,
        source: &BlobSource,
    ) -> Result<BlobOutcome, Error> {
        let key = format!("{}/{}@{}", target.registry, target.repository, desc.digest);
        let slot = self
            .inner
            .blobs
            .lock()
            .await
            .entry(key)
            .or_default()
            .clone();
        let mut done = slot.lock().await;
        if let Some(outcome) = *done {
            return Ok(outcome);
        }
        let outcome = self.put_blob_once(target, desc, source).await?;
        *done = Some(outcome);
        Ok(outcome)
    }

    async fn put_blob_once(
        &self,
        target: &ImageRef,
        desc: &Descriptor,
        source: &BlobSource,
    ) -> Result<BlobOutcome, Error> {
        let stats = self.stats.clone();
        if let BlobSource::Remote(src) = source
            && src.same_repository(target)
        {
            stats.skipped_blobs.fetch_add(1, Ordering::Relaxed);
            stats.skipped_bytes.fetch_add(desc.size, Ordering::Relaxed);
            return Ok(BlobOutcome::Skipped);
        }
        let mount_from = match source {
            BlobSource::Remote(src) if src.same_registry(target) => Some(src.repository.clone()),
            _ => None,
        };
        // A mount needs no HEAD first: it answers 201 whether the blob was already in the
        // target or is linked now, so it costs one round trip either way. Without a mount
        // source, HEAD first so a blob the target has is never sent again.
        if mount_from.is_none() && self.blob_exists(target, &desc.digest, true).await? {
            stats.skipped_blobs.fetch_add(1, Ordering::Relaxed);
            stats.skipped_bytes.fetch_add(desc.size, Ordering::Relaxed);
            return Ok(BlobOutcome::Skipped);
        }
        let mut session = match &mount_from {
            Some(from) => match self.start_upload(target, Some((&desc.digest, from))).await {
                Ok(None) => {
                    stats.mounted_blobs.fetch_add(1, Ordering::Relaxed);
                    stats.mounted_bytes.fetch_add(desc.size, Ordering::Relaxed);
                    return Ok(BlobOutcome::Mounted);
                }
                // 202: not mounted, but a session is open; upload into it.
                Ok(Some(loc)) => Some(loc),
                Err(e) if e.is_auth() => return Err(e),
                Err(e) => {
                    tracing::debug!("mount of {} failed ({e}); uploading", desc.digest);
                    None
                }
            },
            None => None,
        };
        let mut attempt = 0u32;
        let mut chunked = self.inner.cfg.chunked_first;
        loop {
            let loc = match session.take() {
                Some(l) => l,
                None => self
                    .start_upload(target, None)
                    .await?
                    .ok_or_else(|| Error::Invalid {
                        what: "upload".into(),
                        reason: "the registry created a blob without content".into(),
                    })?,
            };
            let res = if chunked {
                self.upload_chunked(target, &loc, desc, source).await
            } else {
                self.upload_monolithic(target, &loc, desc, source).await
            };
            match res {
                Ok(()) => {
                    stats.uploaded_blobs.fetch_add(1, Ordering::Relaxed);
                    stats.uploaded_bytes.fetch_add(desc.size, Ordering::Relaxed);
                    return Ok(BlobOutcome::Uploaded);
                }
                Err(e) => {
                    // The answer may have been lost after the registry committed the blob (a
                    // proxy timing out, a reset): a HEAD tells, and saves sending it again.
                    if e.is_transient()
                        && matches!(self.blob_exists(target, &desc.digest, true).await, Ok(true))
                    {
                        tracing::info!(
                            "{}: {} arrived although its upload reported {e}",
                            target.registry,
                            desc.digest
                        );
                        stats.uploaded_blobs.fetch_add(1, Ordering::Relaxed);
                        stats.uploaded_bytes.fetch_add(desc.size, Ordering::Relaxed);
                        return Ok(BlobOutcome::Uploaded);
                    }
                    self.abort_upload(target, &loc).await;
                    if !chunked
                        && matches!(&e, Error::Http { status, .. } if matches!(status, 413 | 411 | 405))
                    {
                        tracing::info!(
                            "{}: monolithic upload refused ({e}); switching to chunks",
                            target.registry
                        );
                        chunked = true;
                        continue;
                    }
                    let transient = e.is_transient()
                        || matches!(&e, Error::Io { .. } | Error::DigestMismatch { .. });
                    if transient && attempt < self.inner.cfg.retries {
                        if !chunked && matches!(&e, Error::Transport { .. }) {
                            // The connection broke during one big PUT: a proxy that refuses the
                            // size answers 413 early and closes (the answer is often lost), or the
                            // link is flaky. Retry in chunks, which resume where the registry
                            // stopped.
                            chunked = true;
                        }
                        attempt += 1;
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        let d = self.backoff(attempt);
                        tracing::warn!(
                            "{}: upload of {} failed ({e}); retry {attempt}/{} in {d:?}",
                            target.registry,
                            desc.digest,
                            self.inner.cfg.retries
                        );
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn open_source(
        &self,
        desc: &Descriptor,
        source: &BlobSource,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>, Error> {
        Ok(match source {
            BlobSource::Bytes(b) => {
                futures::stream::once(futures::future::ready(Ok(b.clone()))).boxed()
            }
            BlobSource::File(p) => {
                let f = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| Error::io(p.display(), e))?;
                tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).boxed()
            }
            BlobSource::Remote(src) => self.get_blob_stream(src, &desc.digest).await?.boxed(),
        })
    }

    async fn upload_monolithic(
        &self,
        target: &ImageRef,
        loc: &str,
        desc: &Descriptor,
        source: &BlobSource,
    ) -> Result<(), Error> {
        let host = target.api_host().to_string();
        let url = add_query(loc, "digest", &desc.digest);
        let stream = self.open_source(desc, source).await?;
        let body = std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(stream)));
        let size = desc.size;
        let resp = self
            .send(&host, &Self::scopes(target, true), false, &|h, _| {
                let b = body
                    .lock()
                    .ok()
                    .and_then(|mut g| g.take())
                    .unwrap_or_else(|| reqwest::Body::from(Bytes::new()));
                h.put(url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .body(b)
            })
            .await?;
        if resp.status() == StatusCode::CREATED || resp.status().is_success() {
            Ok(())
        } else {
            Err(error_from(resp, &host, &Method::PUT, &url).await)
        }
    }

    async fn upload_chunked(
        &self,
        target: &ImageRef,
        loc: &str,
        desc: &Descriptor,
        source: &BlobSource,
    ) -> Result<(), Error> {
        let host = target.api_host().to_string();
        let state = self.host(&host).await?;
        let mut stream = self.open_source(desc, source).await?;
        let chunk = self.inner.cfg.chunk_size.max(64 * 1024);
        let mut loc = loc.to_string();
        let mut offset = 0u64;
        let mut buf = bytes::BytesMut::with_capacity(chunk);
        let mut done = false;
        while !done {
            while buf.len() < chunk {
                match stream.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => return Err(Error::io(format!("blob {}", desc.digest), e)),
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            let take = buf.len().min(chunk);
            let part = buf.split_to(take).freeze();
            if part.is_empty() {
                break;
            }
            (loc, offset) = self
                .patch_chunk(target, &state.base, loc, offset, part, desc)
                .await?;
            if done && buf.is_empty() {
                break;
            }
        }
        let url = add_query(&loc, "digest", &desc.digest);
        let resp = self
            .send(&host, &Self::scopes(target, true), false, &|h, _| {
                h.put(url.clone()).header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_from(resp, &host, &Method::PUT, &url).await)
        }
    }

    /// Sends one chunk (`part`, starting at byte `offset` of the blob) into the session at
    /// `loc`; returns the session's next location and offset. When a PATCH fails (an error
    /// status, a lost answer, 416 for a range the registry did not expect), asks the registry
    /// how much of the blob it holds and resumes from there when that is inside this chunk, so
    /// a hiccup costs at most one chunk, never the whole blob.
    async fn patch_chunk(
        &self,
        target: &ImageRef,
        base: &str,
        mut loc: String,
        mut offset: u64,
        mut part: Bytes,
        desc: &Descriptor,
    ) -> Result<(String, u64), Error> {
        let host = target.api_host().to_string();
        let scopes = Self::scopes(target, true);
        let mut resumes = 0u32;
        loop {
            let end = offset + part.len() as u64 - 1;
            let (l, p) = (loc.clone(), part.clone());
            let err = match self
                .send(&host, &scopes, false, &|h, _| {
                    h.patch(l.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, format!("{offset}-{end}"))
                        .header(header::CONTENT_LENGTH, p.len())
                        .body(p.clone())
                })
                .await
            {
                Ok(resp) if resp.status().is_success() => {
                    return Ok((location(&resp, base).unwrap_or(loc), end + 1));
                }
                Ok(resp) => error_from(resp, &host, &Method::PATCH, &loc).await,
                Err(e) => e,
            };
            let resumable = err.is_transient() || matches!(&err, Error::Http { status: 416, .. });
            if !resumable || resumes >= self.inner.cfg.retries.max(1) {
                return Err(err);
            }
            resumes += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.backoff(resumes - 1)).await;
            let (held, next) = match self.upload_progress(target, base, &loc).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!("{host}: upload status unavailable ({e})");
                    return Err(err);
                }
            };
            if held < offset || held > end + 1 {
                // The registry lost bytes before this chunk (or claims more than was sent):
                // nothing to resume from; the caller starts a fresh session.
                return Err(err);
            }
            tracing::warn!(
                "{}: chunk {offset}-{end} of {} failed ({err}); the registry holds {held} bytes, resuming there",
                target.registry,
                desc.digest
            );
            loc = next;
            part = part.slice((held - offset) as usize..);
            offset = held;
            if part.is_empty() {
                return Ok((loc, offset));
            }
        }
    }

    /// How many bytes an upload session holds, and its location: `GET <location>` answers
    /// 204 with `Range: 0-<last byte>` (distribution sends `0-0` for an empty session too; it
    /// is read as empty, and a 416 on the resend sorts out the one-byte case).
    async fn upload_progress(
        &self,
        target: &ImageRef,
        base: &str,
        loc: &str,
    ) -> Result<(u64, String), Error> {
        let host = target.api_host().to_string();
        let l = loc.to_string();
        let resp = self
            .send(&host, &Self::scopes(target, true), true, &|h, _| {
                h.get(l.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(error_from(resp, &host, &Method::GET, loc).await);
        }
        let held = resp
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_upload_range)
            .ok_or_else(|| Error::Invalid {
                what: format!("upload status from {host}"),
                reason: "no usable Range header".into(),
            })?;
        let next = location(&resp, base).unwrap_or_else(|| loc.to_string());
        Ok((held, next))
    }
}

/// Bytes held according to an upload session's `Range: 0-<last>` (or `bytes=0-<last>`).
fn parse_upload_range(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, last) = v.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let last: u64 = last.trim().parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

/// The response's `Location`, made absolute against `base`.
fn location(resp: &Response, base: &str) -> Option<String> {
    let loc = resp.headers().get(header::LOCATION)?.to_str().ok()?;
    Some(absolute(base, loc))
}

fn absolute(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_string()
    } else if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        format!("{base}/{loc}")
    }
}

fn link_next(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::LINK)?.to_str().ok()?;
    for part in v.split(',') {
        if part.contains("rel=\"next\"") || part.contains("rel=next") {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            return Some(part[start..end].to_string());
        }
    }
    None
}

async fn read_limited(resp: Response, limit: u64, host: &str, path: &str) -> Result<Bytes, Error> {
    let mut out = bytes::BytesMut::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| Error::Transport {
            registry: host.to_string(),
            path: path.to_string(),
            message: flatten_error(&e),
        })?;
        out.extend_from_slice(&chunk);
        if out.len() as u64 > limit {
            return Err(Error::ManifestTooLarge {
                reference: path.to_string(),
                size: out.len() as u64,
                limit,
            });
        }
    }
    Ok(out.freeze())
}

/// Wraps a stream so that it fails at the end when the content does not hash to `digest`.
pub fn verified<S>(
    s: S,
    digest: String,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    futures::stream::unfold(
        (Box::pin(s), Some(digest::Hasher::new()), digest),
        |(mut s, hasher, want)| async move {
            let mut hasher = hasher?;
            match s.next().await {
                Some(Ok(b)) => {
                    hasher.update(&b);
                    Some((Ok(b), (s, Some(hasher), want)))
                }
                Some(Err(e)) => Some((Err(e), (s, None, want))),
                None => {
                    let got = hasher.finish();
                    if got == want {
                        None
                    } else {
                        Some((
                            Err(std::io::Error::other(format!(
                                "content does not match its digest: expected {want}, got {got}"
                            ))),
                            (s, None, want),
                        ))
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for h in [
            "127.0.0.1:5000",
            "localhost:1",
            "localhost",
            "[::1]:5000",
            "127.3.4.5",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["ghcr.io", "10.0.0.1:5000", "registry.local:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_upload_range("0-65535"), Some(65536));
        assert_eq!(parse_upload_range("bytes=0-9"), Some(10));
        assert_eq!(parse_upload_range("0-0"), Some(0));
        assert_eq!(parse_upload_range("5-9"), None);
        assert_eq!(parse_upload_range("junk"), None);
    }

    #[test]
    fn locations_and_links() {
        assert_eq!(
            absolute("http://a:1", "/v2/x/blobs/uploads/u?_state=s"),
            "http://a:1/v2/x/blobs/uploads/u?_state=s"
        );
        assert_eq!(
            add_query("http://a/u?_state=s", "digest", "sha256:ab"),
            "http://a/u?_state=s&digest=sha256%3Aab"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static("</v2/x/tags/list?n=2&last=b>; rel=\"next\""),
        );
        assert_eq!(link_next(&h).as_deref(), Some("/v2/x/tags/list?n=2&last=b"));
        assert_eq!(repo_from_path("/v2/a/b/blobs/uploads/"), "a/b");
    }

    #[tokio::test]
    async fn verified_stream_rejects_wrong_content() {
        let s = futures::stream::iter(vec![Ok(Bytes::from_static(b"abc"))]);
        let good: Vec<_> = verified(s, digest::sha256(b"abc")).collect().await;
        assert!(good.iter().all(Result::is_ok));
        let s = futures::stream::iter(vec![Ok(Bytes::from_static(b"abd"))]);
        let bad: Vec<_> = verified(s, digest::sha256(b"abc")).collect().await;
        assert!(bad.last().is_some_and(Result::is_err));
    }
}
