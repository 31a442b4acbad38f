//! [`Step`]: everything an action receives for one run — inputs, outputs, the console, the
//! summary, the GitHub context, cancellation and the clock.
//!
//! The binary builds it, passes `&mut Step` to the action, then calls [`Step::finish`], which
//! writes outputs (all of them on success, only the `always` ones on failure), the summary, and
//! gives workspace files back to their owner.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

use crate::action::ActionSpec;
use crate::context::{ContextError, GitHubContext};
use crate::log::Timings;
use crate::{Cancel, Console, Env, InputError, Inputs, OutputFormat, Outputs, Summary};

/// Errors building a step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Bad context.
    #[error(transparent)]
    Context(#[from] ContextError),
}

/// One run of one action.
#[derive(Debug)]
pub struct Step {
    /// The action's tables.
    pub spec: &'static ActionSpec,
    /// The environment snapshot.
    pub env: Env,
    /// Input reader.
    pub inputs: Inputs,
    /// The one stdout writer.
    pub console: Console,
    /// Outputs collected so far.
    pub outputs: Outputs,
    /// The step summary being built.
    pub summary: Summary,
    /// The GitHub context.
    pub github: GitHubContext,
    /// Cancellation (SIGTERM/SIGINT).
    pub cancel: Cancel,
    /// `--dry-run` / `dry-run: true`.
    pub dry_run: bool,
    /// How outputs are shown.
    pub format: OutputFormat,
    /// Stage timings.
    pub timings: Timings,
    files: Vec<PathBuf>,
    started: Instant,
}

impl Step {
    /// Builds a step. `flags` are the CLI values by input name; `dry_run_flag` is the global flag.
    pub fn new(
        spec: &'static ActionSpec,
        env: Env,
        flags: BTreeMap<String, Vec<String>>,
        console: Console,
        cancel: Cancel,
        format: OutputFormat,
    ) -> Result<Self, StepError> {
        let inputs = Inputs::new(Some(spec), flags, env.clone(), console.clone());
        let dry_run = inputs.bool("dry-run")?;
        let github = GitHubContext::from_env(&env)?;
        Ok(Self {
            spec,
            env,
            inputs,
            console,
            outputs: Outputs::new(),
            summary: Summary::new(),
            github,
            cancel,
            dry_run,
            format,
            timings: Timings::default(),
            files: Vec::new(),
            started: Instant::now(),
        })
    }

    /// "Now": `SOURCE_DATE_EPOCH` when set (reproducible builds), else the system clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self.env.source_date_epoch() {
            Some(secs) => Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now),
            None => Utc::now(),
        }
    }

    /// Runs `f` inside a log group.
    pub fn group<T>(&self, title: &str, f: impl FnOnce() -> T) -> T {
        self.console.group(title);
        let out = f();
        self.console.end_group();
        out
    }

    /// Runs a future as a named, timed stage: logged with its duration and kept for the summary.
    pub async fn stage<F: Future>(&mut self, name: &str, fut: F) -> F::Output {
        let start = Instant::now();
        tracing::info!("{name}…");
        let out = fut.await;
        let d = start.elapsed();
        tracing::info!("{name}: done in {}", crate::duration::human(d));
        self.timings.record(name, d);
        out
    }

    /// Time since the step started.
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Writes a file (creating parent directories) and remembers it for ownership fix-up. Returns
    /// the path a later host step can use (relative to the workspace when inside it).
    pub fn write_file(&mut self, path: &Path, contents: &[u8]) -> std::io::Result<String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, contents)?;
        self.files.push(path.to_path_buf());
        Ok(self.github.host_relative(path))
    }

    /// Remembers a path written by other means for the ownership fix-up.
    pub fn track_file(&mut self, path: &Path) {
        self.files.push(path.to_path_buf());
    }

    /// A directory under the workspace for files later steps read (`.gantry/<action>`), or the
    /// current directory's `.gantry/<action>` outside a runner.
    pub fn output_dir(&self) -> PathBuf {
        let base = self
            .github
            .workspace
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        base.join(".gantry").join(self.spec.name)
    }

    /// Writes outputs, the summary, and fixes ownership. Called once by the binary.
    pub fn finish(&mut self, success: bool) -> Result<(), crate::files::FileCommandError> {
        let res = self
            .outputs
            .flush(&self.env, &self.console, self.format, success);
        if let Some(path) = self.env.get("GITHUB_STEP_SUMMARY")
            && let Err(e) = self
                .summary
                .write_to(Path::new(path), self.console.masker())
        {
            tracing::warn!("cannot write the step summary: {e}");
        }
        if let Some(ws) = self.github.workspace.clone() {
            for f in &self.files {
                if let Err(e) = crate::ownership::give_to_workspace_owner(f, &ws) {
                    tracing::warn!("cannot give {} to the workspace owner: {e}", f.display());
                }
            }
        }
        res
    }
}

impl Step {
    /// Every input of the action as resolved (flag, `INPUT_*` or default), secrets as `***`.
    /// What `--dry-run` prints before an action has a richer plan.
    pub fn resolved_inputs(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for i in self.spec.all_inputs() {
            let v = match self.inputs.string(i.name) {
                None => serde_json::Value::Null,
                Some(_) if i.secret => serde_json::Value::String("***".into()),
                Some(v) => serde_json::Value::String(v),
            };
            map.insert(i.name.to_string(), v);
        }
        serde_json::Value::Object(map)
    }

    /// Prints a plan (or resolved config) for `--dry-run` in a log group, as pretty JSON, and puts
    /// it in the summary.
    pub fn print_plan(&mut self, title: &str, plan: &serde_json::Value) {
        let text = serde_json::to_string_pretty(plan).unwrap_or_default();
        self.console.group(title);
        self.console.info(&text);
        self.console.end_group();
        self.summary
            .heading(3, &format!("{} (dry run)", self.spec.name));
        self.summary.code("json", &text);
    }
}
