//! GitHub Deployments through `octocrab`: create a deployment for an environment, set its status
//! (`in_progress`, `success`, `failure`, `error`), find the one this run created, and mark the
//! deployment it superseded `inactive`, so the repository page and pull requests show what runs
//! where.
//!
//! The API base is `GITHUB_API_URL` (GitHub Enterprise Server, tests). This module must not print
//! anything or know about Slack; callers decide whether a failure is fatal.
//!
//! See: <https://docs.github.com/en/rest/deployments/deployments> and
//! <https://docs.github.com/en/rest/deployments/statuses> (`auto_inactive` only covers
//! non-production, non-transient environments, so production needs the explicit inactive step).

use octocrab::Octocrab;
use octocrab::models::repos::DeploymentStatusState;
use serde_json::{Value, json};

/// Errors talking to the Deployments API.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// Bad settings (repository name, API URL).
    #[error("GitHub deployments: {0}")]
    Config(String),
    /// The API refused or failed.
    #[error("GitHub deployments: {action} failed: {reason}")]
    Api {
        /// What we tried.
        action: String,
        /// Why (status and GitHub's message).
        reason: String,
    },
}

/// The state of a deployment status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Deploy running.
    InProgress,
    /// Deployed.
    Success,
    /// Deploy failed.
    Failure,
    /// Deploy errored (we use it for cancelled).
    Error,
    /// Superseded.
    Inactive,
}

impl State {
    fn octo(self) -> DeploymentStatusState {
        match self {
            Self::InProgress => DeploymentStatusState::InProgress,
            Self::Success => DeploymentStatusState::Success,
            Self::Failure => DeploymentStatusState::Failure,
            Self::Error => DeploymentStatusState::Error,
            Self::Inactive => DeploymentStatusState::Inactive,
        }
    }
}

/// A new deployment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NewDeployment {
    /// Ref or SHA to deploy.
    pub git_ref: String,
    /// Environment name.
    pub environment: String,
    /// Description.
    pub description: String,
    /// Whether the environment is production (`production`, `prod`, `live`).
    pub production: bool,
    /// The workflow run id recorded in the payload (to find the deployment again).
    pub run_id: String,
}

/// A status to set.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NewStatus {
    /// State.
    pub state: State,
    /// Environment URL.
    pub environment_url: Option<String>,
    /// Log URL (the run).
    pub log_url: Option<String>,
    /// Description (≤ 140 characters).
    pub description: String,
}

/// A client for one repository's deployments.
#[derive(Debug)]
pub struct Deployments {
    octo: Octocrab,
    owner: String,
    repo: String,
}

fn api_err(action: &str, e: &octocrab::Error) -> DeploymentError {
    let reason = match e {
        octocrab::Error::GitHub { source, .. } => {
            let hint = match source.status_code.as_u16() {
                403 | 404 => {
                    " (does the token have `deployments: write` permission? add `permissions: deployments: write` to the job)"
                }
                _ => "",
            };
            format!(
                "HTTP {}: {}{hint}",
                source.status_code.as_u16(),
                source.message
            )
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
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
    };
    DeploymentError::Api {
        action: action.to_string(),
        reason,
    }
}

/// Whether an environment name means production.
pub fn is_production(environment: &str) -> bool {
    matches!(
        environment.to_ascii_lowercase().as_str(),
        "production" | "prod" | "live" | "prd"
    )
}

impl Deployments {
    /// A client for `owner/repo` at `api_url` (`GITHUB_API_URL`) with `token`, built on the
    /// crate's [`GitHub`](crate::GitHub) client (timeouts, base URI checks).
    pub fn new(
        api_url: &str,
        token: &gantry_runtime::Secret,
        repository: &str,
    ) -> Result<Self, DeploymentError> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty())
            .ok_or_else(|| {
                DeploymentError::Config(format!(
                    "`{repository}` is not owner/name (GITHUB_REPOSITORY)"
                ))
            })?;
        let gh = crate::GitHub::new(api_url, Some(token))
            .map_err(|e| DeploymentError::Config(e.to_string()))?;
        Ok(Self {
            octo: gh.octocrab().clone(),
            owner: owner.to_string(),
            repo: repo.to_string(),
        })
    }

    /// Creates a deployment (no auto-merge, no required status checks: the workflow already
    /// decided to deploy). Returns its id.
    pub async fn create(&self, d: &NewDeployment) -> Result<u64, DeploymentError> {
        let dep = self
            .octo
            .repos(&self.owner, &self.repo)
            .deployments()
            .create(d.git_ref.clone())
            .environment(d.environment.clone())
            .description(d.description.clone())
            .auto_merge(false)
            .required_contexts(Vec::<String>::new())
            .production_environment(d.production)
            .transient_environment(false)
            .payload(json!({ "gantry": { "run_id": d.run_id } }))
            .send()
            .await
            .map_err(|e| api_err("create deployment", &e))?;
        Ok(dep.id.0)
    }

    /// The deployment this run created for `sha` in `environment`, if any (newest first).
    pub async fn find_for_run(
        &self,
        sha: &str,
        environment: &str,
        run_id: &str,
    ) -> Result<Option<u64>, DeploymentError> {
        let page = self
            .octo
            .repos(&self.owner, &self.repo)
            .deployments()
            .list()
            .sha(sha.to_string())
            .environment(environment.to_string())
            .per_page(30u8)
            .send()
            .await
            .map_err(|e| api_err("list deployments", &e))?;
        Ok(page
            .items
            .iter()
            .find(|d| d.payload.pointer("/gantry/run_id").and_then(Value::as_str) == Some(run_id))
            .map(|d| d.id.0))
    }

    /// Sets a deployment's status.
    pub async fn set_status(&self, id: u64, s: &NewStatus) -> Result<(), DeploymentError> {
        let desc: String = s.description.chars().take(140).collect();
        let repos = self.octo.repos(&self.owner, &self.repo);
        let deployments = repos.deployments();
        let statuses = deployments.statuses(id);
        let mut b = statuses.create(s.state.octo()).description(desc);
        if let Some(u) = &s.environment_url {
            b = b.environment_url(u.clone());
        }
        if let Some(u) = &s.log_url {
            b = b.log_url(u.clone());
        }
        b.send()
            .await
            .map_err(|e| api_err(&format!("set deployment {id} status"), &e))?;
        Ok(())
    }

    /// Marks older deployments of `environment` whose latest status is `success` as `inactive`
    /// (the ones `current` superseded); looks at the newest 10. Returns the ids changed.
    pub async fn mark_superseded(
        &self,
        environment: &str,
        current: u64,
    ) -> Result<Vec<u64>, DeploymentError> {
        let page = self
            .octo
            .repos(&self.owner, &self.repo)
            .deployments()
            .list()
            .environment(environment.to_string())
            .per_page(10u8)
            .send()
            .await
            .map_err(|e| api_err("list deployments", &e))?;
        let mut changed = Vec::new();
        for d in page.items.iter().filter(|d| d.id.0 != current) {
            let statuses = self
                .octo
                .repos(&self.owner, &self.repo)
                .deployments()
                .statuses(d.id)
                .list()
                .per_page(1u8)
                .send()
                .await
                .map_err(|e| api_err(&format!("list statuses of deployment {}", d.id.0), &e))?;
            if statuses.items.first().map(|s| s.state) == Some(DeploymentStatusState::Success) {
                self.set_status(
                    d.id.0,
                    &NewStatus {
                        state: State::Inactive,
                        environment_url: None,
                        log_url: None,
                        description: format!("Superseded by deployment {current}"),
                    },
                )
                .await?;
                changed.push(d.id.0);
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_names() {
        assert!(is_production("Production"));
        assert!(is_production("prod"));
        assert!(!is_production("staging"));
    }

    #[tokio::test]
    async fn bad_repository_is_a_config_error() {
        let e = Deployments::new(
            "http://127.0.0.1:1",
            &gantry_runtime::Secret::new("t"),
            "noslash",
        )
        .unwrap_err();
        assert!(e.to_string().contains("owner/name"), "{e}");
    }
}
