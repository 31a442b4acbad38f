//! The mask registry: values that must never reach a log.
//!
//! Registering a value emits `::add-mask::` (escaped, so a multi-line secret stays one command
//! line; the runner then masks the whole value and each of its lines) and also makes our own
//! writers redact it, so a laptop run, where no runner masks anything, leaks nothing either.
//!
//! See: <https://github.com/actions/runner/blob/main/src/Runner.Worker/ActionCommandManager.cs> (`AddMaskCommandExtension`)

use std::sync::{Arc, RwLock};

/// Values shorter than this are not redacted by our own writers (the runner masks them anyway):
/// redacting `1` or `a` would garble every log line.
const MIN_REDACT_LEN: usize = 4;

/// Shared registry of masked values.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    values: Arc<RwLock<Vec<String>>>,
}

impl Masker {
    /// Adds a value and each of its trimmed lines. Returns the pieces that were new.
    pub fn add(&self, value: &str) -> bool {
        if value.trim().is_empty() {
            return false;
        }
        let mut pieces: Vec<String> = vec![value.to_string()];
        for line in value.split(['\r', '\n']) {
            let line = line.trim();
            if !line.is_empty() {
                pieces.push(line.to_string());
            }
        }
        let mut guard = match self.values.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let before = guard.len();
        for p in pieces {
            if !guard.contains(&p) {
                guard.push(p);
            }
        }
        // Longest first so that a value containing another is replaced whole.
        guard.sort_by_key(|v| std::cmp::Reverse(v.len()));
        guard.len() != before
    }

    /// Replaces every registered value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let guard = match self.values.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut out = text.to_string();
        for v in guard.iter().filter(|v| v.len() >= MIN_REDACT_LEN) {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Whether `text` contains any registered value (used by tests and debug assertions).
    pub fn leaks(&self, text: &str) -> bool {
        let guard = match self.values.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard
            .iter()
            .filter(|v| v.len() >= MIN_REDACT_LEN)
            .any(|v| text.contains(v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_secret_masks_each_line() {
        let m = Masker::default();
        assert!(m.add("-----BEGIN KEY-----\nabcdefgh\n-----END KEY-----\n"));
        assert_eq!(m.redact("key line abcdefgh here"), "key line *** here");
        assert!(!m.add("   "));
        assert!(m.leaks("x -----END KEY----- y"));
    }

    #[test]
    fn short_values_not_redacted_locally() {
        let m = Masker::default();
        m.add("ab");
        assert_eq!(m.redact("abc"), "abc");
    }
}
