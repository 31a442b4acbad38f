//! Inputs → [`Config`]: every `notify-slack` input read once, validated, and turned into typed
//! values. Every error names the input and the value (never a secret's value).
//!
//! This module reads no files except `payload-file`, and sends nothing.

use gantry_runtime::{InputError, Secret, Step};
use serde::Serialize;
use serde_json::Value;

use crate::payload::{self, PayloadError};

/// The deploy status shown in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The deploy started.
    Started,
    /// It worked.
    Success,
    /// It failed.
    Failure,
    /// It was cancelled.
    Cancelled,
}

impl Status {
    /// Parses `started | success | failure | cancelled` (case-insensitive), plus the spellings
    /// `${{ job.status }}` and `${{ steps.x.outcome }}` produce and common synonyms.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "started" | "start" | "starting" | "in_progress" | "in-progress" | "pending"
            | "queued" => Some(Self::Started),
            "success" | "succeeded" | "successful" | "ok" => Some(Self::Success),
            "failure" | "failed" | "fail" | "error" => Some(Self::Failure),
            "cancelled" | "canceled" | "cancel" | "skipped" => Some(Self::Cancelled),
            _ => None,
        }
    }

    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
        }
    }

    /// Attachment bar colour.
    pub fn color(self) -> &'static str {
        match self {
            Self::Started => "#1f6feb",
            Self::Success => "#2eb886",
            Self::Failure => "#d73a49",
            Self::Cancelled => "#8b949e",
        }
    }

    /// Status emoji (Unicode, so no custom emoji is needed).
    pub fn emoji(self) -> &'static str {
        match self {
            Self::Started => "🚀",
            Self::Success => "✅",
            Self::Failure => "❌",
            Self::Cancelled => "⚪",
        }
    }

    /// Whether the deploy is over.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Started)
    }
}

/// Someone to mention on failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Mention {
    /// A user id (`U…`, `W…`): `<@U…>`.
    User(String),
    /// A user group id (`S…`): `<!subteam^S…>`.
    Group(String),
    /// `here`, `channel` or `everyone`: `<!here>`.
    Special(String),
    /// A user-group handle (`@oncall`), linked by Slack with `link_names`.
    Handle(String),
}

impl Mention {
    /// Parses one entry of `mention-on-failure`.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        let t = t
            .strip_prefix("<@")
            .and_then(|x| x.strip_suffix('>'))
            .unwrap_or(t);
        let bare = t.trim_start_matches(['@', '!']);
        if bare.is_empty() {
            return None;
        }
        if let Some(id) = bare.strip_prefix("subteam^") {
            return is_id(id).then(|| Self::Group(id.to_string()));
        }
        match bare.to_ascii_lowercase().as_str() {
            "here" | "channel" | "everyone" => {
                return Some(Self::Special(bare.to_ascii_lowercase()));
            }
            _ => {}
        }
        if is_id(bare) && (bare.starts_with('U') || bare.starts_with('W')) {
            return Some(Self::User(bare.to_string()));
        }
        if is_id(bare) && bare.starts_with('S') {
            return Some(Self::Group(bare.to_string()));
        }
        // Slack handles: lowercase letters, digits, '.', '-', '_'.
        if bare.len() <= 80
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Some(Self::Handle(bare.to_string()));
        }
        None
    }

    /// The `mrkdwn` form. A handle becomes a sentinel (`\u{E000}oncall\u{E001}`) that
    /// `execute.rs` replaces with `<!subteam^ID>` once `usergroups.list` resolved it (or with
    /// plain `@oncall` when it cannot): user text can never contain the sentinel
    /// ([`crate::mrkdwn::escape`] drops those characters), so nothing but our mention can ping.
    pub fn markup(&self) -> String {
        match self {
            Self::User(id) => format!("<@{id}>"),
            Self::Group(id) => format!("<!subteam^{id}>"),
            Self::Special(w) => format!("<!{w}>"),
            Self::Handle(h) => format!("{HANDLE_OPEN}{h}{HANDLE_CLOSE}"),
        }
    }

    /// How the mention reads in logs and the summary.
    pub fn display(&self) -> String {
        match self {
            Self::Handle(h) => format!("@{h}"),
            other => other.markup(),
        }
    }
}

/// Opens a user-group handle to resolve (private-use character).
pub const HANDLE_OPEN: char = '\u{E000}';
/// Closes a user-group handle to resolve.
pub const HANDLE_CLOSE: char = '\u{E001}';

/// Whether `s` looks like a Slack object id (upper-case letters and digits, 7+ chars).
pub fn is_id(s: &str) -> bool {
    s.len() >= 7
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether a channel value is already a conversation id (`C…`, `G…`, `D…`), as `chat.update`
/// requires.
pub fn is_channel_id(s: &str) -> bool {
    is_id(s) && matches!(s.chars().next(), Some('C' | 'G' | 'D' | 'Z'))
}

/// What to send.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Content {
    /// The built-in deploy message.
    Default,
    /// A raw payload (parsed, templated).
    Raw {
        /// The payload.
        payload: Value,
    },
}

/// GitHub Deployments settings.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentConfig {
    /// Environment name.
    pub environment: String,
    /// Environment URL.
    pub environment_url: Option<String>,
    /// A known deployment id (`deployment-id` input).
    pub id: Option<u64>,
    /// Token.
    pub token: Secret,
}

/// The resolved configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Bot token (Web API mode).
    pub token: Option<Secret>,
    /// Channel (name or id).
    pub channel: Option<String>,
    /// Web API base URL, ending in `/`.
    pub api: String,
    /// Incoming webhook URL.
    pub webhook: Option<Secret>,
    /// Status.
    pub status: Status,
    /// Update this message.
    pub ts: Option<String>,
    /// Reply in this thread.
    pub thread_ts: Option<String>,
    /// Broadcast thread replies to the channel (`None`: only on failure).
    pub reply_broadcast: Option<bool>,
    /// What to send.
    pub content: Content,
    /// Environment name shown (and used for deployments).
    pub environment: Option<String>,
    /// Environment URL.
    pub environment_url: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Image digest.
    pub digest: Option<String>,
    /// Release id.
    pub release_id: Option<String>,
    /// Job URL.
    pub job_url: Option<String>,
    /// Custom title line.
    pub title: Option<String>,
    /// Mentions on failure.
    pub mentions: Vec<Mention>,
    /// Delivery failures fail the step.
    pub fail_on_error: bool,
    /// GitHub Deployments.
    pub deployment: Option<DeploymentConfig>,
}

/// Errors resolving the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A plain input error.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The payload does not parse.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

fn url_input(name: &str, value: &str, secret: bool) -> Result<String, InputError> {
    let shown = if secret { "***" } else { value };
    let u = url::Url::parse(value)
        .map_err(|e| InputError::invalid(name, shown, format!("not a URL: {e}")))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(InputError::invalid(
            name,
            shown,
            "must be an https:// (or http://) URL",
        ));
    }
    Ok(value.to_string())
}

fn ts_input(name: &str, value: Option<String>) -> Result<Option<String>, InputError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let ok = v.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.chars().all(|c| c.is_ascii_digit())
            });
            if ok {
                Ok(Some(v))
            } else {
                Err(InputError::invalid(
                    name,
                    &v,
                    "not a Slack message timestamp; expected seconds.micros such as 1712345678.123456 (the `ts` output of an earlier notify-slack step)",
                ))
            }
        }
    }
}

impl Config {
    /// Reads and validates every input.
    pub fn resolve(step: &Step) -> Result<Self, ConfigError> {
        let inputs = &step.inputs;
        let status_raw = inputs.string("status").unwrap_or_else(|| "started".into());
        let status = Status::parse(&status_raw).ok_or_else(|| {
            InputError::invalid(
                "status",
                &status_raw,
                "expected one of: started, success, failure, cancelled (`${{ job.status }}` works)",
            )
        })?;
        let token = inputs.token("token")?;
        let webhook = inputs.secret("webhook-url");
        if let Some(t) = &token
            && (t.expose().chars().any(char::is_whitespace) || t.expose().starts_with("Bearer "))
        {
            return Err(InputError::invalid(
                "token",
                "***",
                "a Slack token has no spaces; give the bare token (xoxb-…), not a header",
            )
            .into());
        }
        if let Some(w) = &webhook {
            url_input("webhook-url", w.expose(), true)?;
        }
        let api_raw = inputs
            .string("api")
            .unwrap_or_else(|| "https://slack.com/api/".into());
        let mut api = url_input("api", &api_raw, false)?;
        if !api.ends_with('/') {
            api.push('/');
        }
        let channel = inputs
            .string("channel")
            .map(|c| c.trim_start_matches('#').to_string());
        if let Some(c) = &channel
            && (c.is_empty()
                || c.len() > 80
                || c.chars()
                    .any(|ch| ch.is_whitespace() || matches!(ch, ',' | '<' | '>' | '|')))
        {
            return Err(InputError::invalid(
                "channel",
                c,
                "expected a channel id (C0123456) or a channel name (deploys)",
            )
            .into());
        }
        let ts = ts_input("ts", inputs.string("ts"))?;
        let thread_ts = ts_input("thread-ts", inputs.string("thread-ts"))?;
        let reply_broadcast = inputs.opt_bool("reply-broadcast")?;
        let fail_on_error = inputs.bool("fail-on-error")?;
        let github_deployment = inputs.bool("github-deployment")?;

        let payload_given = inputs.is_given("payload") || inputs.is_given("payload-file");
        let content = if payload_given {
            let file = inputs.string("payload-file");
            let text = inputs.text_or_file("payload")?.unwrap_or_default();
            let source = match &file {
                Some(f) => payload::Source::File(f.clone()),
                None => payload::Source::Inline,
            };
            let value = payload::parse(&text, &source)?;
            Content::Raw { payload: value }
        } else {
            Content::Default
        };

        if token.is_none() && webhook.is_none() {
            return Err(InputError::Required {
                name: "token` (with `channel`) or `webhook-url".into(),
            }
            .into());
        }
        let payload_channel = match &content {
            Content::Raw { payload } => payload
                .get("channel")
                .and_then(Value::as_str)
                .map(str::to_string),
            Content::Default => None,
        };
        // slackapi recipes put `ts` (chat.update), `thread_ts` and `reply_broadcast` in the
        // payload; honour them when the inputs are not given.
        let from_payload = |key: &str| match &content {
            Content::Raw { payload } => payload.get(key).and_then(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            Content::Default => None,
        };
        let ts = match ts {
            Some(t) => Some(t),
            None => ts_input("payload", from_payload("ts"))?,
        };
        let thread_ts = match thread_ts {
            Some(t) => Some(t),
            None => ts_input("payload", from_payload("thread_ts"))?,
        };
        let reply_broadcast = reply_broadcast.or(match &content {
            Content::Raw { payload } => payload.get("reply_broadcast").and_then(Value::as_bool),
            Content::Default => None,
        });
        if token.is_some() && channel.is_none() && payload_channel.is_none() {
            return Err(InputError::Required {
                name: "channel".into(),
            }
            .into());
        }
        if ts.is_some() && token.is_none() {
            tracing::warn!(
                "`ts` is given but there is no `token`: an incoming webhook cannot update a message; a new message will be posted"
            );
        }

        let mut mentions = Vec::new();
        for m in inputs.list_comma("mention-on-failure") {
            mentions.push(Mention::parse(&m).ok_or_else(|| {
                InputError::invalid("mention-on-failure", &m, "expected a user id (U0123456), a user-group id (S0123456), a handle (@oncall) or here/channel")
            })?);
        }

        let environment = inputs.string("environment");
        let environment_url = match inputs.string("environment-url") {
            Some(u) => Some(url_input("environment-url", &u, false)?),
            None => None,
        };
        let job_url = match inputs.string("job-url") {
            Some(u) => Some(url_input("job-url", &u, false)?),
            None => None,
        };
        let deployment = if github_deployment {
            let env_name = environment.clone().ok_or_else(|| InputError::Conflict {
                first: "github-deployment".into(),
                second: "environment".into(),
                reason: "a GitHub deployment needs an `environment` name".into(),
            })?;
            // On a laptop there is no `${{ github.token }}` default: `GITHUB_TOKEN`/`GH_TOKEN` do.
            let from_env = || {
                ["GITHUB_TOKEN", "GH_TOKEN"]
                    .iter()
                    .find_map(|k| step.env.get(k))
                    .map(|t| {
                        step.console.add_mask(t);
                        Secret::new(t)
                    })
            };
            let token = inputs
                .token("github-token")?
                .or_else(from_env)
                .ok_or_else(|| InputError::Required {
                    name: "github-token".into(),
                })?;
            let id = inputs.number::<u64>("deployment-id")?;
            Some(DeploymentConfig {
                environment: env_name,
                environment_url: environment_url.clone(),
                id,
                token,
            })
        } else {
            None
        };

        Ok(Self {
            token,
            channel: channel.or(payload_channel),
            api,
            webhook,
            status,
            ts,
            thread_ts,
            reply_broadcast,
            content,
            environment,
            environment_url,
            image: inputs.string("image"),
            digest: inputs.string("digest"),
            release_id: inputs.string("release-id"),
            job_url,
            title: inputs.string("title"),
            mentions,
            fail_on_error,
            deployment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spellings() {
        assert_eq!(Status::parse("Success"), Some(Status::Success));
        assert_eq!(Status::parse("canceled"), Some(Status::Cancelled));
        assert_eq!(Status::parse("failed"), Some(Status::Failure));
        assert_eq!(Status::parse("done-ish"), None);
    }

    #[test]
    fn mentions() {
        assert_eq!(
            Mention::parse("@oncall"),
            Some(Mention::Handle("oncall".into()))
        );
        assert_eq!(
            Mention::parse("U0123ABCD").unwrap().markup(),
            "<@U0123ABCD>"
        );
        assert_eq!(
            Mention::parse("<@U0123ABCD>").unwrap().markup(),
            "<@U0123ABCD>"
        );
        assert_eq!(
            Mention::parse("S0123ABCD").unwrap().markup(),
            "<!subteam^S0123ABCD>"
        );
        assert_eq!(
            Mention::parse("!subteam^S0123ABCD").unwrap().markup(),
            "<!subteam^S0123ABCD>"
        );
        assert_eq!(Mention::parse("@here").unwrap().markup(), "<!here>");
        assert_eq!(Mention::parse("a b"), None);
        assert_eq!(Mention::parse("<!channel|x>"), None);
    }

    #[test]
    fn channel_ids() {
        assert!(is_channel_id("C0123456"));
        assert!(is_channel_id("G01ABCDEF"));
        assert!(!is_channel_id("deploys"));
        assert!(!is_channel_id("U0123456"));
    }
}
