//! The subset of Handlebars that upstream's expressions use, with Handlebars' observable
//! behaviour: `{{name}}` (HTML-escaped output), `{{{name}}}` and `{{&name}}` (raw), helper calls
//! with string/number/path parameters and `key=value` hash arguments, comments, `\{{` escapes
//! and `~` whitespace control. An unknown bare name renders `""`; an unknown name with parameters
//! is a "Missing helper" error, as in Handlebars.
//!
//! It must not know what any name means: a [`Scope`] supplies values and helpers. Block helpers
//! (`{{#if}}`…) and partials are refused with a clear error instead of being half-supported.
//!
//! See: <https://handlebarsjs.com/guide/expressions.html>

/// An error compiling or rendering a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The template does not parse.
    #[error("cannot parse expression `{template}`: {reason}")]
    Parse {
        /// The template text.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// A name was called with parameters but is not a helper.
    #[error("Missing helper: \"{0}\"")]
    MissingHelper(String),
    /// A helper refused its arguments.
    #[error("{0}")]
    Helper(String),
}

/// A parameter or hash value.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A string literal.
    Str(String),
    /// A number literal (kept as written).
    Num(String),
    /// A path (`foo`, `YYYY-MM-DD`) — its lookup result; `None` when undefined.
    Path(String, Option<String>),
    /// `true`/`false`/`null`/`undefined` literals.
    Literal(String),
}

impl Arg {
    /// The value as a string (`None` for undefined paths and null/undefined).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Arg::Str(s) | Arg::Num(s) => Some(s),
            Arg::Path(_, v) => v.as_deref(),
            Arg::Literal(l) if l == "true" || l == "false" => Some(l),
            Arg::Literal(_) => None,
        }
    }
}

/// What a template can see.
pub trait Scope {
    /// The value of a bare `{{name}}` (no parameters). `Ok(None)` means undefined (renders `""`).
    fn value(&self, name: &str) -> Result<Option<String>, ExprError>;
    /// Calls helper `name` with parameters. `Ok(None)` means there is no such helper.
    fn call(
        &self,
        name: &str,
        params: &[Arg],
        hash: &[(String, Arg)],
    ) -> Result<Option<String>, ExprError>;
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Mustache {
        name: String,
        params: Vec<ParsedArg>,
        hash: Vec<(String, ParsedArg)>,
        escape: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum ParsedArg {
    Str(String),
    Num(String),
    Path(String),
    Literal(String),
}

/// A compiled template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// HTML-escapes like `Handlebars.Utils.escapeExpression`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
    out
}

fn is_id_char(c: char) -> bool {
    // Handlebars ID: anything but whitespace and !"#%&'()*+,./;<=>@[\]^`{|}~
    !(c.is_whitespace() || "!\"#%&'()*+,./;<=>@[\\]^`{|}~".contains(c))
}

impl Template {
    /// Whether `text` contains anything Handlebars would interpret (fast path for plain text).
    pub fn is_plain(text: &str) -> bool {
        !text.contains("{{")
    }

    /// Compiles a template.
    pub fn parse(template: &str) -> Result<Template, ExprError> {
        let err = |reason: &str| ExprError::Parse {
            template: template.to_string(),
            reason: reason.to_string(),
        };
        let mut parts: Vec<Part> = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        let mut strip_next = false;
        while !rest.is_empty() {
            let Some(pos) = rest.find("{{") else {
                text.push_str(rest);
                break;
            };
            // `\{{` escapes a mustache (`\\{{` is a backslash then a mustache).
            let before = &rest[..pos];
            if before.ends_with('\\') && !before.ends_with("\\\\") {
                text.push_str(&before[..before.len() - 1]);
                text.push_str("{{");
                rest = &rest[pos + 2..];
                continue;
            }
            if before.ends_with("\\\\") {
                text.push_str(&before[..before.len() - 1]);
            } else {
                text.push_str(before);
            }
            if strip_next {
                text = text.trim_start().to_string();
                strip_next = false;
            }
            let after = &rest[pos + 2..];
            let triple = after.starts_with('{');
            let (inner, consumed) = if let Some(stripped) = after.strip_prefix("!--") {
                let end = stripped
                    .find("--}}")
                    .ok_or_else(|| err("unclosed comment"))?;
                (None, 3 + end + 4)
            } else if after.starts_with('!') {
                let end = after.find("}}").ok_or_else(|| err("unclosed comment"))?;
                (None, end + 2)
            } else if triple {
                let end = after.find("}}}").ok_or_else(|| err("expected `}}}`"))?;
                (Some(&after[1..end]), end + 3)
            } else {
                let end = after.find("}}").ok_or_else(|| err("expected `}}`"))?;
                (Some(&after[..end]), end + 2)
            };
            rest = &after[consumed..];
            let Some(mut inner) = inner else {
                continue;
            };
            if let Some(s) = inner.strip_prefix('~') {
                inner = s;
                let t = text.trim_end().to_string();
                text = t;
            }
            if let Some(s) = inner.strip_suffix('~') {
                inner = s;
                strip_next = true;
            }
            let mut escape = !triple;
            let inner = inner.trim();
            let inner = if let Some(s) = inner.strip_prefix('&') {
                escape = false;
                s.trim()
            } else {
                inner
            };
            if inner.is_empty() {
                return Err(err("empty expression"));
            }
            if let Some(c) = inner.chars().next()
                && "#/^>*".contains(c)
            {
                return Err(err(
                    "block helpers and partials are not supported; use a plain expression",
                ));
            }
            if inner == "else" {
                return Err(err("`else` outside a block is not supported"));
            }
            let (name, params, hash) = parse_call(inner).map_err(|r| err(&r))?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Mustache {
                name,
                params,
                hash,
                escape,
            });
        }
        if strip_next {
            text = text.trim_start().to_string();
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Whether the template is exactly one mustache naming `name` (upstream's `isRawStatement`).
    pub fn is_single(&self, want: &str) -> bool {
        matches!(self.parts.as_slice(), [Part::Mustache { name, .. }] if name == want)
    }

    /// Renders with `scope`.
    pub fn render(&self, scope: &dyn Scope) -> Result<String, ExprError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Mustache {
                    name,
                    params,
                    hash,
                    escape: esc,
                } => {
                    let v = if params.is_empty() && hash.is_empty() {
                        scope.value(name)?
                    } else {
                        let resolve = |a: &ParsedArg| -> Result<Arg, ExprError> {
                            Ok(match a {
                                ParsedArg::Str(s) => Arg::Str(s.clone()),
                                ParsedArg::Num(s) => Arg::Num(s.clone()),
                                ParsedArg::Literal(s) => Arg::Literal(s.clone()),
                                ParsedArg::Path(p) => Arg::Path(p.clone(), scope.value(p)?),
                            })
                        };
                        let ps = params.iter().map(resolve).collect::<Result<Vec<_>, _>>()?;
                        let hs = hash
                            .iter()
                            .map(|(k, a)| Ok((k.clone(), resolve(a)?)))
                            .collect::<Result<Vec<_>, ExprError>>()?;
                        match scope.call(name, &ps, &hs)? {
                            Some(v) => Some(v),
                            None => return Err(ExprError::MissingHelper(name.clone())),
                        }
                    };
                    let v = v.unwrap_or_default();
                    if *esc {
                        out.push_str(&escape(&v));
                    } else {
                        out.push_str(&v);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Compiles and renders in one go; plain text is returned unchanged without parsing.
pub fn render(template: &str, scope: &dyn Scope) -> Result<String, ExprError> {
    if Template::is_plain(template) {
        return Ok(template.to_string());
    }
    Template::parse(template)?.render(scope)
}

type Call = (String, Vec<ParsedArg>, Vec<(String, ParsedArg)>);

fn parse_call(inner: &str) -> Result<Call, String> {
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let mut tokens: Vec<(Option<String>, ParsedArg)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut first = true;
    let mut name = String::new();
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        // optional `key=`
        let mut key = None;
        let start = i;
        let mut j = i;
        while j < chars.len() && is_id_char(chars[j]) {
            j += 1;
        }
        if !first && j > start && j < chars.len() && chars[j] == '=' {
            key = Some(chars[start..j].iter().collect::<String>());
            i = j + 1;
        }
        let c = chars.get(i).copied().ok_or("missing value after `=`")?;
        let arg = if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let ch = chars.get(i).copied().ok_or("unterminated string literal")?;
                i += 1;
                if ch == '\\' && chars.get(i) == Some(&c) {
                    s.push(c);
                    i += 1;
                    continue;
                }
                if ch == c {
                    break;
                }
                s.push(ch);
            }
            ParsedArg::Str(s)
        } else if c == '(' {
            return Err("sub-expressions are not supported".into());
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|&x| x == ']')
                .ok_or("unterminated `[`")?;
            let s: String = chars[i + 1..i + end].iter().collect();
            i += end + 1;
            ParsedArg::Path(s)
        } else {
            let s0 = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
                i += 1;
            }
            let word: String = chars[s0..i].iter().collect();
            if word.is_empty() {
                return Err(format!("unexpected `{}`", chars[i]));
            }
            if matches!(word.as_str(), "true" | "false" | "null" | "undefined") {
                ParsedArg::Literal(word)
            } else if word
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                && word.chars().any(|c| c.is_ascii_digit())
            {
                ParsedArg::Num(word)
            } else {
                let path = word
                    .strip_prefix("this.")
                    .or_else(|| word.strip_prefix("./"))
                    .unwrap_or(&word)
                    .to_string();
                if !path.chars().all(|c| is_id_char(c) || c == '.' || c == '/') {
                    return Err(format!("invalid identifier `{word}`"));
                }
                ParsedArg::Path(path)
            }
        };
        if first {
            match arg {
                ParsedArg::Path(p) => name = p,
                ParsedArg::Str(s) | ParsedArg::Num(s) | ParsedArg::Literal(s) => name = s,
            }
            first = false;
        } else {
            tokens.push((key, arg));
        }
    }
    let mut params = Vec::new();
    let mut hash = Vec::new();
    for (k, a) in tokens {
        match k {
            Some(k) => hash.push((k, a)),
            None if hash.is_empty() => params.push(a),
            None => return Err("positional parameter after a hash argument".into()),
        }
    }
    Ok((name, params, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S;
    impl Scope for S {
        fn value(&self, name: &str) -> Result<Option<String>, ExprError> {
            Ok(match name {
                "branch" => Some("feat=x".into()),
                "n" => Some("1".into()),
                _ => None,
            })
        }
        fn call(
            &self,
            name: &str,
            params: &[Arg],
            hash: &[(String, Arg)],
        ) -> Result<Option<String>, ExprError> {
            Ok((name == "echo").then(|| {
                let mut s: Vec<String> = params
                    .iter()
                    .map(|p| p.as_str().unwrap_or("undefined").to_string())
                    .collect();
                s.extend(
                    hash.iter()
                        .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or("undefined"))),
                );
                s.join("|")
            }))
        }
    }

    fn r(t: &str) -> Result<String, ExprError> {
        render(t, &S)
    }

    #[test]
    fn escaping_and_raw() {
        assert_eq!(r("a-{{branch}}").unwrap(), "a-feat&#x3D;x");
        assert_eq!(r("{{{branch}}}").unwrap(), "feat=x");
        assert_eq!(r("{{& branch }}").unwrap(), "feat=x");
        assert_eq!(r("{{unknown}}x").unwrap(), "x");
        assert_eq!(r("\\{{branch}}").unwrap(), "{{branch}}");
        assert_eq!(r("{{! a comment }}ok{{!-- x }} --}}").unwrap(), "ok");
        assert_eq!(r("a {{~n~}} b").unwrap(), "a1b");
    }

    #[test]
    fn helpers_and_params() {
        assert_eq!(
            r("{{echo 'YYYY' \"b\" 5 YYYY-MM-DD tz='UTC'}}").unwrap(),
            "YYYY|b|5|undefined|tz:UTC"
        );
        assert_eq!(
            r("{{foo 'x'}}").unwrap_err(),
            ExprError::MissingHelper("foo".into())
        );
        assert!(r("{{#if x}}y{{/if}}").is_err());
        assert!(r("{{branch").is_err());
        assert!(r("{{}}").is_err());
    }

    #[test]
    fn single_statement() {
        assert!(Template::parse("{{raw}}").unwrap().is_single("raw"));
        assert!(Template::parse(" {{ raw }}").is_ok_and(|t| !t.is_single("raw")));
        assert!(!Template::parse("{{raw}}-x").unwrap().is_single("raw"));
    }
}
