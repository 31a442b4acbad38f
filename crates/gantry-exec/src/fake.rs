//! [`RecordingExec`]: a fake [`Exec`](crate::Exec) for tests. It records every command (argv, env,
//! stdin) and answers from a script of responses matched by program and argument prefix.

use std::sync::{Arc, Mutex};

use crate::{Cmd, ExecError, Output};

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// Program name to match (file name, e.g. `docker`).
    pub program: String,
    /// Leading arguments to match (empty: any).
    pub args_prefix: Vec<String>,
    /// The output to return.
    pub output: Output,
}

impl Response {
    /// A successful answer with this stdout.
    pub fn ok(program: &str, args_prefix: &[&str], stdout: &str) -> Self {
        Self {
            program: program.into(),
            args_prefix: args_prefix.iter().map(|s| s.to_string()).collect(),
            output: Output {
                status: 0,
                stdout: stdout.as_bytes().to_vec(),
                stderr: Vec::new(),
            },
        }
    }
    /// A failing answer with this status and stderr.
    pub fn fail(program: &str, args_prefix: &[&str], status: i32, stderr: &str) -> Self {
        Self {
            program: program.into(),
            args_prefix: args_prefix.iter().map(|s| s.to_string()).collect(),
            output: Output {
                status,
                stdout: Vec::new(),
                stderr: stderr.as_bytes().to_vec(),
            },
        }
    }
}

/// A recorded call.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Program name.
    pub program: String,
    /// Arguments (secret ones as `***`).
    pub args: Vec<String>,
    /// Stdin as text (secret stdin as `***`).
    pub stdin: Option<String>,
}

/// Records commands and answers from a script; unmatched commands succeed with empty output.
#[derive(Clone, Debug, Default)]
pub struct RecordingExec {
    responses: Arc<Mutex<Vec<Response>>>,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

impl RecordingExec {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a scripted response (first match wins).
    pub fn respond(&self, r: Response) -> &Self {
        if let Ok(mut g) = self.responses.lock() {
            g.push(r);
        }
        self
    }
    /// The calls so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl crate::Exec for RecordingExec {
    async fn run_unchecked(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let program = cmd.program_name();
        let args: Vec<String> = cmd
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if cmd.secret_args.contains(&i) {
                    "***".into()
                } else {
                    a.to_string_lossy().into_owned()
                }
            })
            .collect();
        let stdin = cmd.stdin.as_ref().map(|b| {
            if cmd.stdin_is_secret {
                "***".to_string()
            } else {
                String::from_utf8_lossy(b).into_owned()
            }
        });
        if let Ok(mut g) = self.calls.lock() {
            g.push(Recorded {
                program: program.clone(),
                args: args.clone(),
                stdin,
            });
        }
        let responses = self.responses.lock().map(|g| g.clone()).unwrap_or_default();
        let found = responses.into_iter().find(|r| {
            r.program == program
                && args.len() >= r.args_prefix.len()
                && args[..r.args_prefix.len()] == r.args_prefix[..]
        });
        Ok(found.map(|r| r.output).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exec;
    use gantry_runtime::Secret;

    #[tokio::test]
    async fn records_and_answers() {
        let f = RecordingExec::new();
        f.respond(Response::fail("docker", &["push"], 1, "denied"));
        f.respond(Response::ok("docker", &[], "ok"));
        assert_eq!(
            f.run(&Cmd::new("docker").arg("info"))
                .await
                .unwrap()
                .stdout_str(),
            "ok"
        );
        let e = f
            .run(&Cmd::new("/usr/bin/docker").args(["push", "x"]))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("denied"));
        f.run(&Cmd::new("kubectl").stdin_secret(&Secret::new("s3cret")))
            .await
            .unwrap();
        let calls = f.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[2].stdin.as_deref(), Some("***"));
    }
}
