//! Workflow commands and the one writer of stdout.
//!
//! [`Console`] is the only thing in gantry that prints to stdout: `::add-mask::`, `::group::`,
//! `::debug::`, annotations, `::stop-commands::`, and (outside a runner) the result table.
//! Everything it prints passes through the [`Masker`]. Escaping follows the runner's parser
//! (`ActionCommand.TryParseV2`): data escapes `%`, `\r`, `\n`; property values also `:` and `,`.
//!
//! See: <https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts>

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::mask::Masker;

/// Escapes command data (the message after `::`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property value (`file=`, `title=`…).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The runner's unescape for data (test helper mirroring `ActionCommand.UnescapeData`).
pub fn unescape_data(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

/// The runner's unescape for property values.
pub fn unescape_property(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// Formats `::name k=v,k=v::data` with escaping; properties with empty values are skipped
/// (as `@actions/core` skips falsy ones).
pub fn format_command(name: &str, props: &[(&str, String)], data: &str) -> String {
    let mut line = format!("::{name}");
    let mut first = true;
    for (k, v) in props {
        if v.is_empty() {
            continue;
        }
        line.push(if first { ' ' } else { ',' });
        first = false;
        line.push_str(k);
        line.push('=');
        line.push_str(&escape_property(v));
    }
    line.push_str("::");
    line.push_str(&escape_data(data));
    line
}

/// Annotation severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotationLevel {
    /// `::notice::`
    Notice,
    /// `::warning::`
    Warning,
    /// `::error::`
    Error,
}

impl AnnotationLevel {
    fn command(self) -> &'static str {
        match self {
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// An annotation with optional location properties.
#[derive(Clone, Debug, Default)]
pub struct Annotation {
    /// Short title shown above the message.
    pub title: Option<String>,
    /// File path (a container path under the workspace is mapped back by the runner).
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// Last line.
    pub end_line: Option<u32>,
    /// 1-based column.
    pub col: Option<u32>,
    /// Last column.
    pub end_column: Option<u32>,
}

impl Annotation {
    /// An annotation with just a title.
    pub fn titled(title: impl Into<String>) -> Self {
        Self {
            title: Some(title.into()),
            ..Self::default()
        }
    }

    fn props(&self) -> Vec<(&'static str, String)> {
        let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        vec![
            ("title", self.title.clone().unwrap_or_default()),
            ("file", self.file.clone().unwrap_or_default()),
            ("line", n(self.line)),
            ("endLine", n(self.end_line)),
            ("col", n(self.col)),
            ("endColumn", n(self.end_column)),
        ]
    }
}

/// Cap on annotations of one level per step: the UI shows about 10 (community reports); the rest
/// go to the log as plain lines.
pub const ANNOTATION_CAP: usize = 10;

#[derive(Default)]
struct ConsoleState {
    errors: usize,
    warnings: usize,
    notices: usize,
    in_group: bool,
}

/// The single stdout writer. Cheap to clone; clones share the sink, the masker and counters.
#[derive(Clone)]
pub struct Console {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
    state: Arc<Mutex<ConsoleState>>,
    masker: Masker,
    debug: bool,
    commands: bool,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("debug", &self.debug)
            .field("commands", &self.commands)
            .finish()
    }
}

impl Console {
    /// A console on the process's stdout. `commands` is false outside a runner: groups then print
    /// as plain headings and masks are applied silently.
    #[allow(clippy::print_stdout)]
    pub fn stdout(masker: Masker, debug: bool, commands: bool) -> Self {
        Self::with_sink(Box::new(std::io::stdout()), masker, debug, commands)
    }

    /// A console on any sink (tests capture into a buffer).
    pub fn with_sink(
        sink: Box<dyn Write + Send>,
        masker: Masker,
        debug: bool,
        commands: bool,
    ) -> Self {
        Self {
            sink: Arc::new(Mutex::new(sink)),
            state: Arc::new(Mutex::new(ConsoleState::default())),
            masker,
            debug,
            commands,
        }
    }

    /// The shared mask registry.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Whether workflow commands are emitted (inside a runner).
    pub fn emits_commands(&self) -> bool {
        self.commands
    }

    fn write_line(&self, line: &str) {
        let mut sink = match self.sink.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // A closed stdout must not turn into a panic; there is nowhere left to report it.
        let _ = writeln!(sink, "{line}");
        let _ = sink.flush();
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut ConsoleState) -> T) -> T {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut st)
    }

    /// Registers a secret: `::add-mask::` for the whole value (escaped, so every line is covered)
    /// before any other use. Empty values are ignored.
    pub fn add_mask(&self, value: &str) {
        if self.masker.add(value) && self.commands {
            // Not passed through the masker: this is the one line that must carry the value.
            self.write_line(&format_command("add-mask", &[], value));
        }
    }

    /// Prints a plain log line (redacted).
    pub fn info(&self, line: &str) {
        let text = self.masker.redact(line);
        for l in text.split('\n') {
            self.write_line(l);
        }
    }

    /// `::debug::` when debug is on (`RUNNER_DEBUG=1`).
    pub fn debug(&self, message: &str) {
        if self.debug {
            let m = self.masker.redact(message);
            if self.commands {
                self.write_line(&format_command("debug", &[], &m));
            } else {
                self.write_line(&format!("debug: {m}"));
            }
        }
    }

    /// Starts a log group (groups do not nest: an open one is closed first).
    pub fn group(&self, title: &str) {
        let reopen = self.with_state(|s| std::mem::replace(&mut s.in_group, true));
        if reopen {
            self.end_group();
            self.with_state(|s| s.in_group = true);
        }
        let t = self.masker.redact(title);
        if self.commands {
            self.write_line(&format_command("group", &[], &t));
        } else {
            self.write_line(&format!("── {t}"));
        }
    }

    /// Ends the current group.
    pub fn end_group(&self) {
        let was = self.with_state(|s| std::mem::replace(&mut s.in_group, false));
        if was && self.commands {
            self.write_line("::endgroup::");
        }
    }

    /// Emits an annotation. Beyond [`ANNOTATION_CAP`] per level the message is logged plainly.
    pub fn annotate(&self, level: AnnotationLevel, ann: &Annotation, message: &str) {
        let count = self.with_state(|s| {
            let c = match level {
                AnnotationLevel::Error => &mut s.errors,
                AnnotationLevel::Warning => &mut s.warnings,
                AnnotationLevel::Notice => &mut s.notices,
            };
            *c += 1;
            *c
        });
        let msg = self.masker.redact(message);
        if self.commands && count <= ANNOTATION_CAP {
            let props: Vec<(&str, String)> = ann
                .props()
                .into_iter()
                .map(|(k, v)| (k, self.masker.redact(&v)))
                .collect();
            self.write_line(&format_command(level.command(), &props, &msg));
        } else {
            let title = ann
                .title
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            self.write_line(&format!("{}{title}: {msg}", level.command()));
        }
    }

    /// `::error::` shortcut.
    pub fn error(&self, title: &str, message: &str) {
        self.annotate(AnnotationLevel::Error, &Annotation::titled(title), message);
    }

    /// `::warning::` shortcut.
    pub fn warning(&self, title: &str, message: &str) {
        self.annotate(
            AnnotationLevel::Warning,
            &Annotation::titled(title),
            message,
        );
    }

    /// `::notice::` shortcut.
    pub fn notice(&self, title: &str, message: &str) {
        self.annotate(AnnotationLevel::Notice, &Annotation::titled(title), message);
    }

    /// Prints untrusted text (a child's output, a remote log) so that no line of it can run a
    /// workflow command: wrapped in `::stop-commands::<token>` … `::<token>::` with a fresh
    /// random token. Lines are redacted.
    pub fn untrusted(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        let body = self.masker.redact(text);
        if !self.commands {
            for l in body.trim_end_matches('\n').split('\n') {
                self.write_line(l);
            }
            return;
        }
        let token = stop_token();
        // The token is long (> 6 chars), so the runner masks it; register it with our masker too.
        self.write_line(&format!("::stop-commands::{token}"));
        for l in body.trim_end_matches('\n').split('\n') {
            self.write_line(l);
        }
        self.write_line(&format!("::{token}::"));
    }
}

/// A fresh random stop-commands token.
pub fn stop_token() -> String {
    format!("gantry-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    fn console(commands: bool) -> (Console, Buf) {
        let b = Buf::default();
        (
            Console::with_sink(Box::new(b.clone()), Masker::default(), true, commands),
            b,
        )
    }
    fn text(b: &Buf) -> String {
        String::from_utf8(b.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn escaping_matches_actions_core() {
        assert_eq!(escape_data("a%b\r\nc"), "a%25b%0D%0Ac");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        // A literal "%0A" in a value must survive a round trip, not become a newline.
        assert_eq!(unescape_data(&escape_data("%0A")), "%0A");
        assert_eq!(
            unescape_property(&escape_property("x%3Ay,%2C")),
            "x%3Ay,%2C"
        );
    }

    #[test]
    fn command_skips_empty_props() {
        let c = format_command(
            "error",
            &[
                ("title", "t:1".into()),
                ("file", String::new()),
                ("line", "3".into()),
            ],
            "m\nx",
        );
        assert_eq!(c, "::error title=t%3A1,line=3::m%0Ax");
    }

    #[test]
    fn add_mask_multiline_is_one_escaped_line() {
        let (c, b) = console(true);
        c.add_mask("line1\nline2");
        c.add_mask("line1\nline2"); // registered once
        assert_eq!(text(&b), "::add-mask::line1%0Aline2\n");
        c.info("leak line2 here");
        assert!(text(&b).ends_with("leak *** here\n"));
    }

    #[test]
    fn annotations_capped() {
        let (c, b) = console(true);
        for i in 0..12 {
            c.warning("w", &format!("n{i}"));
        }
        let t = text(&b);
        assert_eq!(t.matches("::warning").count(), ANNOTATION_CAP);
        assert!(t.contains("warning (w): n11"));
    }

    #[test]
    fn untrusted_output_is_fenced() {
        let (c, b) = console(true);
        c.untrusted("::add-mask::evil\nok\n");
        let t = text(&b);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("::stop-commands::gantry-"));
        let token = lines[0].trim_start_matches("::stop-commands::");
        assert_eq!(lines[1], "::add-mask::evil");
        assert_eq!(lines[3], format!("::{token}::"));
    }

    #[test]
    fn groups_do_not_nest() {
        let (c, b) = console(true);
        c.group("a");
        c.group("b");
        c.end_group();
        c.end_group();
        assert_eq!(
            text(&b),
            "::group::a\n::endgroup::\n::group::b\n::endgroup::\n"
        );
    }

    #[test]
    fn debug_only_when_enabled() {
        let b = Buf::default();
        let c = Console::with_sink(Box::new(b.clone()), Masker::default(), false, true);
        c.debug("x");
        assert_eq!(text(&b), "");
    }
}
