//! [`Plan`]: the Slack calls and GitHub deployment changes one run makes, as plain data.
//!
//! Built from the [`Config`] and the [`DeployInfo`]; `--dry-run` prints it, tests assert it, and
//! `execute.rs` carries it out. Decisions made here: post vs update vs webhook, the thread reply
//! that pings people when an edited message fails (edits do not notify), reply broadcast on
//! failure, the webhook fallback, templating and Block Kit limits for raw payloads.
//! This module must not do I/O.

use std::collections::BTreeMap;

use gantry_github::deployments::{State, is_production};
use gantry_runtime::Step;
use serde::Serialize;
use serde_json::{Value, json};

use crate::blocks::enforce_limits;
use crate::config::{Config, Content, Status};
use crate::message::{DeployInfo, human_duration, render, render_reply};
use crate::payload::{TemplateError, Vars, template};

/// The first Slack call.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "method")]
pub enum Call {
    /// `chat.postMessage`.
    #[serde(rename = "chat.postMessage")]
    Post {
        /// The request body (channel, thread, message).
        body: Value,
    },
    /// `chat.update`.
    #[serde(rename = "chat.update")]
    Update {
        /// Channel as given (resolved to an id first when it is a name).
        channel: String,
        /// Message to update.
        ts: String,
        /// The request body without `channel` (filled in once resolved).
        body: Value,
    },
    /// An incoming webhook post.
    #[serde(rename = "incoming-webhook")]
    Webhook {
        /// The request body.
        body: Value,
    },
}

/// A thread reply after the first call.
#[derive(Clone, Debug, Serialize)]
pub struct Reply {
    /// Thread parent (`None`: the message the first call posted or updated).
    pub thread_ts: Option<String>,
    /// `reply_broadcast`.
    pub broadcast: bool,
    /// Message body (without channel and thread).
    pub body: Value,
    /// Why this reply is sent.
    pub reason: String,
}

/// GitHub deployment changes.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentPlan {
    /// Environment.
    pub environment: String,
    /// Environment URL.
    pub environment_url: Option<String>,
    /// Status to set.
    pub state: State,
    /// A known deployment id.
    pub id: Option<u64>,
    /// Ref (SHA) to deploy.
    pub sha: String,
    /// The run id (to find this run's deployment in a later step).
    pub run_id: String,
    /// Log URL.
    pub log_url: Option<String>,
    /// Status description.
    pub description: String,
    /// Production environment.
    pub production: bool,
    /// Mark the superseded deployment inactive (on success).
    pub mark_superseded: bool,
}

/// Everything one run does.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// `web-api` or `webhook`.
    pub mode: &'static str,
    /// The first call.
    pub call: Call,
    /// A thread reply afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// The webhook body to use if the Web API fails before anything was posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_fallback: Option<Value>,
    /// GitHub deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentPlan>,
    /// The message as text (step summary).
    pub text_form: String,
    /// What was cut to fit Slack's limits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limit_notes: Vec<String>,
    /// Things the user should know (e.g. a webhook cannot update).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Errors building the plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A payload placeholder is unknown.
    #[error("input `payload`: {0}")]
    Template(#[from] TemplateError),
    /// Deployments need the runner context.
    #[error("input `github-deployment`: {0}")]
    Context(String),
}

/// Placeholder values for raw payloads.
pub fn vars(step: &Step, info: &DeployInfo, cfg: &Config) -> Vars {
    let g = &step.github;
    let mut v = BTreeMap::new();
    let mut put = |k: &str, val: &str| {
        v.insert(k.to_string(), val.to_string());
    };
    put("github.sha", &g.sha);
    put(
        "github.sha_short",
        &g.sha.chars().take(7).collect::<String>(),
    );
    put("github.ref", &g.git_ref);
    put("github.ref_name", &g.ref_name);
    put("github.ref_type", &g.ref_type);
    put("github.head_ref", &g.head_ref);
    put("github.base_ref", &g.base_ref);
    put("github.repository", &g.repository);
    put("github.repository_owner", &g.repository_owner);
    put("github.actor", &g.actor);
    put("github.triggering_actor", &g.triggering_actor);
    put("github.workflow", &g.workflow);
    put("github.job", &g.job);
    put("github.run_id", &g.run_id);
    put("github.run_number", &g.run_number);
    put("github.run_attempt", &g.run_attempt);
    put("github.server_url", &g.server_url);
    put("github.event_name", &g.event_name);
    put("github.run_url", &g.run_url().unwrap_or_default());
    put("status", cfg.status.as_str());
    put("status_emoji", cfg.status.emoji());
    put("status_color", cfg.status.color());
    put("headline", &info.headline());
    put("environment", info.environment.as_deref().unwrap_or(""));
    put(
        "environment_url",
        info.environment_url.as_deref().unwrap_or(""),
    );
    put("image", info.image.as_deref().unwrap_or(""));
    put("digest", info.digest.as_deref().unwrap_or(""));
    put("release_id", info.release_id.as_deref().unwrap_or(""));
    put("job_url", info.job_url.as_deref().unwrap_or(""));
    put(
        "duration",
        &info.duration.map(human_duration).unwrap_or_default(),
    );
    put("commit_message", info.commit_title.as_deref().unwrap_or(""));
    put("commit_url", &info.commit_url);
    put(
        "pr_number",
        &info
            .pr
            .as_ref()
            .map(|p| p.number.to_string())
            .unwrap_or_default(),
    );
    put(
        "pr_title",
        info.pr.as_ref().map(|p| p.title.as_str()).unwrap_or(""),
    );
    put(
        "pr_url",
        info.pr.as_ref().map(|p| p.url.as_str()).unwrap_or(""),
    );
    let mentions = if cfg.status == Status::Failure {
        cfg.mentions
            .iter()
            .map(crate::config::Mention::markup)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        String::new()
    };
    put("mentions", &mentions);
    let env = step
        .env
        .with_prefix("")
        .map(|(k, val)| (k.to_string(), val.to_string()))
        .collect();
    Vars {
        values: v,
        env,
        event: g.event.payload.clone(),
        markup: vec!["mentions".into()],
    }
}

fn with(mut body: Value, extra: &[(&str, Value)]) -> Value {
    if let Some(o) = body.as_object_mut() {
        for (k, v) in extra {
            o.insert((*k).to_string(), v.clone());
        }
    }
    body
}

fn without(mut body: Value, keys: &[&str]) -> Value {
    if let Some(o) = body.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    body
}

/// Text form of a raw payload for the summary: its `text`, else the text of its blocks.
fn raw_text_form(p: &Value) -> String {
    let mut out = Vec::new();
    if let Some(t) = p.get("text").and_then(Value::as_str) {
        out.push(t.to_string());
    }
    let mut collect = |blocks: &Value| {
        for b in blocks.as_array().into_iter().flatten() {
            if let Some(t) = b.pointer("/text/text").and_then(Value::as_str) {
                out.push(t.to_string());
            }
            for f in b
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = f.get("text").and_then(Value::as_str) {
                    out.push(t.to_string());
                }
            }
        }
    };
    if let Some(b) = p.get("blocks") {
        collect(b);
    }
    for a in p
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(b) = a.get("blocks") {
            collect(b);
        }
    }
    out.join("\n")
}

/// Builds the plan.
pub fn build(step: &Step, cfg: &Config, info: &DeployInfo) -> Result<Plan, PlanError> {
    let mut notes = Vec::new();
    let (message, text_form, limit_notes) = match &cfg.content {
        Content::Default => {
            let r = render(info);
            (r.body, r.text_form, Vec::new())
        }
        Content::Raw { payload } => {
            let mut p = payload.clone();
            template(&mut p, &vars(step, info, cfg))?;
            let notes = enforce_limits(&mut p);
            let tf = raw_text_form(&p);
            // The destination comes from the inputs, not the message body.
            (
                without(p, &["channel", "ts", "thread_ts", "reply_broadcast"]),
                tf,
                notes,
            )
        }
    };

    let failure = cfg.status == Status::Failure;
    let wants_mentions = failure && !cfg.mentions.is_empty();
    let (mode, call, reply) = if cfg.token.is_some() {
        let channel = cfg.channel.clone().unwrap_or_default();
        match (&cfg.ts, &cfg.thread_ts) {
            (Some(ts), thread) => {
                let call = Call::Update {
                    channel,
                    ts: ts.clone(),
                    body: message.clone(),
                };
                let reply = if let Some(t) = thread {
                    Some(Reply {
                        thread_ts: Some(t.clone()),
                        broadcast: cfg.reply_broadcast.unwrap_or(failure),
                        body: render_reply(info).body,
                        reason: "`thread-ts` is given: a status reply in the thread".into(),
                    })
                } else if wants_mentions {
                    Some(Reply {
                        thread_ts: None,
                        broadcast: cfg.reply_broadcast.unwrap_or(false),
                        body: render_reply(info).body,
                        reason: "message edits do not notify anyone: mentions go to a thread reply"
                            .into(),
                    })
                } else {
                    None
                };
                ("web-api", call, reply)
            }
            (None, Some(thread)) => {
                let broadcast = cfg.reply_broadcast.unwrap_or(failure);
                let body = with(
                    message.clone(),
                    &[
                        ("channel", json!(channel)),
                        ("thread_ts", json!(thread)),
                        ("reply_broadcast", json!(broadcast)),
                    ],
                );
                ("web-api", Call::Post { body }, None)
            }
            (None, None) => (
                "web-api",
                Call::Post {
                    body: with(message.clone(), &[("channel", json!(channel))]),
                },
                None,
            ),
        }
    } else {
        if cfg.ts.is_some() {
            notes.push("an incoming webhook cannot update a message (no `token`): a new message is posted instead".to_string());
        }
        let mut body = message.clone();
        if let Some(t) = &cfg.thread_ts {
            body = with(body, &[("thread_ts", json!(t))]);
        }
        ("webhook", Call::Webhook { body }, None)
    };
    let webhook_fallback = match (&call, &cfg.webhook) {
        (Call::Post { .. } | Call::Update { .. }, Some(_)) => Some(message),
        _ => None,
    };

    let deployment = match &cfg.deployment {
        None => None,
        Some(d) => {
            let g = &step.github;
            if g.repository.is_empty() || g.sha.is_empty() {
                return Err(PlanError::Context(
                    "GitHub deployments need GITHUB_REPOSITORY and GITHUB_SHA (set by the runner; on a laptop export them)".into(),
                ));
            }
            let (state, description) = match cfg.status {
                Status::Started => (State::InProgress, format!("Deploying {}", info.ref_name)),
                Status::Success => (State::Success, format!("Deployed {}", info.ref_name)),
                Status::Failure => (State::Failure, "Deploy failed".to_string()),
                Status::Cancelled => (State::Error, "Deploy cancelled".to_string()),
            };
            Some(DeploymentPlan {
                environment: d.environment.clone(),
                environment_url: d.environment_url.clone(),
                state,
                id: d.id,
                sha: g.sha.clone(),
                run_id: g.run_id.clone(),
                log_url: g.run_url(),
                description,
                production: is_production(&d.environment),
                mark_superseded: cfg.status == Status::Success,
            })
        }
    };

    Ok(Plan {
        mode,
        call,
        reply,
        webhook_fallback,
        deployment,
        text_form,
        limit_notes,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gantry_runtime::mask::Masker;
    use gantry_runtime::{Cancel, Console, Env, OutputFormat, Step};

    use super::*;

    const BASE: &[(&str, &str)] = &[
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_RUN_ID", "7"),
        ("GITHUB_REF_NAME", "main"),
        ("INPUT_TOKEN", "xoxb-test-token"),
        ("INPUT_CHANNEL", "deploys"),
    ];

    fn plan(extra: &[(&str, &str)]) -> Plan {
        let env = Env::from_pairs(BASE.iter().chain(extra).copied());
        let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
        let step = Step::new(
            &crate::ACTION,
            env,
            BTreeMap::new(),
            console,
            Cancel::new(),
            OutputFormat::Runner,
        )
        .unwrap();
        let cfg = Config::resolve(&step).unwrap();
        let info = DeployInfo::gather(&step, &cfg);
        build(&step, &cfg, &info).unwrap()
    }

    #[test]
    fn posts_by_default() {
        let p = plan(&[]);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["mode"], "web-api");
        assert_eq!(v["call"]["method"], "chat.postMessage");
        assert_eq!(v["call"]["body"]["channel"], "deploys");
        assert!(p.reply.is_none() && p.webhook_fallback.is_none() && p.deployment.is_none());
    }

    #[test]
    fn failed_update_with_mentions_replies_in_the_thread() {
        let p = plan(&[
            ("INPUT_TS", "1700000000.000100"),
            ("INPUT_STATUS", "failure"),
            ("INPUT_MENTION-ON-FAILURE", "U0123ABCD"),
        ]);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["call"]["method"], "chat.update");
        assert_eq!(
            v["call"]["channel"], "deploys",
            "resolved to an id at execution"
        );
        let r = p.reply.unwrap();
        assert!(r.thread_ts.is_none() && !r.broadcast);
        assert!(r.body["text"].as_str().unwrap().starts_with("<@U0123ABCD>"));
        // No reply without mentions, or when it worked.
        assert!(
            plan(&[
                ("INPUT_TS", "1700000000.000100"),
                ("INPUT_STATUS", "failure")
            ])
            .reply
            .is_none()
        );
        assert!(
            plan(&[
                ("INPUT_TS", "1700000000.000100"),
                ("INPUT_STATUS", "success"),
                ("INPUT_MENTION-ON-FAILURE", "U0123ABCD")
            ])
            .reply
            .is_none()
        );
    }

    #[test]
    fn thread_replies_broadcast_failures_unless_told() {
        let p = plan(&[
            ("INPUT_THREAD-TS", "1700000000.000100"),
            ("INPUT_STATUS", "failure"),
        ]);
        let Call::Post { body } = &p.call else {
            panic!("post expected")
        };
        assert_eq!(body["thread_ts"], "1700000000.000100");
        assert_eq!(body["reply_broadcast"], true);
        let p = plan(&[
            ("INPUT_THREAD-TS", "1700000000.000100"),
            ("INPUT_STATUS", "failure"),
            ("INPUT_REPLY-BROADCAST", "false"),
        ]);
        let Call::Post { body } = &p.call else {
            panic!("post expected")
        };
        assert_eq!(body["reply_broadcast"], false);
    }

    #[test]
    fn slackapi_payload_keys_choose_update_and_thread() {
        let p = plan(&[
            (
                "INPUT_PAYLOAD",
                "{\"channel\": \"C0DEPLOYS\", \"ts\": \"1700000000.000100\", \"text\": \"done\"}",
            ),
            ("INPUT_CHANNEL", ""),
        ]);
        let Call::Update { channel, ts, body } = &p.call else {
            panic!("update expected")
        };
        assert_eq!(
            (channel.as_str(), ts.as_str()),
            ("C0DEPLOYS", "1700000000.000100")
        );
        assert!(body.get("ts").is_none() && body.get("channel").is_none());
        let p = plan(&[(
            "INPUT_PAYLOAD",
            "thread_ts: \"1700000000.000100\"\nreply_broadcast: true\ntext: hi",
        )]);
        let Call::Post { body } = &p.call else {
            panic!("post expected")
        };
        assert_eq!(body["thread_ts"], "1700000000.000100");
        assert_eq!(body["reply_broadcast"], true);
    }

    #[test]
    fn webhook_mode_and_fallback() {
        let p = plan(&[(
            "INPUT_WEBHOOK-URL",
            "https://hooks.slack.com/services/T/B/x",
        )]);
        assert!(p.webhook_fallback.is_some());
        let p = plan(&[
            ("INPUT_TOKEN", ""),
            (
                "INPUT_WEBHOOK-URL",
                "https://hooks.slack.com/services/T/B/x",
            ),
            ("INPUT_TS", "1700000000.000100"),
        ]);
        assert_eq!(p.mode, "webhook");
        assert!(matches!(p.call, Call::Webhook { .. }));
        assert!(p.notes[0].contains("cannot update"));
    }

    #[test]
    fn deployment_states_follow_the_status() {
        let dep = |status: &str| {
            plan(&[
                ("INPUT_GITHUB-DEPLOYMENT", "true"),
                ("INPUT_ENVIRONMENT", "production"),
                ("INPUT_GITHUB-TOKEN", "ghs_x"),
                ("INPUT_STATUS", status),
            ])
            .deployment
            .unwrap()
        };
        assert_eq!(dep("started").state, State::InProgress);
        let s = dep("success");
        assert_eq!(s.state, State::Success);
        assert!(s.mark_superseded && s.production);
        assert_eq!(
            s.log_url.as_deref(),
            Some("https://github.com/acme/api/actions/runs/7")
        );
        assert_eq!(dep("failure").state, State::Failure);
        assert_eq!(dep("cancelled").state, State::Error);
    }
}
