//! Carries out a [`Plan`]: the Slack calls (with the channel-name → id resolution `chat.update`
//! needs, the fallback to a new message when the old one cannot be edited, the webhook fallback,
//! the thread reply) and the GitHub deployment, both at once; then outputs and the step summary.
//!
//! Delivery problems are collected, not raised: the caller turns them into a `::warning::` (or
//! an error with `fail-on-error`). This module must not build messages.

use gantry_github::deployments::{Deployments, NewDeployment, NewStatus};
use gantry_runtime::Secret;
use serde_json::{Value, json};

use crate::client::{Client, DeliveryError};
use crate::config::{HANDLE_CLOSE, HANDLE_OPEN, is_channel_id};
use crate::plan::{Call, DeploymentPlan, Plan};

/// What the Slack side achieved.
#[derive(Debug, Default)]
pub struct SlackOutcome {
    /// Message ts (Web API only).
    pub ts: Option<String>,
    /// Channel id.
    pub channel_id: Option<String>,
    /// Thread parent ts.
    pub thread_ts: Option<String>,
    /// How it was delivered (`chat.postMessage`, `chat.update`, `incoming webhook`).
    pub via: Option<&'static str>,
    /// Things worth a log line.
    pub notes: Vec<String>,
    /// The failure, if delivery failed.
    pub error: Option<String>,
    /// A failed thread reply (the main message went out).
    pub reply_error: Option<String>,
}

/// What the deployment side achieved.
#[derive(Debug, Default)]
pub struct DeploymentOutcome {
    /// Deployment id.
    pub id: Option<u64>,
    /// Superseded deployments marked inactive.
    pub inactive: Vec<u64>,
    /// The failure, if any.
    pub error: Option<String>,
}

/// Resolves a channel name to its id through `conversations.list` (public and private channels
/// the token can see), following cursors.
///
/// See: <https://docs.slack.dev/reference/methods/conversations.list>
pub async fn resolve_channel(client: &Client, name: &str) -> Result<String, DeliveryError> {
    let mut cursor = String::new();
    for _ in 0..50 {
        let mut q = vec![
            ("types", "public_channel,private_channel"),
            ("exclude_archived", "true"),
            ("limit", "1000"),
        ];
        if !cursor.is_empty() {
            q.push(("cursor", cursor.as_str()));
        }
        let resp = client.get("conversations.list", &q).await?;
        for c in resp
            .get("channels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if c.get("name").and_then(Value::as_str) == Some(name)
                && let Some(id) = c.get("id").and_then(Value::as_str)
            {
                return Ok(id.to_string());
            }
        }
        cursor = resp
            .pointer("/response_metadata/next_cursor")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if cursor.is_empty() {
            break;
        }
    }
    Err(DeliveryError::Slack {
        method: "conversations.list".into(),
        code: "channel_not_found".into(),
        explanation: format!(
            "no channel named `{name}` is visible to the bot; `chat.update` needs the channel id: pass the `channel-id` output of the step that posted the message"
        ),
    })
}

fn walk_strings(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| walk_strings(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

fn plan_bodies(plan: &mut Plan) -> Vec<&mut Value> {
    let mut out = Vec::new();
    match &mut plan.call {
        Call::Post { body } | Call::Update { body, .. } | Call::Webhook { body } => out.push(body),
    }
    if let Some(r) = &mut plan.reply {
        out.push(&mut r.body);
    }
    if let Some(w) = &mut plan.webhook_fallback {
        out.push(w);
    }
    out
}

/// Replaces user-group handle sentinels (see `Mention::markup`) in every body of the plan:
/// `resolved` handles become `<!subteam^ID>`, the rest plain `@handle` (which pings no one).
pub fn replace_handles(plan: &mut Plan, resolved: &std::collections::BTreeMap<String, String>) {
    for body in plan_bodies(plan) {
        walk_strings(body, &mut |s: &mut String| {
            while let Some(start) = s.find(HANDLE_OPEN) {
                let Some(len) = s[start..].find(HANDLE_CLOSE) else {
                    break;
                };
                let handle = s[start + HANDLE_OPEN.len_utf8()..start + len].to_string();
                let with = match resolved.get(&handle) {
                    Some(id) => format!("<!subteam^{id}>"),
                    None => format!("@{handle}"),
                };
                s.replace_range(start..start + len + HANDLE_CLOSE.len_utf8(), &with);
            }
        });
    }
}

/// The handles the plan mentions.
pub fn handles(plan: &mut Plan) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for body in plan_bodies(plan) {
        walk_strings(body, &mut |s: &mut String| {
            let mut rest = s.as_str();
            while let Some(start) = rest.find(HANDLE_OPEN) {
                let after = &rest[start + HANDLE_OPEN.len_utf8()..];
                let Some(end) = after.find(HANDLE_CLOSE) else {
                    break;
                };
                found.insert(after[..end].to_string());
                rest = &after[end..];
            }
        });
    }
    found.into_iter().collect()
}

/// Resolves `@handle` mentions to user-group ids with `usergroups.list` (scope
/// `usergroups:read`) and puts them into the plan. Returns warnings for handles that stay plain
/// text (no token, no scope, unknown handle): those notify no one.
///
/// See: <https://docs.slack.dev/reference/methods/usergroups.list>
pub async fn resolve_handles(client: &Client, web_api: bool, plan: &mut Plan) -> Vec<String> {
    let wanted = handles(plan);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut resolved = std::collections::BTreeMap::new();
    let mut warnings = Vec::new();
    let shown = wanted
        .iter()
        .map(|h| format!("@{h}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !web_api {
        warnings.push(format!(
            "{shown}: an incoming webhook cannot look up user groups; the mention is plain text and notifies no one (use the group id, S0123456, in `mention-on-failure`)"
        ));
    } else {
        match client.get("usergroups.list", &[("include_disabled", "false")]).await {
            Ok(resp) => {
                for g in resp.get("usergroups").and_then(Value::as_array).into_iter().flatten() {
                    if let (Some(h), Some(id)) = (g.get("handle").and_then(Value::as_str), g.get("id").and_then(Value::as_str)) {
                        resolved.insert(h.to_string(), id.to_string());
                    }
                }
                let missing: Vec<String> = wanted.iter().filter(|h| !resolved.contains_key(*h)).map(|h| format!("@{h}")).collect();
                if !missing.is_empty() {
                    warnings.push(format!("no user group with handle {} in this workspace; the mention is plain text", missing.join(", ")));
                }
            }
            Err(e) => warnings.push(format!(
                "cannot resolve {shown} to a user group ({e}); the mention is plain text and notifies no one: add the `usergroups:read` scope or use the group id (S0123456)"
            )),
        }
    }
    replace_handles(plan, &resolved);
    warnings
}

fn insert(body: &Value, extra: &[(&str, Value)]) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        for (k, v) in extra {
            o.insert((*k).to_string(), v.clone());
        }
    }
    b
}

fn resp_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Runs the Slack side of the plan.
pub async fn slack(client: &Client, plan: &Plan, webhook: Option<&Secret>) -> SlackOutcome {
    let mut out = SlackOutcome::default();
    let first: Result<(), DeliveryError> = match &plan.call {
        Call::Webhook { body } => match webhook {
            Some(url) => client
                .webhook(url, body)
                .await
                .map(|()| out.via = Some("incoming webhook")),
            None => Err(DeliveryError::Webhook("no webhook URL".into())),
        },
        Call::Post { body } => {
            let channel = body
                .get("channel")
                .and_then(Value::as_str)
                .map(str::to_string);
            match client
                .call("chat.postMessage", body, false, channel.as_deref())
                .await
            {
                Ok(resp) => {
                    out.ts = resp_str(&resp, "ts");
                    out.channel_id = resp_str(&resp, "channel");
                    out.thread_ts = resp
                        .pointer("/message/thread_ts")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| {
                            body.get("thread_ts")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .or_else(|| out.ts.clone());
                    out.via = Some("chat.postMessage");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Call::Update { channel, ts, body } => update(client, channel, ts, body, &mut out).await,
    };
    if let Err(e) = first {
        match (&plan.webhook_fallback, webhook, e.nothing_posted()) {
            (Some(body), Some(url), true) => {
                tracing::warn!(
                    "Slack Web API failed ({e}); posting through the incoming webhook instead"
                );
                match client.webhook(url, body).await {
                    Ok(()) => {
                        out.via = Some("incoming webhook");
                        out.notes.push(format!("the Web API failed ({e}); the message was posted through the incoming webhook instead (no `ts`)"));
                    }
                    Err(w) => {
                        out.error = Some(format!("{e}; the webhook fallback failed too: {w}"))
                    }
                }
            }
            _ => out.error = Some(e.to_string()),
        }
        return out;
    }
    if let (Some(reply), Some(channel)) = (&plan.reply, out.channel_id.clone()) {
        let Some(thread) = reply.thread_ts.clone().or_else(|| out.ts.clone()) else {
            return out;
        };
        let body = insert(
            &reply.body,
            &[
                ("channel", json!(channel)),
                ("thread_ts", json!(thread)),
                ("reply_broadcast", json!(reply.broadcast)),
            ],
        );
        match client
            .call("chat.postMessage", &body, false, Some(&channel))
            .await
        {
            Ok(_) => out
                .notes
                .push(format!("thread reply posted ({})", reply.reason)),
            Err(e) => out.reply_error = Some(format!("thread reply: {e}")),
        }
    }
    out
}

async fn update(
    client: &Client,
    channel: &str,
    ts: &str,
    body: &Value,
    out: &mut SlackOutcome,
) -> Result<(), DeliveryError> {
    let id = if is_channel_id(channel) {
        channel.to_string()
    } else {
        tracing::info!("resolving channel `{channel}` to its id (chat.update needs an id)");
        resolve_channel(client, channel).await.map_err(|e| match e {
            DeliveryError::Slack { method, code, .. } if code == "missing_scope" => DeliveryError::Slack {
                method,
                explanation: format!(
                    "cannot resolve channel `{channel}` to an id: the token lacks the `channels:read` (and for private channels `groups:read`) scope; pass the `channel-id` output of the step that posted the message instead"
                ),
                code,
            },
            other => other,
        })?
    };
    let req = insert(body, &[("channel", json!(id)), ("ts", json!(ts))]);
    match client.call("chat.update", &req, true, Some(&id)).await {
        Ok(resp) => {
            out.ts = resp_str(&resp, "ts").or_else(|| Some(ts.to_string()));
            out.channel_id = resp_str(&resp, "channel").or(Some(id));
            out.thread_ts = resp
                .pointer("/message/thread_ts")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| out.ts.clone());
            out.via = Some("chat.update");
            Ok(())
        }
        Err(e)
            if matches!(
                e.code(),
                Some("message_not_found" | "cant_update_message" | "edit_window_closed")
            ) =>
        {
            // The update definitely did not happen: post a fresh message so the news still arrives.
            tracing::warn!("{e}; posting a new message instead");
            out.notes
                .push(format!("{e}; a new message was posted instead"));
            let req = insert(body, &[("channel", json!(id))]);
            let resp = client
                .call("chat.postMessage", &req, false, Some(&id))
                .await?;
            out.ts = resp_str(&resp, "ts");
            out.channel_id = resp_str(&resp, "channel").or(Some(id));
            out.thread_ts = out.ts.clone();
            out.via = Some("chat.postMessage");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Runs the deployment side of the plan.
pub async fn deployment(
    plan: &DeploymentPlan,
    api_url: &str,
    token: &Secret,
    repository: &str,
) -> DeploymentOutcome {
    let mut out = DeploymentOutcome::default();
    let res: Result<(), gantry_github::deployments::DeploymentError> = async {
        let client = Deployments::new(api_url, token, repository)?;
        let id = match plan.id {
            Some(id) => id,
            None => {
                let found = if plan.state == gantry_github::deployments::State::InProgress {
                    None
                } else {
                    client
                        .find_for_run(&plan.sha, &plan.environment, &plan.run_id)
                        .await?
                };
                match found {
                    Some(id) => id,
                    None => {
                        client
                            .create(&NewDeployment {
                                git_ref: plan.sha.clone(),
                                environment: plan.environment.clone(),
                                description: plan.description.clone(),
                                production: plan.production,
                                run_id: plan.run_id.clone(),
                            })
                            .await?
                    }
                }
            }
        };
        out.id = Some(id);
        client
            .set_status(
                id,
                &NewStatus {
                    state: plan.state,
                    environment_url: plan.environment_url.clone(),
                    log_url: plan.log_url.clone(),
                    description: plan.description.clone(),
                },
            )
            .await?;
        if plan.mark_superseded {
            out.inactive = client.mark_superseded(&plan.environment, id).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = res {
        out.error = Some(e.to_string());
    }
    out
}
