//! The step summary (`GITHUB_STEP_SUMMARY`): a Markdown buffer written once, capped at 1 MiB.
//!
//! The runner drops a summary over 1 MiB **entirely**, so we cut it ourselves and end it with a
//! visible truncation line. Values put in tables are escaped for Markdown (`|`, newlines, `<`).
//!
//! See: <https://github.com/actions/runner/blob/main/src/Runner.Worker/FileCommandManager.cs> (`CreateStepSummaryCommand`)

use std::path::Path;

/// The runner's limit for one step's summary.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;
const TRUNCATED: &str =
    "\n\n> ⚠️ Summary truncated: it exceeded GitHub's 1 MiB limit. See the log for the rest.\n";

/// A Markdown summary being built.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    buf: String,
}

/// Escapes a value for a Markdown table cell.
pub fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a heading (`level` 1–6).
    pub fn heading(&mut self, level: usize, text: &str) -> &mut Self {
        self.buf.push_str(&format!(
            "{} {}\n\n",
            "#".repeat(level.clamp(1, 6)),
            cell(text)
        ));
        self
    }

    /// Adds a paragraph of raw Markdown (not escaped: callers escape user text).
    pub fn raw(&mut self, markdown: &str) -> &mut Self {
        self.buf.push_str(markdown);
        if !markdown.ends_with('\n') {
            self.buf.push('\n');
        }
        self.buf.push('\n');
        self
    }

    /// Adds a table; every cell is escaped.
    pub fn table<S: AsRef<str>>(&mut self, header: &[&str], rows: &[Vec<S>]) -> &mut Self {
        self.buf.push_str(&format!(
            "| {} |\n",
            header
                .iter()
                .map(|h| cell(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        self.buf
            .push_str(&format!("|{}\n", "---|".repeat(header.len())));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c.as_ref())).collect();
            self.buf.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        self.buf.push('\n');
        self
    }

    /// Adds a fenced code block (the fence grows past any backticks in the text).
    pub fn code(&mut self, lang: &str, text: &str) -> &mut Self {
        let mut fence = "```".to_string();
        while text.contains(&fence) {
            fence.push('`');
        }
        self.buf
            .push_str(&format!("{fence}{lang}\n{text}\n{fence}\n\n"));
        self
    }

    /// Adds a collapsible `<details>` section containing raw Markdown.
    pub fn details(&mut self, summary: &str, markdown: &str) -> &mut Self {
        self.buf.push_str(&format!(
            "<details><summary>{}</summary>\n\n{markdown}\n</details>\n\n",
            cell(summary)
        ));
        self
    }

    /// The Markdown so far.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The text to write given `existing` bytes already in the file: cut at a char boundary so the
    /// file stays within [`SUMMARY_LIMIT`], with a truncation note.
    pub fn capped(&self, existing: usize) -> String {
        let budget = SUMMARY_LIMIT.saturating_sub(existing);
        if self.buf.len() <= budget {
            return self.buf.clone();
        }
        let mut cut = budget.saturating_sub(TRUNCATED.len());
        while cut > 0 && !self.buf.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{TRUNCATED}", &self.buf[..cut])
    }

    /// Appends the summary to `path` (redacting registered secrets).
    pub fn write_to(&self, path: &Path, masker: &crate::mask::Masker) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let existing = std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let text = masker.redact(&self.capped(existing));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_escapes_cells() {
        let mut s = Summary::new();
        s.table(&["a", "b"], &[vec!["x|y", "<b>\nz"]]);
        assert_eq!(
            s.as_str(),
            "| a | b |\n|---|---|\n| x\\|y | &lt;b&gt;<br>z |\n\n"
        );
    }

    #[test]
    fn capped_at_one_mebibyte_with_note() {
        let mut s = Summary::new();
        s.raw(&"é".repeat(SUMMARY_LIMIT));
        let out = s.capped(100);
        assert!(out.len() + 100 <= SUMMARY_LIMIT);
        assert!(out.ends_with(TRUNCATED));
        let small = Summary::new().raw("hi").clone();
        assert_eq!(small.capped(0), "hi\n\n");
    }

    #[test]
    fn code_fence_grows() {
        let mut s = Summary::new();
        s.code("", "a ``` b");
        assert!(s.as_str().starts_with("````\n"));
    }
}
