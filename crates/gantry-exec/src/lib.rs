//! Running programs: timeouts, cancellation, captured stderr, secrets on stdin, and output that
//! cannot inject workflow commands.
//!
//! Every program gantry runs (kubectl, docker, git, ssh helpers) goes through [`Exec`]. The real
//! implementation, [`RealExec`], starts the child in its own process group so a timeout or a
//! cancel kills the whole group (a `kubectl` plugin, a `docker buildx` helper), keeps the tail of
//! stderr in the error ([`ExecError::Failed`]), feeds secrets through stdin (never argv), logs
//! argv with secret arguments replaced by `***`, and streams child output to the log inside
//! `::stop-commands::` so a line like `::add-mask::` from a child is inert. [`RecordingExec`] is
//! the test double: it records commands and answers from a script.
//!
//! This crate decides nothing about what to run; it only runs it.

mod fake;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gantry_runtime::{Cancel, Console, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use fake::{Recorded, RecordingExec, Response};

/// How much of stderr is kept in an error.
const STDERR_TAIL: usize = 4096;

/// A program invocation (data only).
#[derive(Clone, Debug, Default)]
pub struct Cmd {
    /// Program name or path.
    pub program: OsString,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Indices of arguments that are secret (shown as `***`).
    pub secret_args: Vec<usize>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Environment variables holding secrets (values never logged).
    pub secret_env: Vec<(OsString, Secret)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Bytes written to stdin, then closed.
    pub stdin: Option<Vec<u8>>,
    /// Whether stdin carries a secret (never logged).
    pub stdin_is_secret: bool,
    /// Kill after this long.
    pub timeout: Option<Duration>,
    /// Stream stdout/stderr to the log (fenced) as well as capturing them.
    pub stream: bool,
}

impl Cmd {
    /// A new command.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_os_string(),
            ..Self::default()
        }
    }
    /// Adds an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }
    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }
    /// Adds an argument that is shown as `***` in logs. Prefer stdin or env for secrets: argv is
    /// visible to every user of the machine.
    pub fn secret_arg(mut self, a: &Secret) -> Self {
        self.secret_args.push(self.args.len());
        self.args.push(a.expose().into());
        self
    }
    /// Sets an environment variable.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }
    /// Sets an environment variable whose value is secret.
    pub fn secret_env(mut self, k: impl AsRef<OsStr>, v: &Secret) -> Self {
        self.secret_env.push((k.as_ref().to_os_string(), v.clone()));
        self
    }
    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// Feeds bytes on stdin.
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }
    /// Feeds a secret on stdin (the way to pass secrets to a child).
    pub fn stdin_secret(mut self, s: &Secret) -> Self {
        self.stdin = Some(s.expose().as_bytes().to_vec());
        self.stdin_is_secret = true;
        self
    }
    /// Kills the child (and its group) after `d`.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Streams output to the log, fenced by `::stop-commands::`.
    pub fn stream(mut self, on: bool) -> Self {
        self.stream = on;
        self
    }

    /// The command line for logs: secret arguments as `***`, shell-quoted where needed.
    pub fn display(&self) -> String {
        let mut parts = vec![quote(&self.program.to_string_lossy())];
        for (i, a) in self.args.iter().enumerate() {
            if self.secret_args.contains(&i) {
                parts.push("***".into());
            } else {
                parts.push(quote(&a.to_string_lossy()));
            }
        }
        parts.join(" ")
    }

    /// The program name for messages (`kubectl`).
    pub fn program_name(&self) -> String {
        PathBuf::from(&self.program)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a finished program produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (128+N when killed by signal N).
    pub status: i32,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Stdout as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Stderr as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A failed program run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program is not installed.
    #[error("`{program}` was not found on PATH")]
    NotFound {
        /// Program.
        program: String,
    },
    /// The program exited non-zero.
    #[error("`{program}` exited with status {status}: {stderr}")]
    Failed {
        /// Program.
        program: String,
        /// Exit status.
        status: i32,
        /// The tail of stderr (redacted).
        stderr: String,
        /// Captured stdout.
        stdout: String,
    },
    /// The program ran past its timeout and was killed.
    #[error("`{program}` timed out after {after:?} and was killed")]
    Timeout {
        /// Program.
        program: String,
        /// The timeout.
        after: Duration,
    },
    /// The job was cancelled; the program was killed.
    #[error("`{program}` was killed: the job was cancelled")]
    Cancelled {
        /// Program.
        program: String,
    },
    /// Starting or talking to the program failed.
    #[error("cannot run `{program}`: {source}")]
    Io {
        /// Program.
        program: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ExecError {
    /// The exit status for [`ExecError::Failed`].
    pub fn status(&self) -> Option<i32> {
        match self {
            Self::Failed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Runs programs.
#[async_trait::async_trait]
pub trait Exec: Send + Sync {
    /// Runs `cmd` to completion. A non-zero exit is [`ExecError::Failed`].
    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let out = self.run_unchecked(cmd).await?;
        if out.status != 0 {
            return Err(ExecError::Failed {
                program: cmd.program_name(),
                status: out.status,
                stderr: tail(&out.stderr_str()),
                stdout: out.stdout_str(),
            });
        }
        Ok(out)
    }

    /// Runs `cmd`; a non-zero exit is returned as an [`Output`], not an error.
    async fn run_unchecked(&self, cmd: &Cmd) -> Result<Output, ExecError>;
}

fn tail(s: &str) -> String {
    let t = s.trim();
    if t.len() <= STDERR_TAIL {
        return t.to_string();
    }
    let mut start = t.len() - STDERR_TAIL;
    while !t.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &t[start..])
}

/// Runs real programs.
#[derive(Clone, Debug)]
pub struct RealExec {
    console: Console,
    cancel: Cancel,
}

impl RealExec {
    /// A runner that logs through `console` and obeys `cancel`.
    pub fn new(console: Console, cancel: Cancel) -> Self {
        Self { console, cancel }
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let pgid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        std::thread::sleep(Duration::from_millis(50));
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
}

#[async_trait::async_trait]
impl Exec for RealExec {
    #[allow(clippy::disallowed_methods)] // the one place that spawns processes
    async fn run_unchecked(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let program = cmd.program_name();
        tracing::debug!("running {}", self.console.masker().redact(&cmd.display()));
        let mut c = tokio::process::Command::new(&cmd.program);
        c.args(&cmd.args)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        for (k, v) in &cmd.secret_env {
            c.env(k, v.expose());
        }
        if let Some(dir) = &cmd.cwd {
            c.current_dir(dir);
        }
        let mut child = c.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ExecError::NotFound {
                    program: program.clone(),
                }
            } else {
                ExecError::Io {
                    program: program.clone(),
                    source,
                }
            }
        })?;
        let pid = child.id();
        if let (Some(bytes), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            });
        }
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut buf).await;
            }
            buf
        };
        let work = async {
            let (out, err) = tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (out, err, status)
        };
        let timeout = cmd.timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
        let result = tokio::select! {
            r = tokio::time::timeout(timeout, work) => r,
            _ = self.cancel.cancelled() => {
                kill_group(pid);
                return Err(ExecError::Cancelled { program });
            }
        };
        let (out, err, status) = match result {
            Ok(v) => v,
            Err(_) => {
                kill_group(pid);
                return Err(ExecError::Timeout {
                    program,
                    after: timeout,
                });
            }
        };
        let status = status.map_err(|source| ExecError::Io {
            program: program.clone(),
            source,
        })?;
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        if cmd.stream {
            self.console.untrusted(&String::from_utf8_lossy(&out));
            self.console.untrusted(&String::from_utf8_lossy(&err));
        }
        let masker = self.console.masker();
        Ok(Output {
            status: code,
            stdout: out,
            stderr: masker.redact(&String::from_utf8_lossy(&err)).into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_runtime::mask::Masker;

    fn exec() -> (RealExec, Cancel) {
        let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
        let cancel = Cancel::new();
        (RealExec::new(console, cancel.clone()), cancel)
    }

    #[tokio::test]
    async fn captures_output_and_stderr_in_error() {
        let (e, _) = exec();
        let out = e
            .run(&Cmd::new("sh").args(["-c", "echo hi"]))
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "hi\n");
        let err = e
            .run(&Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(3));
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[tokio::test]
    async fn missing_program_is_not_found() {
        let (e, _) = exec();
        let err = e
            .run(&Cmd::new("gantry-no-such-program"))
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let (e, _) = exec();
        let marker = std::env::temp_dir().join(format!("gantry-exec-{}", std::process::id()));
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let start = std::time::Instant::now();
        let err = e
            .run(
                &Cmd::new("sh")
                    .args(["-c", &script])
                    .timeout(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }));
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(
            !marker.exists(),
            "the background child of the group survived"
        );
    }

    #[tokio::test]
    async fn cancel_kills() {
        let (e, cancel) = exec();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c2.cancel();
        });
        let err = e.run(&Cmd::new("sleep").arg("30")).await.unwrap_err();
        assert!(matches!(err, ExecError::Cancelled { .. }));
    }

    #[tokio::test]
    async fn secrets_go_through_stdin_and_are_hidden() {
        let (e, _) = exec();
        let s = Secret::new("hunter2-secret");
        let out = e.run(&Cmd::new("cat").stdin_secret(&s)).await.unwrap();
        assert_eq!(out.stdout_str(), "hunter2-secret");
        let c = Cmd::new("tool").arg("--token").secret_arg(&s).arg("a b");
        assert_eq!(c.display(), "tool --token *** 'a b'");
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let long = "x".repeat(10_000);
        assert!(tail(&long).len() <= STDERR_TAIL + 4);
    }
}
