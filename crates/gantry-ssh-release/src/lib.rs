//! `ssh-release`: release an artifact to one or many hosts over SSH in the Capistrano layout
//! (`releases/<id>`, `shared/`, an atomic `current` switch), with a race-free lock, a disk check
//! before upload, the artifact streamed into remote `tar -x` and checksummed on arrival, a
//! `.complete` marker, Python venv reuse, a health check with automatic rollback, keep-N
//! cleanup, a history file on each host and a structured deploy log.
//!
//! Flow: `inputs.rs` (table) → `config.rs` (`Config::resolve`) → `artifact.rs` (one local tar)
//! → `plan.rs` (plain data, printed by `--dry-run`) → `execute.rs` (the hosts, via `ssh.rs`
//! and the stage scripts in `scripts.rs`). This crate must not print to stdout except through
//! `step.console`, and must never put a secret in argv, a script or a log.

mod artifact;
mod config;
mod execute;
mod inputs;
mod plan;
mod scripts;
mod ssh;

pub use artifact::{ArtifactError, Prepared};
pub use config::{ArtifactSource, Config, Host, Mode, OnFailure};
pub use execute::{HostReport, StageRecord};
pub use inputs::{INPUTS, OUTPUTS};
pub use plan::{Plan, PlanHost};
pub use scripts::Probe;
pub use ssh::SshError;

use gantry_runtime::{ActionSpec, ErrorClass, Failure, InputError, Step};

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "ssh-release",
    title: "gantry ssh-release",
    description: "Release an artifact to hosts over SSH with atomic switch, health check, rollback and lock.",
    help: "Examples:\n  gantry ssh-release --hosts deploy@app1,deploy@app2 --artifact dist/app.tar.gz \\\n      --ssh-key-file ~/.ssh/deploy --known-hosts-file known_hosts --deploy-path apps/api \\\n      --restart-command 'sudo systemctl restart api' --health-url http://127.0.0.1:8080/healthz\n  gantry ssh-release --hosts deploy@app1 --deploy-path apps/api --rollback ...\n  gantry ssh-release --hosts deploy@app1 --deploy-path apps/api --rollback-to 20260101T120000Z ...\n  gantry ssh-release --hosts deploy@app1 --deploy-path apps/api --unlock ...\n  gantry ssh-release ... --dry-run      # connect read-only: keys, disk, lock; print the plan",
    inputs: INPUTS,
    outputs: OUTPUTS,
    icon: "server",
    color: "blue",
};

/// Errors of `ssh-release`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The artifact could not be prepared.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// SSH setup or connection.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The release failed on at least one host (the message lists them).
    #[error("{0}")]
    Failed(String),
    /// Cancelled (SIGTERM/SIGINT).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl Failure for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) => ErrorClass::Input,
            Self::Artifact(ArtifactError::Checksum { .. } | ArtifactError::Format { .. }) => {
                ErrorClass::Input
            }
            Self::Artifact(_) | Self::Ssh(_) | Self::Io { .. } => ErrorClass::Environment,
            Self::Failed(_) => ErrorClass::Failed,
            Self::Cancelled(_) => ErrorClass::Cancelled,
        }
    }

    fn hints(&self) -> Vec<String> {
        let text = self.to_string();
        let mut h = Vec::new();
        if text.contains("host key") {
            h.push("pin the host with `known-hosts: ${{ secrets.KNOWN_HOSTS }}` (output of `ssh-keyscan -p PORT HOST`, verified out of band) or `fingerprint: SHA256:…`".into());
        }
        if text.contains("refused the key") {
            h.push("add the public key to ~deploy/.ssh/authorized_keys on the host; `ssh-keygen -y -f key` prints it".into());
        }
        if text.contains("holds the lock") {
            h.push("serialize deploys with `concurrency: deploy-<env>` in the workflow; clear a stale lock with `unlock: true`".into());
        }
        h
    }
}

/// Runs the action.
pub async fn run(step: &mut Step) -> Result<(), Error> {
    let cfg = Config::resolve(step)?;
    let work = tempfile::Builder::new()
        .prefix("gantry-artifact-")
        .tempdir_in(step.github.temp_dir())
        .map_err(|source| Error::Io {
            what: "creating a temp dir".into(),
            source,
        })?;
    let art = match (&cfg.mode, &cfg.artifact) {
        (Mode::Deploy, Some(src)) => {
            let api = artifact::GitHubApi {
                api_url: step.github.api_url.clone(),
                repository: step.github.repository.clone(),
                run_id: step.github.run_id.clone(),
                token: cfg.github_token.clone(),
            };
            let expected = cfg.artifact_sha256.clone();
            let a = step
                .stage(
                    "artifact",
                    artifact::prepare(src, expected.as_deref(), work.path(), &api),
                )
                .await?;
            tracing::info!(
                "artifact {}: {} bytes ({} unpacked, {} entries), sha256 {}",
                a.source,
                a.size,
                a.unpacked_size,
                a.entries,
                a.sha256
            );
            Some(a)
        }
        _ => None,
    };
    let plan = Plan::build(&cfg, art.as_ref());
    let outcome = execute::execute(step, &cfg, art.as_ref(), &plan).await;

    // Outputs, summary and deploy log — also on failure.
    let ok: Vec<&str> = outcome
        .reports
        .iter()
        .filter(|r| {
            matches!(
                r.result.as_str(),
                "released" | "verified" | "unlocked" | "checked"
            ) || (cfg.mode == Mode::Rollback && r.result == "rolled-back")
        })
        .map(|r| r.host.as_str())
        .collect();
    let failed: Vec<&str> = outcome
        .reports
        .iter()
        .filter(|r| r.result == "failed" || (cfg.mode == Mode::Deploy && r.result == "rolled-back"))
        .map(|r| r.host.as_str())
        .collect();
    if let Some(id) = &outcome.release_id {
        step.outputs.set_always("release-id", id.clone());
    }
    if let Some(p) = &outcome.previous {
        step.outputs.set_always("previous-release-id", p.clone());
    }
    step.outputs.set_always("hosts-succeeded", ok.join(","));
    step.outputs.set_always("hosts-failed", failed.join(","));
    if !step.dry_run && cfg.mode != Mode::Unlock {
        let log = serde_json::json!({
            "action": "ssh-release",
            "mode": cfg.mode,
            "release_id": outcome.release_id,
            "previous_release_id": outcome.previous,
            "artifact": art,
            "verify_only": cfg.verify_only,
            "result": if outcome.error.is_none() { "success" } else { "failure" },
            "error": outcome.error.as_ref().map(ToString::to_string),
            "hosts": outcome.reports,
        });
        let name = outcome
            .release_id
            .clone()
            .unwrap_or_else(|| "rollback".into());
        let path = execute::deploy_log_path(step, &name);
        let text = serde_json::to_string_pretty(&log).unwrap_or_default();
        let text = step.console.masker().redact(&text);
        match step.write_file(&path, text.as_bytes()) {
            Ok(p) => step.outputs.set_always("deploy-log", p),
            Err(e) => tracing::warn!("cannot write the deploy log {}: {e}", path.display()),
        }
    }
    summary(step, &cfg, &outcome);
    match outcome.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn summary(step: &mut Step, cfg: &Config, outcome: &execute::Outcome) {
    let title = match cfg.mode {
        Mode::Deploy if cfg.verify_only => {
            format!("ssh-release: verified {} (no switch)", cfg.release_id)
        }
        Mode::Deploy => format!("ssh-release: {}", cfg.release_id),
        Mode::Rollback => "ssh-release: rollback".into(),
        Mode::Unlock => "ssh-release: unlock".into(),
    };
    let rows: Vec<Vec<String>> = outcome
        .reports
        .iter()
        .map(|r| {
            let icon = match r.result.as_str() {
                "released" | "verified" | "checked" | "unlocked" => "✅",
                "rolled-back" => "↩️",
                "failed" => "❌",
                _ => "➖",
            };
            let timings: Vec<String> = r
                .stages
                .iter()
                .map(|s| {
                    format!(
                        "{} {:.1}s{}",
                        s.stage,
                        s.seconds,
                        if s.ok { "" } else { " ✗" }
                    )
                })
                .collect();
            vec![
                r.host.clone(),
                format!("{icon} {}", r.result),
                r.previous.clone().unwrap_or_else(|| "—".into()),
                r.current.clone().unwrap_or_else(|| "—".into()),
                timings.join(", "),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    step.summary.heading(3, &title);
    step.summary.table(
        &["Host", "Result", "Before", "Now", "Stages", "Error"],
        &rows,
    );
}
