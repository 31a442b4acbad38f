//! The default deploy message: what a team wants to see for a deploy with no configuration.
//!
//! [`DeployInfo`] gathers the facts (status, repository, ref, commit, actor, run, environment,
//! image, digest, release, duration, pull request, mentions) from the runner context, the event
//! payload and the inputs; [`render`] turns them into a Slack message body (top-level `text` for
//! notifications, a header, and a coloured attachment holding the Block Kit details) plus the
//! same message as plain text for the step summary. Every value that came from a user is escaped.
//! This module must not send anything.

use std::time::Duration;

use gantry_runtime::Step;
use serde::Serialize;
use serde_json::{Value, json};

use crate::blocks::{Blocks, MAX_TEXT};
use crate::config::{Config, Mention, Status};
use crate::mrkdwn::{escape, first_line, link, truncate};

/// A pull request linked to the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PrInfo {
    /// Number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Web URL.
    pub url: String,
}

/// The facts shown in a deploy message.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeployInfo {
    /// Status.
    pub status: Option<Status>,
    /// A custom title (`title` input).
    pub title: Option<String>,
    /// `owner/name`.
    pub repository: String,
    /// Repository web URL.
    pub repo_url: String,
    /// Branch or tag name.
    pub ref_name: String,
    /// Web URL of the ref.
    pub ref_url: String,
    /// Full commit SHA.
    pub sha: String,
    /// Commit web URL.
    pub commit_url: String,
    /// First line of the commit message, when the event carries it.
    pub commit_title: Option<String>,
    /// Who ran it.
    pub actor: String,
    /// Workflow name.
    pub workflow: String,
    /// Run number.
    pub run_number: String,
    /// Run attempt (1 when unknown).
    pub run_attempt: u32,
    /// Run web URL (with `/attempts/N` after a re-run).
    pub run_url: Option<String>,
    /// Job web URL (`job-url` input).
    pub job_url: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Environment URL.
    pub environment_url: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Digest.
    pub digest: Option<String>,
    /// Release id.
    pub release_id: Option<String>,
    /// Time since the start message.
    pub duration: Option<Duration>,
    /// The pull request.
    pub pr: Option<PrInfo>,
    /// Mentions (used only on failure).
    pub mentions: Vec<Mention>,
    /// Unix time of "now" (for the date in the context line and fresh block ids).
    pub now: i64,
}

/// Durations longer than this are not shown (the `ts` is not this deploy's start).
const MAX_DURATION_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// Parses a Slack `ts` (`"1712345678.123456"`) into seconds.
pub fn ts_seconds(ts: &str) -> Option<f64> {
    ts.parse::<f64>().ok().filter(|s| *s > 0.0)
}

/// `3m 12s`, `1h 2m`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

impl DeployInfo {
    /// Gathers the facts from the step (context, event) and the configuration.
    pub fn gather(step: &Step, cfg: &Config) -> Self {
        let g = &step.github;
        let server = g.server_url.trim_end_matches('/').to_string();
        let repo_url = if g.repository.is_empty() {
            String::new()
        } else {
            format!("{server}/{}", g.repository)
        };
        let pr = g.event.pull_request().map(|p| PrInfo {
            number: p.number,
            title: p.title.clone(),
            url: p.html_url.clone(),
        });
        let (ref_name, sha) = match g.event.pull_request() {
            Some(p) if !p.head.git_ref.is_empty() => (
                p.head.git_ref.clone(),
                if p.head.sha.is_empty() {
                    g.sha.clone()
                } else {
                    p.head.sha.clone()
                },
            ),
            _ => (
                if g.ref_name.is_empty() {
                    g.git_ref.rsplit('/').next().unwrap_or("").to_string()
                } else {
                    g.ref_name.clone()
                },
                g.sha.clone(),
            ),
        };
        let ref_url = if repo_url.is_empty() || ref_name.is_empty() {
            String::new()
        } else {
            format!("{repo_url}/tree/{ref_name}")
        };
        let commit_url = if repo_url.is_empty() || sha.is_empty() {
            String::new()
        } else {
            format!("{repo_url}/commit/{sha}")
        };
        let commit_title = match &g.event.kind {
            gantry_runtime::event::EventKind::Push(p) => p
                .head_commit
                .as_ref()
                .map(|c| first_line(&c.message).to_string()),
            _ => g
                .event
                .pointer("/head_commit/message")
                .and_then(Value::as_str)
                .map(|m| first_line(m).to_string()),
        }
        .filter(|t| !t.is_empty());
        let now = step.now();
        let start_ts = cfg
            .ts
            .as_deref()
            .or(cfg.thread_ts.as_deref())
            .and_then(ts_seconds);
        let duration = match (cfg.status.is_final(), start_ts) {
            (true, Some(start)) => {
                let now_f =
                    now.timestamp() as f64 + f64::from(now.timestamp_subsec_millis()) / 1000.0;
                // A start more than a week ago is not this deploy's start (a reused `ts`).
                (now_f > start && now_f - start < MAX_DURATION_SECS)
                    .then(|| Duration::from_secs_f64(now_f - start))
            }
            _ => None,
        };
        Self {
            status: Some(cfg.status),
            title: cfg.title.clone(),
            repository: g.repository.clone(),
            repo_url,
            ref_name,
            ref_url,
            sha,
            commit_url,
            commit_title,
            actor: g.actor.clone(),
            workflow: g.workflow.clone(),
            run_number: g.run_number.clone(),
            run_attempt: g.run_attempt.parse().unwrap_or(1),
            run_url: g.run_url(),
            job_url: cfg.job_url.clone(),
            environment: cfg.environment.clone(),
            environment_url: cfg.environment_url.clone(),
            image: cfg.image.clone(),
            digest: cfg.digest.clone(),
            release_id: cfg.release_id.clone(),
            duration,
            pr,
            mentions: cfg.mentions.clone(),
            now: now.timestamp(),
        }
    }

    fn status(&self) -> Status {
        self.status.unwrap_or(Status::Started)
    }

    /// The one-line headline, plain text (not escaped).
    pub fn headline(&self) -> String {
        let st = self.status();
        // "Deploying acme/api to production"; without a repository "Deploying to production".
        let what = if self.repository.is_empty() {
            String::new()
        } else {
            format!(" {}", self.repository)
        };
        let to = self
            .environment
            .as_deref()
            .map(|e| format!(" to {e}"))
            .unwrap_or_default();
        let of = |w: &str| {
            if w.is_empty() {
                String::new()
            } else {
                format!(" of{w}")
            }
        };
        let line = match (&self.title, st) {
            (Some(t), Status::Started) => format!("{t}: started"),
            (Some(t), Status::Success) => format!("{t}: succeeded"),
            (Some(t), Status::Failure) => format!("{t}: failed"),
            (Some(t), Status::Cancelled) => format!("{t}: cancelled"),
            (None, Status::Started) => format!("Deploying{what}{to}"),
            (None, Status::Success) => format!("Deployed{what}{to}"),
            (None, Status::Failure) => format!("Deploy{}{to} failed", of(&what)),
            (None, Status::Cancelled) => format!("Deploy{}{to} cancelled", of(&what)),
        };
        format!("{} {line}", st.emoji())
    }

    fn mention_markup(&self) -> String {
        if self.status() != Status::Failure {
            return String::new();
        }
        self.mentions
            .iter()
            .map(Mention::markup)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `(label, plain text, mrkdwn)` rows shown as fields.
    pub fn rows(&self) -> Vec<(&'static str, String, String)> {
        let mut rows = Vec::new();
        let code = |s: &str| format!("`{}`", escape(s));
        if !self.repository.is_empty() {
            rows.push((
                "Repository",
                self.repository.clone(),
                link(&self.repo_url, &self.repository),
            ));
        }
        if !self.ref_name.is_empty() {
            rows.push((
                "Ref",
                self.ref_name.clone(),
                link(&self.ref_url, &self.ref_name),
            ));
        }
        if !self.sha.is_empty() {
            let short: String = self.sha.chars().take(7).collect();
            let md = link(&self.commit_url, &short);
            rows.push(("Commit", short, md));
        }
        if !self.actor.is_empty() {
            rows.push(("Actor", self.actor.clone(), escape(&self.actor)));
        }
        if !self.workflow.is_empty() || self.run_url.is_some() {
            let mut label = if self.workflow.is_empty() {
                "run".to_string()
            } else {
                self.workflow.clone()
            };
            if !self.run_number.is_empty() {
                label.push_str(&format!(" #{}", self.run_number));
            }
            if self.run_attempt > 1 {
                label.push_str(&format!(" (attempt {})", self.run_attempt));
            }
            let md = match &self.run_url {
                Some(u) => link(u, &label),
                None => escape(&label),
            };
            rows.push(("Workflow", label, md));
        }
        if let Some(env) = &self.environment {
            let md = match &self.environment_url {
                Some(u) => link(u, env),
                None => escape(env),
            };
            rows.push(("Environment", env.clone(), md));
        }
        if let Some(d) = self.duration {
            rows.push(("Duration", human_duration(d), human_duration(d)));
        }
        if let Some(i) = &self.image {
            rows.push(("Image", i.clone(), code(i)));
        }
        if let Some(d) = &self.digest {
            rows.push(("Digest", d.clone(), code(d)));
        }
        if let Some(r) = &self.release_id {
            rows.push(("Release", r.clone(), code(r)));
        }
        rows
    }

    /// Text lines for the body section: the commit title and the PR.
    fn body(&self) -> (Vec<String>, Vec<String>) {
        let mut md = Vec::new();
        let mut plain = Vec::new();
        if let Some(t) = &self.commit_title {
            md.push(format!("> {}", escape(t)));
            plain.push(format!("Commit message: {t}"));
        }
        if let Some(pr) = &self.pr {
            let label = format!("#{} {}", pr.number, pr.title);
            md.push(format!("*Pull request:* {}", link(&pr.url, &label)));
            plain.push(format!("Pull request: {label} {}", pr.url));
        }
        (md, plain)
    }
}

/// A message ready to send, and its text form.
#[derive(Clone, Debug, Serialize)]
pub struct Rendered {
    /// The body fields (`text`, `blocks`, `attachments`, …), without channel/ts.
    pub body: Value,
    /// The message as plain text (step summary, dry run).
    pub text_form: String,
}

/// Renders the default deploy message.
pub fn render(info: &DeployInfo) -> Rendered {
    let st = info.status();
    let headline = info.headline();
    let mentions = info.mention_markup();
    let prefix = format!("gantry-{}-{}", st.as_str(), info.now);

    // Top-level: header, and on failure a line with the mentions (edits do not notify, so
    // mentions also go to a thread reply when updating; see plan.rs).
    let mut top = Blocks::new(&format!("{prefix}-h"));
    top.header(&headline);
    if !mentions.is_empty() {
        top.section(&format!("{mentions} {}", escape(&headline)));
    }

    let rows = info.rows();
    let fields: Vec<String> = rows
        .iter()
        .map(|(l, _, md)| format!("*{l}*\n{md}"))
        .collect();
    let (body_md, body_plain) = info.body();
    let mut details = Blocks::new(&format!("{prefix}-d"));
    details.fields(&fields);
    details.section(&body_md.join("\n"));
    let mut buttons: Vec<(String, String, Option<&'static str>)> = Vec::new();
    if let Some(u) = &info.run_url {
        buttons.push((
            "View run".into(),
            u.clone(),
            if st == Status::Failure {
                Some("danger")
            } else {
                None
            },
        ));
    }
    if let Some(u) = &info.job_url {
        buttons.push(("View job log".into(), u.clone(), None));
    }
    if let Some(u) = &info.environment_url {
        buttons.push((
            "Open environment".into(),
            u.clone(),
            if st == Status::Success {
                Some("primary")
            } else {
                None
            },
        ));
    }
    if let Some(pr) = &info.pr
        && !pr.url.is_empty()
    {
        buttons.push((format!("Pull request #{}", pr.number), pr.url.clone(), None));
    }
    if !info.commit_url.is_empty() {
        buttons.push(("Commit".into(), info.commit_url.clone(), None));
    }
    details.buttons(&buttons);
    let when = chrono::DateTime::from_timestamp(info.now, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    details.context(&[format!(
        "gantry notify-slack · {} · <!date^{}^{{date_short_pretty}} at {{time}}|{}>",
        st.as_str(),
        info.now,
        escape(&when)
    )]);

    let mut text = escape(&headline);
    if !mentions.is_empty() {
        text = format!("{mentions} {text}");
    }
    if let Some(t) = &info.commit_title {
        text.push_str(&format!(" — {}", escape(t)));
    }
    let text = truncate(&text, MAX_TEXT);
    let body = json!({
        "text": text,
        "blocks": top.build(),
        "attachments": [{
            "color": st.color(),
            "fallback": text,
            "blocks": details.build(),
        }],
        "unfurl_links": false,
        "unfurl_media": false,
    });

    let mut lines = vec![headline];
    if !mentions.is_empty() {
        lines.push(format!(
            "Mentions: {}",
            info.mentions
                .iter()
                .map(Mention::display)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    for (l, plain, _) in &rows {
        lines.push(format!("{l}: {plain}"));
    }
    lines.extend(body_plain);
    if let Some(u) = &info.run_url {
        lines.push(format!("Run: {u}"));
    }
    Rendered {
        body,
        text_form: lines.join("\n"),
    }
}

/// A short thread reply: the headline, the mentions and the run link (used to ping people when
/// the main message is edited, because edits do not notify).
pub fn render_reply(info: &DeployInfo) -> Rendered {
    let headline = info.headline();
    let mentions = info.mention_markup();
    let mut line = escape(&headline);
    if let Some(u) = &info.run_url {
        line.push_str(&format!(" · {}", link(u, "logs")));
    }
    if !mentions.is_empty() {
        line = format!("{mentions} {line}");
    }
    let mut blocks = Blocks::new(&format!(
        "gantry-reply-{}-{}",
        info.status().as_str(),
        info.now
    ));
    blocks.section(&line);
    let text = truncate(&line, MAX_TEXT);
    let body = json!({ "text": text, "blocks": blocks.build(), "unfurl_links": false, "unfurl_media": false });
    let mut text_form = headline;
    if let Some(u) = &info.run_url {
        text_form.push_str(&format!(" ({u})"));
    }
    Rendered { body, text_form }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: Status) -> DeployInfo {
        DeployInfo {
            status: Some(status),
            repository: "acme/api".into(),
            repo_url: "https://github.com/acme/api".into(),
            ref_name: "main".into(),
            ref_url: "https://github.com/acme/api/tree/main".into(),
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            commit_url:
                "https://github.com/acme/api/commit/0123456789abcdef0123456789abcdef01234567".into(),
            commit_title: Some("fix <!channel> & <https://evil|click>".into()),
            actor: "octocat".into(),
            workflow: "Deploy".into(),
            run_number: "42".into(),
            run_attempt: 2,
            run_url: Some("https://github.com/acme/api/actions/runs/7/attempts/2".into()),
            environment: Some("production".into()),
            environment_url: Some("https://api.example.com".into()),
            digest: Some("sha256:abc".into()),
            duration: Some(Duration::from_secs(192)),
            mentions: vec![
                Mention::Handle("oncall".into()),
                Mention::User("U0123ABCD".into()),
            ],
            now: 1_700_000_000,
            ..DeployInfo::default()
        }
    }

    #[test]
    fn hostile_commit_message_is_escaped_everywhere() {
        let r = render(&info(Status::Success));
        let s = serde_json::to_string(&r.body).unwrap();
        assert!(!s.contains("<!channel>"), "{s}");
        assert!(!s.contains("<https://evil"), "{s}");
        assert!(
            s.contains("fix &lt;!channel&gt; &amp; &lt;https://evil|click&gt;"),
            "{s}"
        );
    }

    #[test]
    fn success_has_colour_fields_and_no_mentions() {
        let r = render(&info(Status::Success));
        assert_eq!(r.body["attachments"][0]["color"], "#2eb886");
        assert_eq!(
            r.body["blocks"][0]["text"]["text"],
            "✅ Deployed acme/api to production"
        );
        let s = serde_json::to_string(&r.body).unwrap();
        assert!(!s.contains("<@U0123ABCD>"));
        assert!(s.contains("Deploy #42 (attempt 2)"));
        assert!(s.contains("3m 12s"));
        assert!(r.text_form.contains("Duration: 3m 12s"));
        assert!(!s.contains('\u{E000}'));
    }

    #[test]
    fn failure_mentions() {
        let r = render(&info(Status::Failure));
        assert!(
            r.body["text"]
                .as_str()
                .unwrap()
                .starts_with("\u{E000}oncall\u{E001} <@U0123ABCD> ❌")
        );
        assert!(r.text_form.contains("Mentions: @oncall <@U0123ABCD>"));
        assert_eq!(r.body["attachments"][0]["color"], "#d73a49");
        let reply = render_reply(&info(Status::Failure));
        assert!(
            reply.body["text"]
                .as_str()
                .unwrap()
                .contains("<@U0123ABCD>")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(3725)), "1h 2m");
        assert_eq!(ts_seconds("1712345678.123456"), Some(1_712_345_678.123_456));
    }
}
