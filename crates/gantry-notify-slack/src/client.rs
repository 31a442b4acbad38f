//! The HTTP side: Slack Web API calls and incoming-webhook posts, with the retry policy Slack's
//! semantics allow.
//!
//! Policy (reference/runtime-and-slack.md B7.4):
//! - HTTP 429 or `ok:false, error:ratelimited`: wait `Retry-After` (capped) and retry, bounded;
//! - a connection that failed before the request was sent: retry with backoff;
//! - HTTP 5xx, a timeout, or `service_unavailable`/`internal_error`/`fatal_error`: retry only
//!   idempotent calls (`chat.update`, reads). `chat.postMessage` and webhooks are not idempotent,
//!   so they are **never** re-sent after the request may have reached Slack: that could post twice;
//! - any other `ok:false`: no retry; the code is explained (`slack_errors`).
//!
//! Tokens and webhook URLs never appear in errors or logs (`reqwest::Error::without_url`, the
//! token is only in the `Authorization` header). This module must not build messages.
//!
//! See: <https://docs.slack.dev/apis/web-api/rate-limits>

use std::time::{Duration, Instant};

use gantry_runtime::{Cancel, Secret};
use reqwest::StatusCode;
use serde_json::Value;

use crate::slack_errors::{explain, explain_webhook};

/// How long an in-flight request may still take after the job is cancelled.
const CANCEL_GRACE: Duration = Duration::from_millis(500);

/// Retry limits.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Retries after rate limits.
    pub rate_limit_retries: u32,
    /// Longest `Retry-After` we wait; a longer one ends the attempt.
    pub max_wait: Duration,
    /// Retries after connection failures and (idempotent calls) 5xx/timeouts.
    pub transient_retries: u32,
    /// First backoff (doubles each time).
    pub backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rate_limit_retries: 5,
            max_wait: Duration::from_secs(30),
            transient_retries: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Slack answered `ok:false`.
    #[error("{method}: {explanation}")]
    Slack {
        /// Method.
        method: String,
        /// Error code.
        code: String,
        /// What it means.
        explanation: String,
    },
    /// Rate limits outlasted the retries.
    #[error(
        "{method}: rate-limited by Slack {attempts} times (last Retry-After: {retry_after}s); gave up"
    )]
    RateLimited {
        /// Method.
        method: String,
        /// How many 429s.
        attempts: u32,
        /// Last Retry-After.
        retry_after: u64,
    },
    /// The request may or may not have been applied; not re-sent.
    #[error(
        "{method}: {reason}; not re-sent, because the message may already be posted and a retry could post it twice"
    )]
    Ambiguous {
        /// Method.
        method: String,
        /// What happened.
        reason: String,
    },
    /// Slack could not be reached.
    #[error("{method}: cannot reach Slack at {host}: {reason}")]
    Transport {
        /// Method.
        method: String,
        /// Host (never the full URL: a webhook URL is a secret).
        host: String,
        /// Cause.
        reason: String,
    },
    /// An unexpected HTTP answer.
    #[error("{method}: unexpected answer from Slack: HTTP {status}: {body}")]
    Http {
        /// Method.
        method: String,
        /// Status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// An incoming webhook refused the message.
    #[error("{0}")]
    Webhook(String),
    /// Cancelled while waiting.
    #[error("{method}: cancelled while waiting to retry")]
    Cancelled {
        /// Method.
        method: String,
    },
}

impl DeliveryError {
    /// The Slack error code, if Slack answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Slack { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether we know nothing was posted (so a fallback cannot double-post).
    pub fn nothing_posted(&self) -> bool {
        !matches!(self, Self::Ambiguous { .. } | Self::Cancelled { .. })
    }
}

/// A Slack Web API and webhook client.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    api: String,
    token: Option<Secret>,
    policy: Policy,
    cancel: Cancel,
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| "?".into())
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
}

fn body_snippet(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    t.replace('\n', " ")
}

enum Step {
    Done(Result<Value, DeliveryError>),
    Wait(Duration, &'static str),
}

impl Client {
    /// A client for the Web API at `api` (ending in `/`). `tls` is false when every URL this run
    /// uses is plain `http://` (a loopback proxy, tests): the system root store is then not
    /// loaded, which is most of the client's start-up cost.
    pub fn new(
        api: &str,
        token: Option<Secret>,
        policy: Policy,
        cancel: Cancel,
        tls: bool,
    ) -> Result<Self, DeliveryError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(policy.timeout)
            .user_agent(concat!("gantry-notify-slack/", env!("CARGO_PKG_VERSION")));
        if !tls {
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|e| DeliveryError::Transport {
            method: "client".into(),
            host: host_of(api),
            reason: e.without_url().to_string(),
        })?;
        Ok(Self {
            http,
            api: api.to_string(),
            token,
            policy,
            cancel,
        })
    }

    async fn sleep(&self, d: Duration, method: &str) -> Result<(), DeliveryError> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.cancel.cancelled() => Err(DeliveryError::Cancelled { method: method.to_string() }),
        }
    }

    /// Calls a Web API method with a JSON body (`POST`). `idempotent` allows retries after 5xx
    /// and timeouts. `channel` is only used to explain errors.
    pub async fn call(
        &self,
        method: &str,
        body: &Value,
        idempotent: bool,
        channel: Option<&str>,
    ) -> Result<Value, DeliveryError> {
        let url = format!("{}{method}", self.api);
        self.run(method, idempotent, channel, || {
            let mut rb = self.http.post(&url).json(body);
            if let Some(t) = &self.token {
                rb = rb.bearer_auth(t.expose());
            }
            rb
        })
        .await
    }

    /// Calls a read method with query parameters (`GET`); always idempotent.
    pub async fn get(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, DeliveryError> {
        let base = format!("{}{method}", self.api);
        let url = url::Url::parse_with_params(&base, query)
            .map(String::from)
            .unwrap_or(base);
        self.run(method, true, None, || {
            let mut rb = self.http.get(&url);
            if let Some(t) = &self.token {
                rb = rb.bearer_auth(t.expose());
            }
            rb
        })
        .await
    }

    /// Sends a request, but gives up [`CANCEL_GRACE`] after a cancellation: a request that is
    /// answering normally finishes (the message is the critical step), one that hangs does not keep
    /// the job past the runner's grace period (SIGINT, +7.5 s SIGTERM, +2.5 s SIGKILL).
    async fn send_or_cancel(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, DeliveryError> {
        let cancelled = async {
            self.cancel.cancelled().await;
            tokio::time::sleep(CANCEL_GRACE).await;
        };
        tokio::select! {
            r = req.send() => Ok(r),
            () = cancelled => Err(DeliveryError::Cancelled { method: method.to_string() }),
        }
    }

    async fn run(
        &self,
        method: &str,
        idempotent: bool,
        channel: Option<&str>,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, DeliveryError> {
        let mut limited = 0u32;
        let mut transient = 0u32;
        loop {
            let started = Instant::now();
            let step = match self.send_or_cancel(build(), method).await? {
                Err(e) => self.on_send_error(method, e, idempotent, &mut transient),
                Ok(resp) => {
                    self.on_response(
                        method,
                        resp,
                        idempotent,
                        channel,
                        &mut limited,
                        &mut transient,
                    )
                    .await
                }
            };
            match step {
                Step::Done(r) => {
                    tracing::debug!("{method}: {:?}", started.elapsed());
                    return r;
                }
                Step::Wait(d, why) => {
                    tracing::info!(
                        "{method}: {why}; retrying in {}",
                        gantry_runtime::duration::human(d)
                    );
                    self.sleep(d, method).await?;
                }
            }
        }
    }

    fn on_send_error(
        &self,
        method: &str,
        e: reqwest::Error,
        idempotent: bool,
        transient: &mut u32,
    ) -> Step {
        let e = e.without_url();
        let reason = error_chain(&e);
        // A refused or failed connection never carried the request: safe to retry anything.
        let before_send = e.is_connect();
        if (before_send || idempotent) && *transient < self.policy.transient_retries {
            *transient += 1;
            let d = self.policy.backoff * 2u32.pow(*transient - 1);
            let why = if before_send {
                "connection failed before sending"
            } else {
                "request failed"
            };
            tracing::warn!("{method}: {why}: {reason}");
            return Step::Wait(d, "transient failure");
        }
        if before_send || idempotent {
            Step::Done(Err(DeliveryError::Transport {
                method: method.into(),
                host: host_of(&self.api),
                reason,
            }))
        } else {
            Step::Done(Err(DeliveryError::Ambiguous {
                method: method.into(),
                reason: format!("the request failed after it was sent ({reason})"),
            }))
        }
    }

    async fn on_response(
        &self,
        method: &str,
        resp: reqwest::Response,
        idempotent: bool,
        channel: Option<&str>,
        limited: &mut u32,
        transient: &mut u32,
    ) -> Step {
        let status = resp.status();
        let wait = retry_after(&resp);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return self.rate_limited(method, wait, limited);
        }
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                let reason = error_chain(&e.without_url());
                return if idempotent && *transient < self.policy.transient_retries {
                    *transient += 1;
                    Step::Wait(
                        self.policy.backoff * 2u32.pow(*transient - 1),
                        "response interrupted",
                    )
                } else if idempotent {
                    Step::Done(Err(DeliveryError::Transport {
                        method: method.into(),
                        host: host_of(&self.api),
                        reason,
                    }))
                } else {
                    Step::Done(Err(DeliveryError::Ambiguous {
                        method: method.into(),
                        reason: format!("the response was cut off ({reason})"),
                    }))
                };
            }
        };
        if status.is_server_error() {
            if idempotent && *transient < self.policy.transient_retries {
                *transient += 1;
                return Step::Wait(
                    self.policy.backoff * 2u32.pow(*transient - 1),
                    "Slack answered a server error",
                );
            }
            return Step::Done(Err(if idempotent {
                DeliveryError::Http {
                    method: method.into(),
                    status: status.as_u16(),
                    body: body_snippet(&text),
                }
            } else {
                DeliveryError::Ambiguous {
                    method: method.into(),
                    reason: format!("Slack answered HTTP {}", status.as_u16()),
                }
            }));
        }
        let json: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => {
                return Step::Done(Err(DeliveryError::Http {
                    method: method.into(),
                    status: status.as_u16(),
                    body: body_snippet(&text),
                }));
            }
        };
        if json.get("ok").and_then(Value::as_bool) == Some(true) {
            if let Some(w) = json.get("warning").and_then(Value::as_str) {
                tracing::warn!("{method}: Slack warns: {w}");
            }
            return Step::Done(Ok(json));
        }
        let code = json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_string();
        match code.as_str() {
            "ratelimited" | "rate_limited" => self.rate_limited(method, wait, limited),
            "service_unavailable" | "internal_error" | "fatal_error" | "request_timeout"
                if idempotent =>
            {
                if *transient < self.policy.transient_retries {
                    *transient += 1;
                    Step::Wait(
                        self.policy.backoff * 2u32.pow(*transient - 1),
                        "Slack reported a temporary error",
                    )
                } else {
                    Step::Done(Err(DeliveryError::Slack {
                        method: method.into(),
                        explanation: explain(&code, &json, channel),
                        code,
                    }))
                }
            }
            "internal_error" | "fatal_error" | "request_timeout" => {
                Step::Done(Err(DeliveryError::Ambiguous {
                    method: method.into(),
                    reason: format!("Slack answered `{code}`"),
                }))
            }
            _ => Step::Done(Err(DeliveryError::Slack {
                method: method.into(),
                explanation: explain(&code, &json, channel),
                code,
            })),
        }
    }

    fn rate_limited(&self, method: &str, wait: u64, limited: &mut u32) -> Step {
        *limited += 1;
        if *limited > self.policy.rate_limit_retries
            || Duration::from_secs(wait) > self.policy.max_wait
        {
            return Step::Done(Err(DeliveryError::RateLimited {
                method: method.into(),
                attempts: *limited,
                retry_after: wait,
            }));
        }
        Step::Wait(
            Duration::from_secs(wait),
            "rate-limited by Slack (Retry-After)",
        )
    }

    /// Posts to an incoming webhook. Success is HTTP 200 with the body `ok`.
    pub async fn webhook(&self, url: &Secret, body: &Value) -> Result<(), DeliveryError> {
        let method = "incoming webhook";
        let host = host_of(url.expose());
        let mut limited = 0u32;
        let mut transient = 0u32;
        loop {
            let res = self
                .send_or_cancel(self.http.post(url.expose()).json(body), method)
                .await?;
            let resp = match res {
                Err(e) => {
                    let e = e.without_url();
                    let reason = error_chain(&e);
                    if e.is_connect() && transient < self.policy.transient_retries {
                        transient += 1;
                        let d = self.policy.backoff * 2u32.pow(transient - 1);
                        tracing::warn!(
                            "{method}: connection failed before sending: {reason}; retrying in {}",
                            gantry_runtime::duration::human(d)
                        );
                        self.sleep(d, method).await?;
                        continue;
                    }
                    return Err(if e.is_connect() {
                        DeliveryError::Transport {
                            method: method.into(),
                            host,
                            reason,
                        }
                    } else {
                        DeliveryError::Ambiguous {
                            method: method.into(),
                            reason: format!("the request failed after it was sent ({reason})"),
                        }
                    });
                }
                Ok(r) => r,
            };
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&resp);
                limited += 1;
                if limited > self.policy.rate_limit_retries
                    || Duration::from_secs(wait) > self.policy.max_wait
                {
                    return Err(DeliveryError::RateLimited {
                        method: method.into(),
                        attempts: limited,
                        retry_after: wait,
                    });
                }
                tracing::info!(
                    "{method}: rate-limited by Slack (Retry-After); retrying in {wait}s"
                );
                self.sleep(Duration::from_secs(wait), method).await?;
                continue;
            }
            let text = resp.text().await.unwrap_or_default();
            if status.is_success() {
                return Ok(());
            }
            if status.is_server_error() {
                return Err(DeliveryError::Ambiguous {
                    method: method.into(),
                    reason: format!("the webhook answered HTTP {}", status.as_u16()),
                });
            }
            return Err(DeliveryError::Webhook(explain_webhook(
                status.as_u16(),
                &text,
            )));
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}
