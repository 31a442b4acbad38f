//! `notify-slack`: deploy notifications on Slack that update in place, thread, survive rate
//! limits, and record GitHub Deployments.
//!
//! This crate owns the action's input/output table ([`ACTION`]) and its run: inputs →
//! [`config::Config`] → [`plan::Plan`] (plain data, printed by `--dry-run`) → [`execute`].
//! A broken Slack must not fail a deploy: delivery failures are a `::warning::` and exit 0 unless
//! `fail-on-error: true`; invalid inputs always fail. Tokens and webhook URLs are masked as soon
//! as read and never appear in logs, errors, outputs or the summary.
//! It must not depend on other action crates.

pub mod blocks;
pub mod client;
pub mod config;
pub mod execute;
pub mod message;
pub mod mrkdwn;
pub mod payload;
pub mod plan;
pub mod slack_errors;

use gantry_runtime::{
    ActionSpec, Annotation, ErrorClass, Failure, InputError, InputKind, InputSpec, OutputSpec, Step,
};

use crate::client::{Client, Policy};
use crate::config::{Config, ConfigError};
use crate::message::DeployInfo;
use crate::payload::PayloadError;
use crate::plan::{Call, PlanError};

/// Inputs of `notify-slack`.
pub static INPUTS: &[InputSpec] = &[
    InputSpec::new("token", InputKind::String, "Slack bot token (`xoxb-…`, scope `chat:write`) for the Web API: needed to update a message, reply in a thread and get `ts`. Masked.").secret(),
    InputSpec::new("channel", InputKind::String, "Channel id (`C0123456`, preferred) or name (`deploys`). With `ts`, a name is resolved to its id first (needs `channels:read`).")
        .aliases(&["channel-id", "channel_id"]),
    InputSpec::new("status", InputKind::String, "Deploy status: `started`, `success`, `failure` or `cancelled` (pass the `job.status` expression). Sets the colour, emoji and wording.").default("started"),
    InputSpec::new("ts", InputKind::String, "Update this message (the `ts` output of the step that posted it) with `chat.update` instead of posting a new one; the duration is computed from it.")
        .aliases(&["update-ts"]),
    InputSpec::new("thread-ts", InputKind::String, "Reply in the thread of this message (a parent's `ts`). With `ts`, a short status reply goes to this thread after the update.")
        .aliases(&["thread_ts"]),
    InputSpec::new("reply-broadcast", InputKind::Bool, "Also show thread replies in the channel. Default: only on failure."),
    InputSpec::new("webhook-url", InputKind::String, "Incoming webhook URL: used when there is no `token`, and as a fallback when the Web API fails before posting. Cannot update messages or return `ts`. Masked.")
        .secret()
        .aliases(&["webhook"]),
    InputSpec::new("payload", InputKind::String, "A raw message (JSON or YAML: `text`, `blocks`, `attachments`…) instead of the default deploy message. `{{ github.sha }}`, `{{ env.NAME }}`, `{{ status }}`… are replaced after parsing."),
    InputSpec::new("payload-file", InputKind::Path, "A file holding the raw message (JSON or YAML), as `payload`. Also expands slackapi's `payload-templated` placeholders (`github.*` and `env.*` with a leading `$`).")
        .aliases(&["payload-file-path"]),
    InputSpec::new("title", InputKind::String, "Headline instead of \"Deploying <repository> to <environment>\" (the status word is appended)."),
    InputSpec::new("environment", InputKind::String, "Deployment environment name (`production`), shown in the message and used for GitHub Deployments."),
    InputSpec::new("environment-url", InputKind::String, "URL of the deployed environment: a button in the message and the deployment's link on GitHub."),
    InputSpec::new("image", InputKind::String, "Image reference shown in the message (e.g. the `tags` output of tag-metadata)."),
    InputSpec::new("digest", InputKind::String, "Image digest shown in the message (e.g. the `digest` output of build-image)."),
    InputSpec::new("release-id", InputKind::String, "Release id shown in the message (e.g. the `release-id` output of ssh-release)."),
    InputSpec::new("job-url", InputKind::String, "Link to the job's log, shown as a button (built from `github.server_url`, `github.repository`, `github.run_id` and `job.check_run_id`)."),
    InputSpec::new("mention-on-failure", InputKind::List, "Who to mention when `status` is `failure`: user ids (`U0123456`), user-group ids (`S0123456`), handles (`@oncall`), `here`; comma or newline separated."),
    InputSpec::new("fail-on-error", InputKind::Bool, "Fail the step when the notification cannot be delivered. By default a delivery failure is a warning, so a broken Slack never fails a deploy.")
        .default("false")
        .aliases(&["errors"]),
    InputSpec::new("github-deployment", InputKind::Bool, "Also record a GitHub deployment for `environment` and set its status from `status` (needs `permissions: deployments: write`).").default("false"),
    InputSpec::new("deployment-id", InputKind::Number, "The GitHub deployment to update (the `deployment-id` output of the start step). Default: the one this run created for the commit and environment."),
    InputSpec::new("github-token", InputKind::String, "Token for the GitHub Deployments API.").secret().action_default("${{ github.token }}"),
    InputSpec::new("api", InputKind::String, "Slack Web API base URL (proxies, Enterprise setups, tests).").default("https://slack.com/api/"),
];

/// Outputs of `notify-slack`.
pub static OUTPUTS: &[OutputSpec] = &[
    OutputSpec::new(
        "ok",
        "`true` when Slack accepted the message, `false` when delivery failed (and `fail-on-error` is false).",
    ),
    OutputSpec::new(
        "ts",
        "The message's timestamp id; pass it as `ts` to update the message, or as `thread-ts` to reply. Empty for webhooks.",
    ),
    OutputSpec::new(
        "channel-id",
        "The channel id the message is in (pass it as `channel` with `ts`).",
    ),
    OutputSpec::new("channel", "Same as `channel-id`."),
    OutputSpec::new(
        "thread-ts",
        "The thread parent's timestamp (the message itself for a top-level message).",
    ),
    OutputSpec::new(
        "deployment-id",
        "The GitHub deployment id (with `github-deployment: true`).",
    ),
    OutputSpec::new(
        "channel_id",
        "Alias of `channel-id` (slackapi/slack-github-action's spelling).",
    ),
    OutputSpec::new(
        "thread_ts",
        "Alias of `thread-ts` (slackapi/slack-github-action's spelling).",
    ),
];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "notify-slack",
    title: "gantry notify-slack",
    description: "Post and update deploy notifications on Slack; record GitHub deployments.",
    help: "Examples:\n  \
gantry notify-slack --token \"$SLACK_BOT_TOKEN\" --channel C0123456 --status started --environment production\n  \
gantry notify-slack --token \"$SLACK_BOT_TOKEN\" --channel C0123456 --ts 1712345678.123456 --status success\n  \
gantry notify-slack --webhook-url \"$SLACK_WEBHOOK\" --status failure --mention-on-failure @oncall\n  \
gantry notify-slack --channel C0123456 --status success --payload-file slack.yml --dry-run",
    inputs: INPUTS,
    outputs: OUTPUTS,
    icon: "bell",
    color: "blue",
};

/// Errors of `notify-slack`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A payload that does not parse.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A plan that cannot be built from the inputs.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Delivery failed and `fail-on-error` is true.
    #[error("notification not delivered: {0}")]
    Delivery(String),
    /// Cancelled.
    #[error("cancelled before the notification was delivered")]
    Cancelled,
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Input(e) => Self::Input(e),
            ConfigError::Payload(e) => Self::Payload(e),
        }
    }
}

impl Failure for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) | Self::Payload(_) | Self::Plan(_) => ErrorClass::Input,
            Self::Delivery(_) => ErrorClass::Failed,
            Self::Cancelled => ErrorClass::Cancelled,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            Self::Input(InputError::Required { name }) if name.contains("webhook-url") => vec![
                "set `token: ${{ secrets.SLACK_BOT_TOKEN }}` and `channel`, or `webhook-url: ${{ secrets.SLACK_WEBHOOK_URL }}`".into(),
            ],
            Self::Delivery(_) => vec!["set `fail-on-error: false` (the default) to keep a Slack outage from failing the job".into()],
            _ => Vec::new(),
        }
    }

    fn location(&self) -> Option<Annotation> {
        match self {
            Self::Payload(p) if p.file.is_some() => Some(Annotation {
                file: p.file.clone(),
                line: u32::try_from(p.line).ok(),
                col: u32::try_from(p.column).ok(),
                ..Annotation::default()
            }),
            _ => None,
        }
    }
}

/// Runs the action.
pub async fn run(step: &mut Step) -> Result<(), Error> {
    let cfg = Config::resolve(step)?;
    let info = DeployInfo::gather(step, &cfg);
    let plan = plan::build(step, &cfg, &info)?;
    for n in &plan.notes {
        step.console.warning("notify-slack", n);
    }
    for n in &plan.limit_notes {
        tracing::info!("cut to fit Slack's limits: {n}");
    }
    let mut plan = plan;
    if step.dry_run {
        // User-group handles are looked up at send time; shown as plain `@handle` here.
        execute::replace_handles(&mut plan, &std::collections::BTreeMap::new());
        let v = serde_json::to_value(&plan).unwrap_or_default();
        step.print_plan("notify-slack plan", &v);
        return Ok(());
    }

    let tls = cfg.api.starts_with("https:")
        || cfg
            .webhook
            .as_ref()
            .is_some_and(|w| w.expose().starts_with("https:"));
    let client = Client::new(
        &cfg.api,
        cfg.token.clone(),
        Policy::default(),
        step.cancel.clone(),
        tls,
    )
    .map_err(|e| Error::Delivery(e.to_string()))?;
    for w in execute::resolve_handles(&client, cfg.token.is_some(), &mut plan).await {
        step.console.warning("notify-slack", &w);
    }
    let slack_fut = execute::slack(&client, &plan, cfg.webhook.as_ref());
    let repository = step.github.repository.clone();
    let api_url = step.github.api_url.clone();
    let dep_fut = async {
        match (&plan.deployment, &cfg.deployment) {
            (Some(p), Some(d)) => {
                Some(execute::deployment(p, &api_url, &d.token, &repository).await)
            }
            _ => None,
        }
    };
    let started = std::time::Instant::now();
    let (slack, dep) = tokio::join!(slack_fut, dep_fut);
    tracing::info!(
        "notify-slack: done in {}",
        gantry_runtime::duration::human(started.elapsed())
    );
    if step.cancel.is_cancelled() && slack.via.is_none() {
        return Err(Error::Cancelled);
    }

    for n in &slack.notes {
        tracing::info!("{n}");
    }
    let ok = slack.error.is_none();
    step.outputs
        .set_always("ok", if ok { "true" } else { "false" });
    if let Some(ts) = &slack.ts {
        step.outputs.set_always("ts", ts);
    }
    if let Some(c) = &slack.channel_id {
        for name in ["channel-id", "channel", "channel_id"] {
            step.outputs.set_always(name, c);
        }
    }
    if let Some(t) = &slack.thread_ts {
        for name in ["thread-ts", "thread_ts"] {
            step.outputs.set_always(name, t);
        }
    }
    if let Some(d) = dep.as_ref().and_then(|d| d.id) {
        step.outputs.set_always("deployment-id", d.to_string());
    }

    summarize(step, &plan, &slack, dep.as_ref());

    let mut failures = Vec::new();
    if let Some(e) = &slack.error {
        failures.push(e.clone());
    }
    if let Some(e) = &slack.reply_error {
        failures.push(e.clone());
    }
    if let Some(e) = dep.as_ref().and_then(|d| d.error.clone()) {
        failures.push(e);
    }
    if failures.is_empty() {
        match (&slack.ts, &slack.channel_id) {
            (Some(ts), Some(c)) => step.console.info(&format!(
                "Slack: {} ok (channel {c}, ts {ts})",
                slack.via.unwrap_or("?")
            )),
            _ => step
                .console
                .info(&format!("Slack: {} ok", slack.via.unwrap_or("?"))),
        }
        return Ok(());
    }
    let msg = failures.join("; ");
    if cfg.fail_on_error {
        return Err(Error::Delivery(msg));
    }
    step.console.warning("notify-slack", &format!("notification not delivered (the step continues; set fail-on-error: true to fail it): {msg}"));
    Ok(())
}

fn summarize(
    step: &mut Step,
    plan: &plan::Plan,
    slack: &execute::SlackOutcome,
    dep: Option<&execute::DeploymentOutcome>,
) {
    let method = match &plan.call {
        Call::Post { .. } => "chat.postMessage",
        Call::Update { .. } => "chat.update",
        Call::Webhook { .. } => "incoming webhook",
    };
    let delivered = match (&slack.error, slack.via) {
        (None, Some(v)) if v == method => format!("✅ {v}"),
        (None, Some(v)) => format!("✅ {v} (instead of {method})"),
        (Some(e), _) => format!("⚠️ not delivered: {e}"),
        (None, None) => "—".into(),
    };
    let mut rows: Vec<Vec<String>> = vec![vec!["Delivery".into(), delivered]];
    if let Some(c) = &slack.channel_id {
        rows.push(vec!["Channel".into(), c.clone()]);
    }
    if let Some(t) = &slack.ts {
        rows.push(vec!["ts".into(), t.clone()]);
    }
    if let Some(d) = dep {
        let v = match (&d.id, &d.error) {
            (_, Some(e)) => format!("⚠️ {e}"),
            (Some(id), None) if d.inactive.is_empty() => format!("{id}"),
            (Some(id), None) => format!(
                "{id} (marked inactive: {})",
                d.inactive
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, None) => "—".into(),
        };
        rows.push(vec!["GitHub deployment".into(), v]);
    }
    step.summary.heading(3, "notify-slack");
    if let Some(e) = &slack.reply_error {
        rows.push(vec!["Thread reply".into(), format!("⚠️ {e}")]);
    }
    step.summary.table(&["Notification", "Result"], &rows);
    step.summary.details(
        if slack.error.is_none() {
            "Message as sent"
        } else {
            "Message (not delivered)"
        },
        &format!(
            "\n```text\n{}\n```\n",
            plan.text_form.replace("```", "`\u{200b}``")
        ),
    );
}
