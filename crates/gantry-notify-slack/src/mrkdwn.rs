//! Slack text safety: escaping user text for `mrkdwn`, and cutting text to a limit with a
//! visible "…".
//!
//! Every value we did not write ourselves (commit messages, branch names, PR titles, actor names,
//! environment names) passes through [`escape`] before it is placed in a `mrkdwn` text object, so
//! a commit message saying `<!channel>` shows those characters instead of pinging the channel.
//! This module must not build messages; it only transforms strings.
//!
//! See: <https://docs.slack.dev/messaging/formatting-message-text#escaping> (escape `&`, `<`, `>`
//! and only those)

/// The ellipsis appended when text is cut.
pub const ELLIPSIS: char = '…';

/// Escapes Slack's three control characters: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Reserved for our own mention sentinels (config::HANDLE_OPEN/CLOSE).
            '\u{E000}' | '\u{E001}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes text that goes inside a link label (`<url|label>`): the control characters, and `|`
/// is left alone because Slack only splits on the first `|` of a link.
pub fn escape_label(text: &str) -> String {
    escape(text)
}

/// A link `<url|label>` with the label escaped. A URL containing `<`, `>`, `|` or whitespace is
/// not a URL we made; the label is then shown as plain escaped text.
pub fn link(url: &str, label: &str) -> String {
    if url.is_empty()
        || url.contains(['<', '>', '|', ' ', '\n'])
        || !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return escape(label);
    }
    format!("<{}|{}>", url.replace('&', "&amp;"), escape_label(label))
}

/// Counts characters the way Slack counts limits (Unicode scalar values).
pub fn len(text: &str) -> usize {
    text.chars().count()
}

/// Cuts `text` to at most `max` characters, ending with "…" when cut. Never splits an escape
/// entity (`&amp;`) or a `<…>` link or mention in half: the cut moves before it.
pub fn truncate(text: &str, max: usize) -> String {
    if len(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let keep = max - 1;
    let chars: Vec<char> = text.chars().collect();
    let mut cut = keep;
    // Do not leave half an entity (`&am`) or half a link (`<https://x|lab`).
    let head: String = chars[..cut].iter().collect();
    if let Some(amp) = head.rfind('&')
        && !head[amp..].contains(';')
    {
        cut = head[..amp].chars().count();
    }
    let head: String = chars[..cut].iter().collect();
    if let Some(lt) = head.rfind('<')
        && !head[lt..].contains('>')
    {
        cut = head[..lt].chars().count();
    }
    let mut out: String = chars[..cut].iter().collect();
    out.push(ELLIPSIS);
    out
}

/// The first line of a commit message, trimmed.
pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_control_characters() {
        // Our mention sentinels cannot be smuggled in through user text.
        assert_eq!(escape("a\u{E000}oncall\u{E001}b"), "aoncallb");
        assert_eq!(
            escape("a & b <!channel> \"q\" 'x' *b*"),
            "a &amp; b &lt;!channel&gt; \"q\" 'x' *b*"
        );
        assert_eq!(escape("<https://evil|click>"), "&lt;https://evil|click&gt;");
    }

    #[test]
    fn links_escape_labels_and_refuse_odd_urls() {
        assert_eq!(
            link("https://x/y?a=1&b=2", "a<b"),
            "<https://x/y?a=1&amp;b=2|a&lt;b>"
        );
        assert_eq!(link("javascript:alert(1)", "x"), "x");
        assert_eq!(link("https://x|y", "lab"), "lab");
    }

    #[test]
    fn truncates_with_ellipsis_at_limit() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(len(&truncate(&"é".repeat(5000), 3000)), 3000);
        // never half an entity or link
        assert_eq!(truncate("ab &amp; cd", 6), "ab …");
        assert_eq!(truncate("ab <https://x|y> cd", 8), "ab …");
        assert_eq!(truncate("x", 0), "");
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(first_line("\n  fix: it \n\nbody"), "fix: it");
        assert_eq!(first_line(""), "");
    }
}
