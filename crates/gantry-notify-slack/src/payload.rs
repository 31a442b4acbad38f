//! Raw payloads (`payload` / `payload-file`) for users migrating from slackapi's action: JSON or
//! YAML parsed with line and column in every error, then templated **after** parsing.
//!
//! Templating replaces `{{ github.sha }}`, `{{ env.NAME }}`, `{{ status }}` … inside string values
//! of the parsed document, so a value containing quotes or newlines can never break the JSON or
//! YAML (slackapi/slack-github-action#116, #82, #202, #427). The `${{ github.* }}` / `${{ env.* }}`
//! spelling slackapi's `payload-templated` reads from files is accepted too (the runner expands
//! `${{ }}` in an inline `payload` before we see it, so the `{{ }}` form is the one for inline use).
//! Substituted values are escaped for `mrkdwn` where they land in a `text`.
//! This module must not send anything or apply Block Kit limits (see `blocks::enforce_limits`).

use std::collections::BTreeMap;

use serde_json::Value;

/// Where the payload came from (for error messages and annotations).
#[derive(Clone, Debug)]
pub enum Source {
    /// The `payload` input.
    Inline,
    /// The `payload-file` input (path as given).
    File(String),
}

impl Source {
    /// The input name.
    pub fn input(&self) -> &'static str {
        match self {
            Self::Inline => "payload",
            Self::File(_) => "payload-file",
        }
    }
}

/// A payload that does not parse or template.
#[derive(Debug, thiserror::Error)]
#[error("input `{input}`: {what} at line {line}, column {column}: {message}")]
pub struct PayloadError {
    /// `payload` or `payload-file`.
    pub input: &'static str,
    /// The file, for `payload-file`.
    pub file: Option<String>,
    /// What failed (`invalid JSON`, `invalid YAML`, …).
    pub what: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The parser's message.
    pub message: String,
}

fn json_err(source: &Source, e: &serde_json::Error) -> PayloadError {
    PayloadError {
        input: source.input(),
        file: match source {
            Source::File(f) => Some(f.clone()),
            Source::Inline => None,
        },
        what: "invalid JSON".into(),
        line: e.line().max(1),
        column: e.column().max(1),
        message: strip_position(&e.to_string()),
    }
}

fn yaml_err(source: &Source, e: &serde_yaml::Error) -> PayloadError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    PayloadError {
        input: source.input(),
        file: match source {
            Source::File(f) => Some(f.clone()),
            Source::Inline => None,
        },
        what: "invalid YAML".into(),
        line: line.max(1),
        column: column.max(1),
        message: strip_position(&e.to_string()),
    }
}

/// Removes the parser's own " at line X column Y" suffix (we print our own).
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Parses a payload: JSON when it looks like JSON (or the file ends in `.json`), else YAML
/// (which also accepts JSON with a trailing comma). The top level must be a mapping.
pub fn parse(text: &str, source: &Source) -> Result<Value, PayloadError> {
    let is_json_file = matches!(source, Source::File(f) if f.ends_with(".json"));
    let is_yaml_file =
        matches!(source, Source::File(f) if f.ends_with(".yml") || f.ends_with(".yaml"));
    let looks_json = text.trim_start().starts_with('{');
    let value = if is_json_file || (looks_json && !is_yaml_file) {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => v,
            Err(je) => {
                // A trailing comma or a comment is fine in YAML flow style; report the JSON error
                // when YAML cannot read it either, because the author meant JSON.
                match serde_yaml::from_str::<serde_yaml::Value>(text) {
                    Ok(y) if !is_json_file => yaml_to_json(y, source)?,
                    _ => return Err(json_err(source, &je)),
                }
            }
        }
    } else {
        let y: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| yaml_err(source, &e))?;
        yaml_to_json(y, source)?
    };
    if !value.is_object() {
        return Err(PayloadError {
            input: source.input(),
            file: match source {
                Source::File(f) => Some(f.clone()),
                Source::Inline => None,
            },
            what: "not a message".into(),
            line: 1,
            column: 1,
            message: "the payload must be a mapping such as {\"text\": \"…\", \"blocks\": […]}"
                .into(),
        });
    }
    if let Some(b) = value.get("blocks")
        && !b.is_array()
    {
        return Err(PayloadError {
            input: source.input(),
            file: match source {
                Source::File(f) => Some(f.clone()),
                Source::Inline => None,
            },
            what: "invalid blocks".into(),
            line: 1,
            column: 1,
            message: "`blocks` must be a list of blocks".into(),
        });
    }
    Ok(value)
}

fn yaml_to_json(y: serde_yaml::Value, source: &Source) -> Result<Value, PayloadError> {
    serde_json::to_value(y).map_err(|e| PayloadError {
        input: source.input(),
        file: match source {
            Source::File(f) => Some(f.clone()),
            Source::Inline => None,
        },
        what: "unsupported YAML".into(),
        line: 1,
        column: 1,
        message: e.to_string(),
    })
}

/// An unknown placeholder.
#[derive(Debug, thiserror::Error)]
#[error("unknown placeholder `{placeholder}` in the payload; known: {known}")]
pub struct TemplateError {
    /// The placeholder as written.
    pub placeholder: String,
    /// Known names (abridged).
    pub known: String,
}

/// Values placeholders can name: `github.*`, `env.*` and the notification's own (`status`, …).
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// `name` → value.
    pub values: BTreeMap<String, String>,
    /// `env.*` lookups.
    pub env: BTreeMap<String, String>,
    /// The event payload, for `github.event.<path>`.
    pub event: Value,
    /// Names whose values are markup we built (mentions) and must not be escaped.
    pub markup: Vec<String>,
}

impl Vars {
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(var) = name.strip_prefix("env.") {
            return Some(self.env.get(var).cloned().unwrap_or_default());
        }
        if let Some(path) = name.strip_prefix("github.event.") {
            let pointer = format!("/{}", path.replace('.', "/"));
            return Some(match self.event.pointer(&pointer) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            });
        }
        self.values.get(name).cloned()
    }
}

/// Replaces placeholders in every string value of `payload`. Values placed in a `text` field of
/// anything but a `plain_text` object are escaped for `mrkdwn`.
pub fn template(payload: &mut Value, vars: &Vars) -> Result<(), TemplateError> {
    walk(payload, vars, false)
}

fn walk(v: &mut Value, vars: &Vars, escape: bool) -> Result<(), TemplateError> {
    match v {
        Value::String(s) if s.contains("{{") => {
            *s = expand(s, vars, escape)?;
        }
        Value::Array(items) => {
            for i in items {
                walk(i, vars, false)?;
            }
        }
        Value::Object(map) => {
            let plain = map.get("type").and_then(Value::as_str) == Some("plain_text");
            for (k, child) in map.iter_mut() {
                let esc = !plain
                    && matches!(
                        k.as_str(),
                        "text" | "fallback" | "pretext" | "title" | "footer"
                    );
                walk(child, vars, esc)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands `{{ name }}` and `${{ name }}` in one string.
pub fn expand(s: &str, vars: &Vars, escape: bool) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(end_rel) = rest[start..].find("}}") else {
            break;
        };
        let end = start + end_rel;
        let name = rest[start + 2..end].trim();
        let dollar = start > 0 && rest.as_bytes()[start - 1] == b'$';
        let prefix_end = if dollar { start - 1 } else { start };
        if !is_name(name) {
            // Not ours (e.g. text that happens to contain braces): keep as written.
            out.push_str(&rest[..end + 2]);
            rest = &rest[end + 2..];
            continue;
        }
        match vars.lookup(name) {
            Some(val) => {
                out.push_str(&rest[..prefix_end]);
                out.push_str(&if escape && !vars.markup.iter().any(|m| m == name) {
                    crate::mrkdwn::escape(&val)
                } else {
                    val
                });
            }
            None => {
                let known: Vec<&str> = vars.values.keys().map(String::as_str).take(40).collect();
                return Err(TemplateError {
                    placeholder: rest[prefix_end..end + 2].to_string(),
                    known: format!("{}, env.<NAME>", known.join(", ")),
                });
            }
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_errors_have_line_and_column() {
        let e = parse(
            "{\n  \"text\": \"a\",\n  \"blocks\": [\n}\n",
            &Source::File("slack.json".into()),
        )
        .unwrap_err();
        assert_eq!((e.input, e.line), ("payload-file", 4));
        assert!(e.to_string().contains("line 4, column 1"), "{e}");
        assert!(!e.message.contains(" at line "), "{}", e.message);
    }

    #[test]
    fn yaml_errors_have_line_and_column() {
        let e = parse(
            "text: hi\nblocks:\n  - type: section\n   text: bad\n",
            &Source::Inline,
        )
        .unwrap_err();
        assert_eq!(e.input, "payload");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.what.contains("YAML"));
    }

    #[test]
    fn trailing_comma_json_is_accepted_via_yaml() {
        let v = parse("{\"text\": \"hi\",}", &Source::Inline).unwrap();
        assert_eq!(v, json!({"text": "hi"}));
        let e = parse("[1, 2]", &Source::Inline).unwrap_err();
        assert!(e.to_string().contains("mapping"));
        assert!(parse("{\"blocks\": 3}", &Source::Inline).is_err());
    }

    #[test]
    fn templates_after_parsing_and_escapes_text() {
        let mut v = parse(
            "text: \"Deploy {{ github.sha }} by ${{ github.actor }}\"\nblocks:\n  - type: section\n    text: {type: mrkdwn, text: \"{{ commit }}\"}\n  - type: header\n    text: {type: plain_text, text: \"{{ commit }}\"}\nchannel: \"{{ env.CH }}\"\n",
            &Source::Inline,
        )
        .unwrap();
        let mut vars = Vars::default();
        vars.values.insert("github.sha".into(), "abc".into());
        vars.values
            .insert("github.actor".into(), "o\"ctocat".into());
        vars.values
            .insert("commit".into(), "fix <!channel> \"quoted\"\nnext".into());
        vars.env.insert("CH".into(), "C123".into());
        template(&mut v, &vars).unwrap();
        assert_eq!(v["text"], "Deploy abc by o\"ctocat");
        assert_eq!(
            v["blocks"][0]["text"]["text"],
            "fix &lt;!channel&gt; \"quoted\"\nnext"
        );
        assert_eq!(
            v["blocks"][1]["text"]["text"],
            "fix <!channel> \"quoted\"\nnext"
        );
        assert_eq!(v["channel"], "C123");
        let mut bad = json!({"text": "{{ github.nope }}"});
        let e = template(&mut bad, &vars).unwrap_err();
        assert!(e.to_string().contains("{{ github.nope }}"), "{e}");
        let mut odd = json!({"text": "a {{ not a name }} b"});
        template(&mut odd, &vars).unwrap();
        assert_eq!(odd["text"], "a {{ not a name }} b");
    }
}
