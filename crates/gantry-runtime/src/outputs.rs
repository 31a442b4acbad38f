//! Step outputs, exported environment variables and `PATH` additions, collected during the run and
//! written once at the end.
//!
//! Inside a runner they go to `GITHUB_OUTPUT`/`GITHUB_ENV`/`GITHUB_PATH` (heredoc form). Outside
//! one (no `GITHUB_OUTPUT`), they are printed for a person, as a table or as JSON
//! (`--output json`). A failed step writes only the outputs marked `always` (for example
//! `hosts-failed`, `deploy-log`), so a failure never leaves half a result for later steps.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::files::{self, FileCommandError};
use crate::{Console, Env};

/// How outputs are shown outside a runner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Written to the runner's files (`GITHUB_OUTPUT` set).
    #[default]
    Runner,
    /// A table for a person.
    Table,
    /// One JSON object on stdout.
    Json,
}

/// Outputs of one step.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    values: Vec<(String, String)>,
    always: BTreeSet<String>,
    env: Vec<(String, String)>,
    paths: Vec<String>,
}

impl Outputs {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an output (replacing an earlier value of the same name).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.values.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_string(), value)),
        }
    }

    /// Sets an output that is written even when the step fails.
    pub fn set_always(&mut self, name: &str, value: impl Into<String>) {
        self.set(name, value);
        self.always.insert(name.to_string());
    }

    /// Exports an environment variable for later steps (`GITHUB_ENV`).
    pub fn export_env(&mut self, name: &str, value: impl Into<String>) {
        self.env.push((name.to_string(), value.into()));
    }

    /// Adds a directory to `PATH` for later steps (`GITHUB_PATH`; not translated back from a
    /// container path by the runner, so pass a host path).
    pub fn add_path(&mut self, path: impl Into<String>) {
        self.paths.push(path.into());
    }

    /// The value of an output.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All outputs in insertion order.
    pub fn values(&self) -> &[(String, String)] {
        &self.values
    }

    /// All exported environment variables.
    pub fn env_exports(&self) -> &[(String, String)] {
        &self.env
    }

    /// Writes everything (or only the `always` outputs when `success` is false).
    pub fn flush(
        &self,
        env: &Env,
        console: &Console,
        format: OutputFormat,
        success: bool,
    ) -> Result<(), FileCommandError> {
        let values: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(k, _)| success || self.always.contains(k))
            .cloned()
            .collect();
        match (format, env.get("GITHUB_OUTPUT")) {
            (OutputFormat::Runner, Some(path)) => {
                files::append_entries(&PathBuf::from(path), &values)?;
                if success {
                    if let Some(p) = env.get("GITHUB_ENV") {
                        files::append_entries(&PathBuf::from(p), &self.env)?;
                    }
                    if let Some(p) = env.get("GITHUB_PATH") {
                        let text: String = self.paths.iter().map(|p| format!("{p}\n")).collect();
                        if !text.is_empty() {
                            files::append(&PathBuf::from(p), &text)?;
                        }
                    }
                }
                Ok(())
            }
            (OutputFormat::Json, _) => {
                let mut map = serde_json::Map::new();
                for (k, v) in &values {
                    map.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
                if success && !self.env.is_empty() {
                    let env: serde_json::Map<String, serde_json::Value> = self
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect();
                    map.insert("env".into(), serde_json::Value::Object(env));
                }
                let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))
                    .unwrap_or_default();
                console.info(&text);
                Ok(())
            }
            _ => {
                console.info(&render_table(&values));
                Ok(())
            }
        }
    }
}

/// Renders outputs as an aligned two-column table; multi-line values continue indented.
pub fn render_table(values: &[(String, String)]) -> String {
    if values.is_empty() {
        return "(no outputs)".to_string();
    }
    let width = values
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in values {
        let mut lines = v.split('\n');
        let first = lines.next().unwrap_or("");
        out.push_str(&format!("{k:<width$}  {first}\n"));
        for l in lines {
            out.push_str(&format!("{:<width$}  {l}\n", ""));
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::parse_runner_file;
    use crate::mask::Masker;

    #[test]
    fn runner_files_get_heredocs_and_failure_keeps_only_always() {
        let dir = std::env::temp_dir().join(format!("gantry-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let envf = dir.join("env");
        let env = Env::from_pairs([
            ("GITHUB_OUTPUT", out.to_str().unwrap()),
            ("GITHUB_ENV", envf.to_str().unwrap()),
        ]);
        let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
        let mut o = Outputs::new();
        o.set("tags", "a\nb");
        o.set_always("hosts-failed", "h1");
        o.export_env("X", "1");
        o.flush(&env, &console, OutputFormat::Runner, false)
            .unwrap();
        let parsed = parse_runner_file(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(parsed, vec![("hosts-failed".to_string(), "h1".to_string())]);
        assert!(!envf.exists());
        o.flush(&env, &console, OutputFormat::Runner, true).unwrap();
        let parsed = parse_runner_file(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            parse_runner_file(&std::fs::read_to_string(&envf).unwrap()).unwrap(),
            vec![("X".into(), "1".into())]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn table_aligns() {
        let t = render_table(&[
            ("a".into(), "1".into()),
            ("long-name".into(), "x\ny".into()),
        ]);
        assert_eq!(t, "a          1\nlong-name  x\n           y");
    }
}
