//! The event payload at `GITHUB_EVENT_PATH`, parsed into typed events.
//!
//! Only the fields gantry uses are typed, all optional (payloads differ between GitHub.com, GHES
//! versions and `act`); the raw JSON is always kept in [`Event::payload`], and unknown events are
//! [`EventKind::Other`].
//!
//! See: <https://docs.github.com/en/webhooks/webhook-events-and-payloads>

use serde::Deserialize;
use serde_json::Value;

/// A user or organisation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    /// Login name.
    pub login: String,
    /// Numeric id.
    pub id: u64,
    /// Profile URL.
    pub html_url: String,
}

/// A licence as the API reports it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct License {
    /// SPDX identifier (`MIT`).
    pub spdx_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

/// A repository object (event payload or REST API).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Repository {
    /// Numeric id.
    pub id: u64,
    /// Short name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// Web URL.
    pub html_url: String,
    /// Description.
    pub description: Option<String>,
    /// Default branch name.
    pub default_branch: Option<String>,
    /// Licence.
    pub license: Option<License>,
    /// Owner.
    pub owner: Option<Account>,
    /// Topics.
    pub topics: Vec<String>,
    /// Whether private.
    pub private: bool,
}

/// A git author or committer line.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Person {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// GitHub login, when known.
    pub username: Option<String>,
}

/// A commit in a push payload.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Commit {
    /// Full SHA.
    pub id: String,
    /// Message.
    pub message: String,
    /// ISO 8601 timestamp.
    pub timestamp: String,
    /// Web URL.
    pub url: String,
    /// Author.
    pub author: Person,
}

/// `push` payload.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PushEvent {
    /// Full ref pushed.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// SHA before.
    pub before: String,
    /// SHA after.
    pub after: String,
    /// For tag pushes of a branch head, the branch.
    pub base_ref: Option<String>,
    /// Commits pushed.
    pub commits: Vec<Commit>,
    /// The head commit.
    pub head_commit: Option<Commit>,
    /// Repository.
    pub repository: Option<Repository>,
    /// Sender.
    pub sender: Option<Account>,
}

/// One side of a pull request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PullRequestRef {
    /// Branch name.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// `owner:branch`.
    pub label: String,
    /// Commit SHA.
    pub sha: String,
    /// Repository.
    pub repo: Option<Repository>,
}

/// A pull request object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    /// Number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Web URL.
    pub html_url: String,
    /// Head side.
    pub head: PullRequestRef,
    /// Base side.
    pub base: PullRequestRef,
    /// Author.
    pub user: Option<Account>,
    /// Draft.
    pub draft: bool,
    /// Merged.
    pub merged: bool,
}

/// `pull_request` / `pull_request_target` payload.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`…
    pub action: String,
    /// PR number.
    pub number: u64,
    /// The pull request.
    pub pull_request: PullRequest,
    /// Repository.
    pub repository: Option<Repository>,
}

/// A release object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Release {
    /// Tag.
    pub tag_name: String,
    /// Title.
    pub name: Option<String>,
    /// Web URL.
    pub html_url: String,
    /// Pre-release.
    pub prerelease: bool,
    /// Draft.
    pub draft: bool,
    /// Target branch or SHA.
    pub target_commitish: String,
}

/// `release` payload.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseEvent {
    /// `published`, `created`…
    pub action: String,
    /// The release.
    pub release: Release,
    /// Repository.
    pub repository: Option<Repository>,
}

/// `workflow_dispatch` payload.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkflowDispatchEvent {
    /// Inputs given.
    pub inputs: serde_json::Map<String, Value>,
    /// Ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Repository.
    pub repository: Option<Repository>,
}

/// A typed event.
#[derive(Clone, Debug)]
pub enum EventKind {
    /// `push`.
    Push(Box<PushEvent>),
    /// `pull_request`.
    PullRequest(Box<PullRequestEvent>),
    /// `pull_request_target`.
    PullRequestTarget(Box<PullRequestEvent>),
    /// `release`.
    Release(Box<ReleaseEvent>),
    /// `schedule` (payload has only `schedule`).
    Schedule {
        /// The cron line.
        cron: Option<String>,
    },
    /// `workflow_dispatch`.
    WorkflowDispatch(Box<WorkflowDispatchEvent>),
    /// Any other event (raw JSON in [`Event::payload`]).
    Other,
}

/// An event: its name, typed view and raw payload.
#[derive(Clone, Debug)]
pub struct Event {
    /// `GITHUB_EVENT_NAME`.
    pub name: String,
    /// Typed view.
    pub kind: EventKind,
    /// Raw payload (`{}` when no file).
    pub payload: Value,
}

impl Default for Event {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: EventKind::Other,
            payload: Value::Object(Default::default()),
        }
    }
}

impl Event {
    /// Parses a payload for the named event. A payload that does not fit the typed shape keeps the
    /// raw JSON as [`EventKind::Other`] rather than failing.
    pub fn parse(name: &str, payload: Value) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<Box<T>> {
            serde_json::from_value(v.clone()).ok().map(Box::new)
        }
        let kind = match name {
            "push" => typed(&payload).map(EventKind::Push),
            "pull_request" => typed(&payload).map(EventKind::PullRequest),
            "pull_request_target" => typed(&payload).map(EventKind::PullRequestTarget),
            "release" => typed(&payload).map(EventKind::Release),
            "workflow_dispatch" => typed(&payload).map(EventKind::WorkflowDispatch),
            "schedule" => Some(EventKind::Schedule {
                cron: payload
                    .get("schedule")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            _ => None,
        }
        .unwrap_or(EventKind::Other);
        Self {
            name: name.to_string(),
            kind,
            payload,
        }
    }

    /// The pull request, for `pull_request` and `pull_request_target`.
    pub fn pull_request(&self) -> Option<&PullRequest> {
        match &self.kind {
            EventKind::PullRequest(e) | EventKind::PullRequestTarget(e) => Some(&e.pull_request),
            _ => None,
        }
    }

    /// The payload's `repository` object, whatever the event.
    pub fn repository(&self) -> Option<Repository> {
        self.payload
            .get("repository")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
    }

    /// A value by JSON pointer (`/pull_request/head/sha`).
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        self.payload.pointer(pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_and_raw() {
        let e = Event::parse(
            "pull_request",
            json!({"action":"opened","number":5,"pull_request":{"number":5,"title":"Fix","head":{"ref":"feat","sha":"abc"},"base":{"ref":"main","sha":"def"}},"repository":{"name":"r","full_name":"o/r","default_branch":"main"}}),
        );
        let pr = e.pull_request().unwrap();
        assert_eq!(pr.head.git_ref, "feat");
        assert_eq!(
            e.repository().unwrap().default_branch.as_deref(),
            Some("main")
        );
        let odd = Event::parse("push", json!({"commits": "not a list"}));
        assert!(matches!(odd.kind, EventKind::Other));
        assert!(matches!(
            Event::parse("issues", json!({})).kind,
            EventKind::Other
        ));
        assert!(matches!(
            Event::parse("schedule", json!({"schedule":"0 0 * * *"})).kind,
            EventKind::Schedule { cron: Some(_) }
        ));
    }
}
