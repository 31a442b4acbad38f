//! A snapshot of the process environment, read once.
//!
//! Every environment read in gantry goes through [`Env`] (clippy bans `std::env::var*` elsewhere),
//! so tests can inject an environment and the list of variables we read lives in one place.
//!
//! Variables read by gantry (besides `INPUT_*`):
//! - `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STATE`, `GITHUB_STEP_SUMMARY`: file commands.
//! - `GITHUB_WORKSPACE`, `GITHUB_EVENT_PATH`, `GITHUB_EVENT_NAME`, `GITHUB_REF`, `GITHUB_SHA`, and the
//!   rest of the `GITHUB_*` allowlist: see [`GitHubContext`](crate::GitHubContext).
//! - `RUNNER_DEBUG` (`1` turns on `::debug::`), `RUNNER_TEMP`, `RUNNER_OS`, `RUNNER_ARCH`.
//! - `SOURCE_DATE_EPOCH`: "now" for reproducible output.
//! - `GANTRY_LOG`: a `tracing` filter for the human log (default `info`).
//! - `NO_COLOR`: plain log output.

use std::collections::BTreeMap;

/// An immutable view of environment variables.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Captures the current process environment. Non-UTF-8 values are skipped.
    #[allow(clippy::disallowed_methods)] // the one sanctioned environment read
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self { vars }
    }

    /// Builds an environment from pairs (tests, the CLI's flag-derived context).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The raw value of a variable, if set (even if empty).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value of a variable, `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// Sets a variable in this snapshot (for tests and for values derived from CLI flags).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Removes a variable from this snapshot.
    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// All variables whose name starts with `prefix`.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether we run inside a GitHub Actions runner step (`GITHUB_ACTIONS=true`).
    pub fn is_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }

    /// Whether debug logging is on (`RUNNER_DEBUG=1`, as `core.isDebug()`).
    pub fn is_debug(&self) -> bool {
        self.get("RUNNER_DEBUG") == Some("1")
    }

    /// `SOURCE_DATE_EPOCH` as seconds, if set and valid.
    pub fn source_date_epoch(&self) -> Option<i64> {
        self.get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_absent_but_raw_is_kept() {
        let env = Env::from_pairs([
            ("A", ""),
            ("B", "x"),
            ("INPUT_X", "1"),
            ("INPUT_Y", "2"),
            ("J", ""),
        ]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.raw("A"), Some(""));
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(env.with_prefix("INPUT_").count(), 2);
    }
}
