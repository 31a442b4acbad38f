//! A fake Slack on a free loopback port: the Web API methods notify-slack calls
//! (`chat.postMessage`, `chat.update`, `conversations.list`) and an incoming-webhook path,
//! validating requests the way Slack does, storing messages, recording every request, and
//! answering scripted faults (429 with `Retry-After`, `ok:false` errors, 5xx, a post that
//! succeeds but answers 5xx, a slow answer).
//!
//! Validation follows docs.slack.dev: a bearer token with the right scope, a known channel the
//! bot is in, Block Kit limits (50 blocks, header 150, section 3000, 10 fields of 2000, context 10,
//! actions 25, button text 75, unique `block_id`s), `chat.update` needing a channel **id** and a
//! message the bot posted, 4,000 characters of `text` on update. It must never contact a real
//! Slack; it serves only 127.0.0.1 and stops when dropped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};

/// The bot token the fake accepts (scopes `chat:write`, `channels:read`, `usergroups:read`).
pub const BOT_TOKEN: &str = "xoxb-1111-2222-gantryFAKEbotTOKENsecret";
/// The fake bot's user id.
pub const BOT_USER: &str = "U0GANTRYBOT";
/// User groups `usergroups.list` returns: `(id, handle)`.
pub const USERGROUPS: &[(&str, &str)] =
    &[("S0ONCALL01", "oncall"), ("S0PLATFORM", "platform-team")];
/// The secret part of the webhook path.
pub const WEBHOOK_SECRET: &str = "T0000FAKE/B0000FAKE/gantryFAKEwebhookSECRET";
/// The channel the webhook posts to.
pub const WEBHOOK_CHANNEL: &str = "C0DEPLOYS";

/// A scripted answer, consumed by the next request to its method (`"webhook"` for the webhook).
#[derive(Clone, Debug)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: secs` (and `ok:false, error:ratelimited`).
    RateLimit(u64),
    /// HTTP 200 `{"ok":false,"error":code}`.
    Error(&'static str),
    /// An HTTP status with a plain body; nothing is stored.
    Status(u16),
    /// The request is processed (a message stored) but the answer is this HTTP status.
    ApplyThenStatus(u16),
    /// Wait, then process normally.
    Delay(Duration),
}

/// A channel.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Whether the bot is a member.
    pub member: bool,
    /// Archived.
    pub archived: bool,
}

/// A stored message.
#[derive(Clone, Debug)]
pub struct Message {
    /// Channel id.
    pub channel: String,
    /// Timestamp id.
    pub ts: String,
    /// Thread parent.
    pub thread_ts: Option<String>,
    /// `reply_broadcast` as sent.
    pub reply_broadcast: bool,
    /// Author user id.
    pub user: String,
    /// Current text.
    pub text: String,
    /// Current blocks.
    pub blocks: Value,
    /// Current attachments.
    pub attachments: Value,
    /// How many times it was edited.
    pub edits: u32,
    /// Posted through the webhook.
    pub via_webhook: bool,
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `chat.postMessage`, `chat.update`, `conversations.list`, `webhook`, …
    pub method: String,
    /// The `Authorization` header.
    pub auth: Option<String>,
    /// Raw body.
    pub body: String,
    /// Query string.
    pub query: String,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Inner {
    tokens: BTreeMap<String, (String, Vec<String>)>,
    channels: Vec<Channel>,
    messages: Vec<Message>,
    requests: Vec<Recorded>,
    faults: BTreeMap<String, VecDeque<Fault>>,
    counter: u64,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The running fake.
pub struct FakeSlack {
    port: u16,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeSlack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSlack")
            .field("port", &self.port)
            .finish()
    }
}

impl FakeSlack {
    /// Starts the fake on a free loopback port with the default token and channels:
    /// `C0DEPLOYS` `deploys` (member), `C0PRIVATE` `private-ops` (not a member), `C0ARCHIVED`
    /// `old-deploys` (archived), and 150 filler channels listed before `deploys` so name lookups
    /// must follow cursors.
    pub fn start() -> Self {
        let mut inner = Inner::default();
        inner.tokens.insert(
            BOT_TOKEN.into(),
            (
                BOT_USER.into(),
                vec![
                    "chat:write".into(),
                    "channels:read".into(),
                    "usergroups:read".into(),
                ],
            ),
        );
        for i in 0..150 {
            inner.channels.push(Channel {
                id: format!("C0FILL{i:04}"),
                name: format!("filler-{i}"),
                member: false,
                archived: false,
            });
        }
        inner.channels.push(Channel {
            id: "C0DEPLOYS".into(),
            name: "deploys".into(),
            member: true,
            archived: false,
        });
        inner.channels.push(Channel {
            id: "C0PRIVATE".into(),
            name: "private-ops".into(),
            member: false,
            archived: false,
        });
        inner.channels.push(Channel {
            id: "C0ARCHIVED".into(),
            name: "old-deploys".into(),
            member: true,
            archived: true,
        });
        let state: Shared = Arc::new(Mutex::new(inner));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new()
                    .route("/api/{method}", any(api))
                    .route("/services/{a}/{b}/{c}", post(webhook))
                    .with_state(st);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Self {
            port,
            state,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// The Web API base URL (`http://127.0.0.1:<port>/api/`), for the `api` input.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/", self.port)
    }

    /// The incoming webhook URL.
    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/services/{WEBHOOK_SECRET}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Adds a token with its bot user and scopes.
    pub fn add_token(&self, token: &str, user: &str, scopes: &[&str]) {
        lock(&self.state).tokens.insert(
            token.into(),
            (user.into(), scopes.iter().map(|s| s.to_string()).collect()),
        );
    }

    /// Queues a scripted answer for `method` (`chat.postMessage`, `chat.update`,
    /// `conversations.list` or `webhook`).
    pub fn fault(&self, method: &str, f: Fault) {
        lock(&self.state)
            .faults
            .entry(method.into())
            .or_default()
            .push_back(f);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// Requests to one method.
    pub fn requests_to(&self, method: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    /// Stored messages.
    pub fn messages(&self) -> Vec<Message> {
        lock(&self.state).messages.clone()
    }

    /// A message by ts.
    pub fn message(&self, ts: &str) -> Option<Message> {
        self.messages().into_iter().find(|m| m.ts == ts)
    }

    /// Stores a message written by someone else (for `cant_update_message`); returns its ts.
    pub fn seed_foreign_message(&self, channel: &str) -> String {
        let mut g = lock(&self.state);
        let ts = next_ts(&mut g);
        g.messages.push(Message {
            channel: channel.into(),
            ts: ts.clone(),
            thread_ts: None,
            reply_broadcast: false,
            user: "U0SOMEONE1".into(),
            text: "a human wrote this".into(),
            blocks: Value::Null,
            attachments: Value::Null,
            edits: 0,
            via_webhook: false,
        });
        ts
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn next_ts(g: &mut Inner) -> String {
    g.counter += 1;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}.{:06}", g.counter)
}

fn ok_json(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

fn slack_err(code: &str) -> Response {
    ok_json(json!({"ok": false, "error": code}))
}

fn fault_response(f: &Fault) -> Option<Response> {
    match f {
        Fault::RateLimit(secs) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("retry-after", secs.to_string()),
                    ("content-type", "application/json".to_string()),
                ],
                json!({"ok": false, "error": "ratelimited"}).to_string(),
            )
                .into_response(),
        ),
        Fault::Error(code) if *code == "missing_scope" => Some(ok_json(
            json!({"ok": false, "error": "missing_scope", "needed": "chat:write", "provided": "channels:read"}),
        )),
        Fault::Error(code) => Some(slack_err(code)),
        Fault::Status(s) => Some(
            (
                StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_GATEWAY),
                "upstream trouble",
            )
                .into_response(),
        ),
        Fault::ApplyThenStatus(_) | Fault::Delay(_) => None,
    }
}

async fn api(
    State(st): State<Shared>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let fault = {
        let mut g = lock(&st);
        g.requests.push(Recorded {
            method: method.clone(),
            auth: auth.clone(),
            body: body_text.clone(),
            query: query.clone().unwrap_or_default(),
            at: Instant::now(),
        });
        g.faults.get_mut(&method).and_then(VecDeque::pop_front)
    };
    if let Some(f) = &fault {
        if let Some(r) = fault_response(f) {
            return r;
        }
        if let Fault::Delay(d) = f {
            tokio::time::sleep(*d).await;
        }
    }
    let mut g = lock(&st);
    // Auth: a bearer token we know.
    let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) else {
        return slack_err("not_authed");
    };
    let Some((user, scopes)) = g.tokens.get(token).cloned() else {
        return slack_err("invalid_auth");
    };
    let need = match method.as_str() {
        "chat.postMessage" | "chat.update" => "chat:write",
        "conversations.list" => "channels:read",
        "usergroups.list" => "usergroups:read",
        _ => return slack_err("unknown_method"),
    };
    if !scopes.iter().any(|s| s == need) {
        return ok_json(
            json!({"ok": false, "error": "missing_scope", "needed": need, "provided": scopes.join(",")}),
        );
    }
    let resp = match method.as_str() {
        "conversations.list" => list(&g, query.as_deref().unwrap_or("")),
        "usergroups.list" => ok_json(
            json!({"ok": true, "usergroups": USERGROUPS.iter().map(|(id, handle)| json!({"id": id, "handle": handle, "name": handle})).collect::<Vec<_>>()}),
        ),
        _ => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ct.starts_with("application/json") {
                return slack_err("invalid_form_data");
            }
            let Ok(v) = serde_json::from_str::<Value>(&body_text) else {
                return slack_err("invalid_json");
            };
            if !v.is_object() {
                return slack_err("json_not_object");
            }
            if method == "chat.postMessage" {
                post_message(&mut g, &user, &v)
            } else {
                update(&mut g, &user, &v)
            }
        }
    };
    match fault {
        Some(Fault::ApplyThenStatus(s)) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
            "upstream trouble",
        )
            .into_response(),
        _ => resp,
    }
}

fn list(g: &Inner, query: &str) -> Response {
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let start: usize = q
        .get("cursor")
        .and_then(|c| c.strip_prefix("dXNlcj").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let exclude = q.get("exclude_archived").map(String::as_str) == Some("true");
    let all: Vec<&Channel> = g
        .channels
        .iter()
        .filter(|c| !(exclude && c.archived))
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| json!({"id": c.id, "name": c.name, "is_channel": true, "is_archived": c.archived, "is_member": c.member}))
        .collect();
    let next = if start + limit < all.len() {
        format!("dXNlcj{}", start + limit)
    } else {
        String::new()
    };
    ok_json(json!({"ok": true, "channels": page, "response_metadata": {"next_cursor": next}}))
}

fn find_channel<'a>(g: &'a Inner, c: &str) -> Option<&'a Channel> {
    let name = c.trim_start_matches('#');
    g.channels.iter().find(|ch| ch.id == c || ch.name == name)
}

/// Validates Block Kit blocks like Slack; `Err((code, detail))`.
pub fn validate_blocks(blocks: &Value, path: &str) -> Result<(), (String, String)> {
    let bad = |d: String| Err(("invalid_blocks".to_string(), d));
    let Some(arr) = blocks.as_array() else {
        return Err((
            "invalid_blocks_format".into(),
            format!("{path} must be an array"),
        ));
    };
    if arr.len() > 50 {
        return bad(format!(
            "[ERROR] no more than 50 items allowed [json-pointer:{path}]"
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    let text_len = |v: &Value| {
        v.get("text")
            .and_then(Value::as_str)
            .map(|t| t.chars().count())
    };
    let text_obj =
        |v: &Value, p: &str, max: usize, plain_only: bool| -> Result<(), (String, String)> {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
            if !(kind == "plain_text" || (!plain_only && kind == "mrkdwn")) {
                return Err((
                    "invalid_blocks".into(),
                    format!("[ERROR] must be a valid text object [json-pointer:{p}]"),
                ));
            }
            match text_len(v) {
                Some(0) | None => Err((
                    "invalid_blocks".into(),
                    format!("[ERROR] must be more than 0 characters [json-pointer:{p}/text]"),
                )),
                Some(n) if n > max => Err((
                    "invalid_blocks".into(),
                    format!(
                        "[ERROR] must be less than {} characters [json-pointer:{p}/text]",
                        max + 1
                    ),
                )),
                _ => Ok(()),
            }
        };
    for (i, b) in arr.iter().enumerate() {
        let p = format!("{path}/{i}");
        if let Some(id) = b.get("block_id").and_then(Value::as_str) {
            if id.chars().count() > 255 {
                return bad(format!(
                    "[ERROR] block_id must be less than 256 characters [json-pointer:{p}/block_id]"
                ));
            }
            if !ids.insert(id.to_string()) {
                return bad(format!(
                    "[ERROR] duplicate block_id `{id}` [json-pointer:{p}/block_id]"
                ));
            }
        }
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "header" => text_obj(
                b.get("text").unwrap_or(&Value::Null),
                &format!("{p}/text"),
                150,
                true,
            )?,
            "section" => {
                let fields = b.get("fields").and_then(Value::as_array);
                if b.get("text").is_none() && fields.is_none() {
                    return bad(format!(
                        "[ERROR] must provide text or fields [json-pointer:{p}]"
                    ));
                }
                if let Some(t) = b.get("text") {
                    text_obj(t, &format!("{p}/text"), 3000, false)?;
                }
                if let Some(f) = fields {
                    if f.len() > 10 {
                        return bad(format!(
                            "[ERROR] no more than 10 items allowed [json-pointer:{p}/fields]"
                        ));
                    }
                    for (j, x) in f.iter().enumerate() {
                        text_obj(x, &format!("{p}/fields/{j}"), 2000, false)?;
                    }
                }
            }
            "context" => {
                let els = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if els.is_empty() || els.len() > 10 {
                    return bad(format!(
                        "[ERROR] must have 1 to 10 elements [json-pointer:{p}/elements]"
                    ));
                }
                for (j, e) in els.iter().enumerate() {
                    if e.get("type").and_then(Value::as_str) != Some("image") {
                        text_obj(e, &format!("{p}/elements/{j}"), 3000, false)?;
                    }
                }
            }
            "actions" => {
                let els = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if els.is_empty() || els.len() > 25 {
                    return bad(format!(
                        "[ERROR] must have 1 to 25 elements [json-pointer:{p}/elements]"
                    ));
                }
                for (j, e) in els.iter().enumerate() {
                    if e.get("type").and_then(Value::as_str) == Some("button") {
                        text_obj(
                            e.get("text").unwrap_or(&Value::Null),
                            &format!("{p}/elements/{j}/text"),
                            75,
                            true,
                        )?;
                        if e.get("url")
                            .and_then(Value::as_str)
                            .is_some_and(|u| u.chars().count() > 3000)
                        {
                            return bad(format!(
                                "[ERROR] url must be less than 3001 characters [json-pointer:{p}/elements/{j}/url]"
                            ));
                        }
                    }
                }
            }
            "divider" | "image" | "rich_text" | "file" | "video" | "input" | "markdown" => {}
            other => {
                return bad(format!(
                    "[ERROR] unknown block type `{other}` [json-pointer:{p}/type]"
                ));
            }
        }
    }
    Ok(())
}

/// Validates a message body; `Err` is Slack's `ok:false` answer.
fn validate_content(v: &Value, update: bool) -> Result<(), Value> {
    let err = |code: &str| json!({"ok": false, "error": code});
    let text = v.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = v.get("blocks");
    let atts = v.get("attachments");
    let empty = |x: Option<&Value>| {
        x.is_none_or(|x| x.as_array().is_some_and(Vec::is_empty) || x.is_null())
    };
    if text.trim().is_empty() && empty(blocks) && empty(atts) {
        return Err(err("no_text"));
    }
    if update && text.chars().count() > 4000 {
        return Err(err("msg_too_long"));
    }
    let invalid = |(code, detail): (String, String)| json!({"ok": false, "error": code, "response_metadata": {"messages": [detail]}});
    if let Some(b) = blocks {
        validate_blocks(b, "/blocks").map_err(invalid)?;
    }
    if let Some(a) = atts {
        let Some(arr) = a.as_array() else {
            return Err(err("invalid_attachments"));
        };
        if arr.len() > 100 {
            return Err(err("too_many_attachments"));
        }
        for (i, at) in arr.iter().enumerate() {
            if let Some(b) = at.get("blocks") {
                validate_blocks(b, &format!("/attachments/{i}/blocks")).map_err(invalid)?;
            }
        }
    }
    Ok(())
}

fn message_json(m: &Message) -> Value {
    let mut v = json!({"type": "message", "user": m.user, "bot_id": "B0GANTRY", "text": m.text, "ts": m.ts, "blocks": m.blocks, "attachments": m.attachments});
    if let Some(t) = &m.thread_ts {
        v["thread_ts"] = json!(t);
    }
    v
}

fn post_message(g: &mut Inner, user: &str, v: &Value) -> Response {
    let Some(ch) = v.get("channel").and_then(Value::as_str) else {
        return slack_err("channel_not_found");
    };
    let Some(channel) = find_channel(g, ch).cloned() else {
        return slack_err("channel_not_found");
    };
    if channel.archived {
        return slack_err("is_archived");
    }
    if !channel.member {
        return slack_err("not_in_channel");
    }
    if let Err(e) = validate_content(v, false) {
        return ok_json(e);
    }
    let thread_ts = v
        .get("thread_ts")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(t) = &thread_ts
        && !g
            .messages
            .iter()
            .any(|m| &m.ts == t && m.channel == channel.id)
    {
        return slack_err("thread_not_found");
    }
    let ts = next_ts(g);
    let m = Message {
        channel: channel.id.clone(),
        ts: ts.clone(),
        thread_ts,
        reply_broadcast: v
            .get("reply_broadcast")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        user: user.to_string(),
        text: v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        blocks: v.get("blocks").cloned().unwrap_or(Value::Null),
        attachments: v.get("attachments").cloned().unwrap_or(Value::Null),
        edits: 0,
        via_webhook: false,
    };
    let msg = message_json(&m);
    g.messages.push(m);
    ok_json(json!({"ok": true, "channel": channel.id, "ts": ts, "message": msg}))
}

fn update(g: &mut Inner, user: &str, v: &Value) -> Response {
    let ch = v.get("channel").and_then(Value::as_str).unwrap_or("");
    // chat.update needs the id; a name is not found.
    if !g.channels.iter().any(|c| c.id == ch) {
        return slack_err("channel_not_found");
    }
    let ts = v.get("ts").and_then(Value::as_str).unwrap_or("");
    if let Err(e) = validate_content(v, true) {
        return ok_json(e);
    }
    let Some(m) = g
        .messages
        .iter_mut()
        .find(|m| m.ts == ts && m.channel == ch)
    else {
        return slack_err("message_not_found");
    };
    if m.user != user {
        return slack_err("cant_update_message");
    }
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        m.text = t.to_string();
        // Slack: text without blocks removes the old blocks.
        m.blocks = Value::Null;
    }
    if let Some(b) = v.get("blocks") {
        m.blocks = b.clone();
    }
    if let Some(a) = v.get("attachments") {
        m.attachments = a.clone();
    }
    m.edits += 1;
    let msg = message_json(m);
    ok_json(json!({"ok": true, "channel": ch, "ts": ts, "text": m.text, "message": msg}))
}

async fn webhook(
    State(st): State<Shared>,
    Path((a, b, c)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let fault = {
        let mut g = lock(&st);
        g.requests.push(Recorded {
            method: "webhook".into(),
            auth: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body_text.clone(),
            query: String::new(),
            at: Instant::now(),
        });
        g.faults.get_mut("webhook").and_then(VecDeque::pop_front)
    };
    let plain = |s: u16, t: &str| {
        (
            StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
            t.to_string(),
        )
            .into_response()
    };
    match &fault {
        Some(Fault::RateLimit(secs)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                "rate_limited",
            )
                .into_response();
        }
        Some(Fault::Error(code)) => return plain(400, code),
        Some(Fault::Status(s)) => return plain(*s, "upstream trouble"),
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    if format!("{a}/{b}/{c}") != WEBHOOK_SECRET {
        return plain(404, "no_service");
    }
    let Ok(v) = serde_json::from_str::<Value>(&body_text) else {
        return plain(400, "invalid_payload");
    };
    if !v.is_object() {
        return plain(400, "invalid_payload");
    }
    if let Err(e) = validate_content(&v, false) {
        return plain(
            400,
            e.get("error")
                .and_then(Value::as_str)
                .unwrap_or("invalid_payload"),
        );
    }
    let mut g = lock(&st);
    let ts = next_ts(&mut g);
    g.messages.push(Message {
        channel: WEBHOOK_CHANNEL.into(),
        ts,
        thread_ts: v
            .get("thread_ts")
            .and_then(Value::as_str)
            .map(str::to_string),
        reply_broadcast: false,
        user: "U0WEBHOOK1".into(),
        text: v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        blocks: v.get("blocks").cloned().unwrap_or(Value::Null),
        attachments: v.get("attachments").cloned().unwrap_or(Value::Null),
        edits: 0,
        via_webhook: true,
    });
    drop(g);
    match fault {
        Some(Fault::ApplyThenStatus(s)) => plain(s, "upstream trouble"),
        _ => plain(200, "ok"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_validation_matches_slack_limits() {
        assert!(
            validate_blocks(
                &json!([{"type":"header","text":{"type":"plain_text","text":"x".repeat(150)}}]),
                "/blocks"
            )
            .is_ok()
        );
        assert!(
            validate_blocks(
                &json!([{"type":"header","text":{"type":"plain_text","text":"x".repeat(151)}}]),
                "/blocks"
            )
            .is_err()
        );
        assert!(
            validate_blocks(
                &json!([{"type":"header","text":{"type":"mrkdwn","text":"x"}}]),
                "/blocks"
            )
            .is_err()
        );
        let many: Vec<Value> = (0..51).map(|_| json!({"type":"divider"})).collect();
        assert!(validate_blocks(&json!(many), "/blocks").is_err());
        assert!(
            validate_blocks(
                &json!([{"type":"divider","block_id":"a"},{"type":"divider","block_id":"a"}]),
                "/blocks"
            )
            .is_err()
        );
        assert!(validate_blocks(&json!([{"type":"section","fields": (0..11).map(|_| json!({"type":"mrkdwn","text":"x"})).collect::<Vec<_>>()}]), "/blocks").is_err());
        assert!(validate_blocks(&json!([{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"b".repeat(76)},"url":"https://x"}]}]), "/blocks").is_err());
    }
}
