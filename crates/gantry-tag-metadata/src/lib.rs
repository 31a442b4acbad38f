//! `tag-metadata`: compute image tags, OCI labels and annotations, and build args from the git and
//! GitHub context, with docker/metadata-action's inputs, outputs and rules.
//!
//! This file owns the run: inputs → [`Config`] → context (event payload, the GitHub API through
//! `gantry-github`, or the checkout for `context: git`) → the pure computation in [`meta`] and
//! [`labels`] → outputs, bake files under the workspace, env exports, log groups and the step
//! summary. It must not run programs; the only network is the GitHub API.

pub mod config;
pub mod csv;
pub mod expr;
pub mod git;
pub mod inputs;
pub mod labels;
pub mod meta;
pub mod moment;
pub mod outputs;
pub mod tags;
#[cfg(test)]
mod tests;
pub mod version;

use chrono::{DateTime, SubsecRound, Utc};
use gantry_github::{ApiError, GitHub, RepoInfo};
use gantry_runtime::{ErrorClass, Failure, InputError, Step};
use serde_json::Value;

pub use config::Config;
pub use inputs::{ACTION, INPUTS, OUTPUTS};

use config::ContextSource;
use meta::{MetaContext, MetaError};

/// Errors of `tag-metadata`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A rule, expression or entry failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The repository API call failed.
    #[error("cannot read the repository from the GitHub API: {source}")]
    Api {
        /// The API error (names the URL).
        #[source]
        source: ApiError,
    },
    /// `context: git` cannot read the checkout.
    #[error("context: git: {0}")]
    Git(#[from] git::GitError),
    /// The job was cancelled (SIGTERM/SIGINT) while waiting for the API.
    #[error("cancelled while waiting for the GitHub API")]
    Cancelled,
    /// A bake file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Failure for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) | Self::Meta(_) => ErrorClass::Input,
            Self::Api { .. } | Self::Git(_) | Self::Write { .. } => ErrorClass::Environment,
            Self::Cancelled => ErrorClass::Cancelled,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            Self::Api { source } => {
                let mut h = vec![
                    "set `repo-api-fallback: true` to use the event payload's repository data when the API is unreachable".to_string(),
                ];
                if matches!(source.status(), Some(401 | 403 | 404)) {
                    h.push("check `github-token` and the job's `permissions: contents: read`".into());
                }
                h
            }
            Self::Meta(MetaError::Expr { .. }) => vec![
                "expressions use Handlebars syntax: quote date formats and zones, e.g. {{date 'YYYYMMDD' tz='Europe/Paris'}}".into(),
            ],
            _ => Vec::new(),
        }
    }
}

/// The run context after overrides, API calls and fallbacks.
#[derive(Clone, Debug)]
struct RunContext {
    meta: MetaContext,
    repo: RepoInfo,
    repo_tags: Option<Vec<String>>,
    commit_date_source: &'static str,
}

fn payload_str(payload: &Value, pointer: &str) -> Option<String> {
    match payload.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        v => Some(v.to_string()),
    }
}

/// Runs one API call as a timed stage that a SIGTERM/SIGINT interrupts.
async fn api_call<T>(
    step: &mut Step,
    name: &str,
    fut: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<Result<T, ApiError>, Error> {
    let cancel = step.cancel.clone();
    tokio::select! {
        r = step.stage(name, fut) => Ok(r),
        () = cancel.cancelled() => Err(Error::Cancelled),
    }
}

/// Repository data from the event payload (for `repo-api-fallback`).
fn repo_from_payload(payload: &Value) -> RepoInfo {
    payload
        .get("repository")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

async fn build_context(step: &mut Step, cfg: &Config) -> Result<RunContext, Error> {
    let gh = step.github.clone();
    let event_name = cfg
        .event_name
        .clone()
        .unwrap_or_else(|| gh.event_name.clone());
    let payload = gh.event.payload.clone();
    let now = step.now().trunc_subsecs(3);
    let (mut git_ref, mut sha, git_date) = match cfg.context {
        ContextSource::Workflow => (
            cfg.git_ref.clone().unwrap_or_else(|| gh.git_ref.clone()),
            cfg.sha.clone().unwrap_or_else(|| gh.sha.clone()),
            None,
        ),
        ContextSource::Git => {
            let ws = gh
                .workspace
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from("."));
            let g = git::context(&ws)?;
            (
                cfg.git_ref.clone().unwrap_or(g.git_ref),
                cfg.sha.clone().unwrap_or(g.sha),
                g.commit_date,
            )
        }
    };
    if cfg.context == ContextSource::Workflow {
        git_ref = meta::workflow_ref(&event_name, &git_ref, &payload);
    }
    if cfg.pr_head_sha
        && event_name.contains("pull_request")
        && let Some(h) = payload_str(&payload, "/pull_request/head/sha")
    {
        sha = h;
    }
    let head_ref =
        payload_str(&payload, "/pull_request/head/ref").unwrap_or_else(|| gh.head_ref.clone());
    let repository = cfg
        .repository
        .clone()
        .unwrap_or_else(|| gh.repository.clone());
    let owner_repo = repository
        .split_once('/')
        .map(|(o, r)| (o.to_string(), r.to_string()));
    let client = match &owner_repo {
        Some(_) => Some(
            GitHub::new(&gh.api_url, cfg.token.as_ref()).map_err(|source| Error::Api { source })?,
        ),
        None => None,
    };

    // Repository data: GET /repos/{owner}/{repo} (upstream fails when this fails).
    let repo = match (&client, &owner_repo) {
        (Some(c), Some((o, r))) => {
            let res = api_call(step, "repository API", c.repository(o, r)).await?;
            match res {
                Ok(info) => info,
                Err(source) if cfg.repo_api_fallback => {
                    step.console.warning(
                        "Repository API unreachable",
                        &format!("{source}; using the event payload's repository data (repo-api-fallback)"),
                    );
                    repo_from_payload(&payload)
                }
                Err(source) => return Err(Error::Api { source }),
            }
        }
        _ => {
            if step.env.is_actions() {
                step.console.warning(
                    "No repository",
                    "GITHUB_REPOSITORY is not set; the title, description, url, source and licenses labels are empty",
                );
            } else {
                tracing::info!("no repository given (--repository); skipping the GitHub API");
            }
            RepoInfo::default()
        }
    };

    // Commit date: payload commits[] by id, then head_commit, then the API, then now.
    let mut commit_date_source = "now";
    let mut commit_date: Option<DateTime<Utc>> = None;
    if cfg.uses_commit_date() {
        if let Some(d) = git_date {
            commit_date = Some(d);
            commit_date_source = "git";
        }
        if commit_date.is_none()
            && cfg.context == ContextSource::Workflow
            && let Some((d, source)) = meta::payload_commit_date(&payload, &sha)
        {
            commit_date = Some(d);
            commit_date_source = source;
        }
        if commit_date.is_none()
            && !sha.is_empty()
            && let (Some(c), Some((o, r))) = (&client, &owner_repo)
        {
            match api_call(step, "commit API", c.commit(o, r, &sha)).await? {
                Ok(info) => {
                    if let Some(d) = info.committer_date {
                        commit_date = Some(d);
                        commit_date_source = "commits API";
                    }
                }
                Err(e) => step
                    .console
                    .debug(&format!("Failed to get commit date from GitHub API: {e}")),
            }
        }
    }

    let repo_tags = match (cfg.flavor.latest, &client, &owner_repo) {
        (tags::Latest::HighestSemver, Some(c), Some((o, r))) => Some(
            api_call(step, "repository tags API", c.tag_names(o, r))
                .await?
                .map_err(|source| Error::Api { source })?,
        ),
        _ => None,
    };

    Ok(RunContext {
        meta: MetaContext {
            event_name,
            git_ref,
            sha,
            payload,
            commit_date: commit_date.unwrap_or(now),
            now,
            short_sha_length: cfg.short_sha_length.clone(),
            head_ref,
            api_default_branch: repo.default_branch.clone().unwrap_or_default(),
            strict: cfg.strict,
        },
        repo,
        repo_tags,
        commit_date_source,
    })
}

/// Runs the action.
pub async fn run(step: &mut Step) -> Result<(), Error> {
    let cfg = Config::resolve(&step.inputs, &step.env)?;
    let rc = build_context(step, &cfg).await?;
    let ctx = &rc.meta;

    step.console.group("Context info");
    step.console.info(&format!("eventName: {}", ctx.event_name));
    step.console.info(&format!("sha: {}", ctx.sha));
    step.console.info(&format!("ref: {}", ctx.git_ref));
    step.console
        .info(&format!("workflow: {}", step.github.workflow));
    step.console.info(&format!("actor: {}", step.github.actor));
    step.console
        .info(&format!("runNumber: {}", step.github.run_number));
    step.console.info(&format!("runId: {}", step.github.run_id));
    step.console.info(&format!(
        "commitDate: {} ({})",
        moment::iso_string(ctx.commit_date),
        rc.commit_date_source
    ));
    step.console.end_group();
    step.console.group("Processing tags input");
    for t in &cfg.tags {
        step.console.info(&t.canonical());
    }
    step.console.end_group();

    let result = outputs::Result::compute(&cfg, &rc.meta, &rc.repo, rc.repo_tags.as_deref())?;
    for w in &result.computed.warnings {
        step.console.warning("tag-metadata", w);
    }
    if step.dry_run {
        let plan = result.plan(&cfg);
        step.print_plan("tag-metadata plan (dry run: no outputs, no files)", &plan);
        return Ok(());
    }
    outputs::publish(step, &cfg, &result)
}
