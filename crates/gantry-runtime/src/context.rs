//! The GitHub context: the `GITHUB_*` and `RUNNER_*` variables the actions need, and the event.
//!
//! Built from an [`Env`]; outside a runner the fields are empty and CLI flags may fill them in
//! (`--ref`, `--sha`, `--repository`). Paths are container paths inside a container action; see
//! [`GitHubContext::host_relative`] for outputs that later host steps must read.
//!
//! See: <https://docs.github.com/en/actions/reference/workflows-and-actions/variables>

use std::path::{Path, PathBuf};

use crate::Env;
use crate::event::Event;

/// Errors reading the context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// `GITHUB_EVENT_PATH` names a file that cannot be read or parsed.
    #[error("cannot read the event payload `{path}`: {reason}")]
    Event {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The runner context.
#[derive(Clone, Debug, Default)]
#[allow(missing_docs)] // field names are the documented variable names
pub struct GitHubContext {
    pub event_name: String,
    pub event_path: Option<PathBuf>,
    pub git_ref: String,
    pub ref_name: String,
    pub ref_type: String,
    pub sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub repository: String,
    pub repository_owner: String,
    pub repository_id: String,
    pub actor: String,
    pub triggering_actor: String,
    pub workflow: String,
    pub workflow_ref: String,
    pub job: String,
    pub run_id: String,
    pub run_number: String,
    pub run_attempt: String,
    pub server_url: String,
    pub api_url: String,
    pub graphql_url: String,
    pub workspace: Option<PathBuf>,
    pub action: String,
    pub runner_os: String,
    pub runner_arch: String,
    pub runner_temp: Option<PathBuf>,
    pub runner_name: String,
    pub runner_environment: String,
    /// The parsed event payload.
    pub event: Event,
}

impl GitHubContext {
    /// Reads the context from the environment and the event file. A missing event file gives an
    /// empty payload (as `@actions/github`); an unreadable or invalid one is an error.
    pub fn from_env(env: &Env) -> Result<Self, ContextError> {
        let s = |k: &str| env.get(k).unwrap_or_default().to_string();
        let event_path = env.get("GITHUB_EVENT_PATH").map(PathBuf::from);
        let event_name = s("GITHUB_EVENT_NAME");
        let payload = match &event_path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|e| ContextError::Event {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?;
                serde_json::from_str(&text).map_err(|e| ContextError::Event {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            _ => serde_json::Value::Object(Default::default()),
        };
        Ok(Self {
            event: Event::parse(&event_name, payload),
            event_name,
            event_path,
            git_ref: s("GITHUB_REF"),
            ref_name: s("GITHUB_REF_NAME"),
            ref_type: s("GITHUB_REF_TYPE"),
            sha: s("GITHUB_SHA"),
            head_ref: s("GITHUB_HEAD_REF"),
            base_ref: s("GITHUB_BASE_REF"),
            repository: s("GITHUB_REPOSITORY"),
            repository_owner: s("GITHUB_REPOSITORY_OWNER"),
            repository_id: s("GITHUB_REPOSITORY_ID"),
            actor: s("GITHUB_ACTOR"),
            triggering_actor: s("GITHUB_TRIGGERING_ACTOR"),
            workflow: s("GITHUB_WORKFLOW"),
            workflow_ref: s("GITHUB_WORKFLOW_REF"),
            job: s("GITHUB_JOB"),
            run_id: s("GITHUB_RUN_ID"),
            run_number: s("GITHUB_RUN_NUMBER"),
            run_attempt: s("GITHUB_RUN_ATTEMPT"),
            server_url: env
                .get("GITHUB_SERVER_URL")
                .unwrap_or("https://github.com")
                .to_string(),
            api_url: env
                .get("GITHUB_API_URL")
                .unwrap_or("https://api.github.com")
                .to_string(),
            graphql_url: env
                .get("GITHUB_GRAPHQL_URL")
                .unwrap_or("https://api.github.com/graphql")
                .to_string(),
            workspace: env.get("GITHUB_WORKSPACE").map(PathBuf::from),
            action: s("GITHUB_ACTION"),
            runner_os: s("RUNNER_OS"),
            runner_arch: s("RUNNER_ARCH"),
            runner_temp: env.get("RUNNER_TEMP").map(PathBuf::from),
            runner_name: s("RUNNER_NAME"),
            runner_environment: s("RUNNER_ENVIRONMENT"),
        })
    }

    /// `owner` and `repo` from `GITHUB_REPOSITORY`.
    pub fn repo(&self) -> Option<(&str, &str)> {
        self.repository.split_once('/')
    }

    /// The run's web URL, `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`,
    /// with `/attempts/N` when N > 1.
    pub fn run_url(&self) -> Option<String> {
        if self.repository.is_empty() || self.run_id.is_empty() {
            return None;
        }
        let base = format!(
            "{}/{}/actions/runs/{}",
            self.server_url.trim_end_matches('/'),
            self.repository,
            self.run_id
        );
        match self.run_attempt.parse::<u32>() {
            Ok(n) if n > 1 => Some(format!("{base}/attempts/{n}")),
            _ => Some(base),
        }
    }

    /// The directory for scratch files: `RUNNER_TEMP` if set, else the system temp dir.
    pub fn temp_dir(&self) -> PathBuf {
        self.runner_temp.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// A path a later **host** step can use for a file we wrote: relative to the workspace when the
    /// file is inside it (host steps run with the workspace as working directory, and
    /// `actions/upload-artifact` resolves relative paths there), else unchanged.
    ///
    /// See: reference/runtime-and-slack.md A1.3 (outputs are not translated back by the runner).
    pub fn host_relative(&self, path: &Path) -> String {
        if let Some(ws) = &self.workspace
            && let Ok(rel) = path.strip_prefix(ws)
        {
            return rel.display().to_string();
        }
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_and_builds_run_url() {
        let env = Env::from_pairs([
            ("GITHUB_REPOSITORY", "acme/api"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_WORKSPACE", "/github/workspace"),
        ]);
        let c = GitHubContext::from_env(&env).unwrap();
        assert_eq!(c.repo(), Some(("acme", "api")));
        assert_eq!(
            c.run_url().as_deref(),
            Some("https://github.com/acme/api/actions/runs/42/attempts/2")
        );
        assert_eq!(
            c.host_relative(Path::new("/github/workspace/out/log.json")),
            "out/log.json"
        );
        assert_eq!(c.host_relative(Path::new("/tmp/x")), "/tmp/x");
    }

    #[test]
    fn bad_event_file_is_an_error() {
        let p = std::env::temp_dir().join(format!("gantry-ev-{}.json", std::process::id()));
        std::fs::write(&p, "{not json").unwrap();
        let env = Env::from_pairs([
            ("GITHUB_EVENT_PATH", p.to_str().unwrap()),
            ("GITHUB_EVENT_NAME", "push"),
        ]);
        assert!(GitHubContext::from_env(&env).is_err());
        std::fs::remove_file(p).unwrap();
    }
}
