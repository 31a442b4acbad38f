//! [`TestContext`]: run the real `gantry` binary the way the runner does, in a scrubbed
//! environment, and read back what it wrote.
//!
//! Nothing from the developer's or CI's environment leaks in: the child starts from an empty
//! environment plus `PATH`, a temp `HOME` and `TMPDIR`. In runner mode (the default) it gets
//! `GITHUB_ACTIONS=true`, fresh `GITHUB_OUTPUT`/`GITHUB_ENV`/`GITHUB_PATH`/`GITHUB_STEP_SUMMARY`
//! files, a workspace directory and, when set, an event file; inputs become `INPUT_<NAME>` with
//! hyphens kept, exactly as the runner passes them.

#![allow(clippy::disallowed_methods)] // test harness: spawns the binary and reads PATH directly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gantry_runtime::files::parse_runner_file;

/// Path of the `gantry` binary under test: `GANTRY_BIN`, else `target/<profile>/gantry` next to
/// the test executable's `deps/` directory.
pub fn gantry_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GANTRY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("gantry")
}

/// One invocation's environment and files.
#[derive(Debug)]
pub struct TestContext {
    dir: tempfile::TempDir,
    runner: bool,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    event: Option<(String, serde_json::Value)>,
    stdin: Option<Vec<u8>>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Exit code (`-1` when killed by a signal).
    pub status: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// Outputs parsed with the runner's parser.
    pub outputs: BTreeMap<String, String>,
    /// `GITHUB_ENV` entries parsed with the runner's parser.
    pub env_exports: BTreeMap<String, String>,
    /// The step summary.
    pub summary: String,
    /// Raw `GITHUB_OUTPUT` content.
    pub output_file: String,
}

impl RunResult {
    /// An output's value.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs.get(name).map(String::as_str)
    }

    /// Panics with the logs unless the run exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert_eq!(
            self.status, 0,
            "expected success\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics with the logs unless the run exited with `code`.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        assert_eq!(
            self.status, code,
            "unexpected exit\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The `::error…::` lines on stdout.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("::error"))
            .collect()
    }

    /// Stdout and stderr together (for "never appears" checks).
    pub fn all_output(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.stdout, self.stderr, self.output_file, self.summary
        )
    }
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    /// A runner-like context (GitHub Actions files and variables set).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gantry-test-")
            .tempdir()
            .expect("temp dir");
        for d in [
            "workspace",
            "home",
            "file_commands",
            "workflow",
            "tmp",
            "runner_temp",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let mut ctx = Self {
            dir,
            runner: true,
            env: BTreeMap::new(),
            args: Vec::new(),
            event: None,
            stdin: None,
        };
        ctx.env("GITHUB_ACTIONS", "true").env("CI", "true");
        ctx
    }

    /// A laptop-like context: no runner variables or files; outputs are printed.
    pub fn laptop() -> Self {
        let mut ctx = Self::new();
        ctx.runner = false;
        ctx.env.clear();
        ctx
    }

    /// The temp root (kept until the context is dropped).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The workspace directory (`GITHUB_WORKSPACE` in runner mode, the working directory always).
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// Sets an input the way the runner does (`INPUT_<NAME>`, hyphens kept).
    pub fn input(&mut self, name: &str, value: &str) -> &mut Self {
        self.env
            .insert(gantry_runtime::inputs::env_name(name), value.to_string());
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Removes an environment variable.
    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.env.remove(name);
        self
    }

    /// Adds a command-line argument after the action name.
    pub fn arg(&mut self, a: &str) -> &mut Self {
        self.args.push(a.to_string());
        self
    }

    /// Sets the event (written to `GITHUB_EVENT_PATH`, name in `GITHUB_EVENT_NAME`).
    pub fn event(&mut self, name: &str, payload: serde_json::Value) -> &mut Self {
        self.event = Some((name.to_string(), payload));
        self
    }

    /// Loads `KEY=VALUE` lines (a recorded runner environment, `#` comments allowed).
    pub fn env_file(&mut self, path: &Path) -> &mut Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                self.env.insert(k.to_string(), v.to_string());
            }
        }
        self
    }

    /// Bytes for the child's stdin.
    pub fn stdin(&mut self, bytes: &[u8]) -> &mut Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("file_commands").join(name)
    }

    /// The command, ready to spawn (for tests that signal the child).
    pub fn command(&self, action: &str) -> Command {
        let mut cmd = Command::new(gantry_bin());
        cmd.arg(action)
            .args(&self.args)
            .env_clear()
            .current_dir(self.workspace());
        cmd.env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        );
        cmd.env("HOME", self.dir.path().join("home"));
        cmd.env("TMPDIR", self.dir.path().join("tmp"));
        cmd.env("NO_COLOR", "1");
        if self.runner {
            cmd.env("GITHUB_OUTPUT", self.file("set_output"));
            cmd.env("GITHUB_ENV", self.file("set_env"));
            cmd.env("GITHUB_PATH", self.file("add_path"));
            cmd.env("GITHUB_STATE", self.file("save_state"));
            cmd.env("GITHUB_STEP_SUMMARY", self.file("step_summary"));
            cmd.env("GITHUB_WORKSPACE", self.workspace());
            cmd.env("RUNNER_TEMP", self.dir.path().join("runner_temp"));
            if let Some((name, payload)) = &self.event {
                let p = self.dir.path().join("workflow").join("event.json");
                std::fs::write(&p, serde_json::to_vec_pretty(payload).expect("json"))
                    .expect("write event");
                cmd.env("GITHUB_EVENT_PATH", &p);
                cmd.env("GITHUB_EVENT_NAME", name);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `gantry <action> <args…>` to completion.
    pub fn run(&self, action: &str) -> RunResult {
        let mut cmd = self.command(action);
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", gantry_bin().display()));
        if let (Some(bytes), Some(mut stdin)) = (self.stdin.clone(), child.stdin.take()) {
            use std::io::Write;
            stdin.write_all(&bytes).expect("stdin");
        }
        let out = child.wait_with_output().expect("wait");
        self.result(out.status.code().unwrap_or(-1), out.stdout, out.stderr)
    }

    /// Parses the files a finished run left behind.
    pub fn result(&self, status: i32, stdout: Vec<u8>, stderr: Vec<u8>) -> RunResult {
        let read = |n: &str| std::fs::read_to_string(self.file(n)).unwrap_or_default();
        let output_file = read("set_output");
        let outputs = parse_runner_file(&output_file)
            .unwrap_or_else(|e| {
                panic!("GITHUB_OUTPUT does not parse as the runner parses it: {e}\n{output_file}")
            })
            .into_iter()
            .collect();
        let env_exports = parse_runner_file(&read("set_env"))
            .expect("GITHUB_ENV parses")
            .into_iter()
            .collect();
        RunResult {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            outputs,
            env_exports,
            summary: read("step_summary"),
            output_file,
        }
    }
}

/// Insta filters for run output: temp paths, the version line, durations, delimiters.
pub fn insta_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"/tmp/gantry-test-[A-Za-z0-9]+", "[TMP]"),
        (r"ghadelimiter_[0-9a-f-]{36}", "[DELIM]"),
        (r"gantry-[0-9a-f]{32}", "[TOKEN]"),
        (r"\b\d+(\.\d+)?(ms|s)\b", "[TIME]"),
        (r"gantry \d+\.\d+\.\d+ \(commit [^)]+\)", "gantry [VERSION]"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_keep_hyphens() {
        let mut c = TestContext::new();
        c.input("dry-run", "true");
        assert_eq!(c.env.get("INPUT_DRY-RUN").map(String::as_str), Some("true"));
    }
}
