//! The tag computation: walk the entries in priority order, produce one value per applicable
//! entry (prefix/suffix, sanitisation), decide `version.main`, the partials and `latest` exactly
//! as upstream does, then build the full tag list per image. Also the global expressions
//! (`{{branch}}`, `{{date 'fmt' tz='…'}}`, …) as a [`Scope`].
//!
//! It is pure: no I/O, no clock, no environment. Everything comes in through [`MetaContext`];
//! warnings are collected for the caller to print.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::expr::{self, Arg, ExprError, Scope, Template};
use crate::moment;
use crate::tags::{self, EntryError, Flavor, Image, Latest, TagEntry, TagType};
use crate::version::{Pep440, SemVer};

/// Everything the computation reads about the run.
#[derive(Clone, Debug)]
pub struct MetaContext {
    /// Event name (`push`, `pull_request`, …).
    pub event_name: String,
    /// The git ref (after the pull_request_target rewrite).
    pub git_ref: String,
    /// The commit SHA (after the PR-head switch).
    pub sha: String,
    /// The event payload (`{}` when none).
    pub payload: Value,
    /// The commit date.
    pub commit_date: DateTime<Utc>,
    /// "Now" for `{{date}}` (one instant per run).
    pub now: DateTime<Utc>,
    /// `DOCKER_METADATA_SHORT_SHA_LENGTH` as given.
    pub short_sha_length: Option<String>,
    /// The PR head branch (`{{head_ref}}`).
    pub head_ref: String,
    /// `default_branch` from the repository API (for `type=edge`).
    pub api_default_branch: String,
    /// Strict mode.
    pub strict: bool,
}

/// An error computing metadata. Each names the input and the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// A bad entry.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// An expression failed.
    #[error("{input}: expression `{text}`: {source}")]
    Expr {
        /// Input name.
        input: &'static str,
        /// The text.
        text: String,
        /// The error.
        source: ExprError,
    },
    /// `enable` did not render to `true`/`false`.
    #[error("tags entry `{entry}`: Invalid value for enable attribute: {value}")]
    Enable {
        /// The entry.
        entry: String,
        /// What it rendered to.
        value: String,
    },
    /// A regex does not compile.
    #[error("tags entry `{entry}`: invalid regular expression `{pattern}`: {reason}")]
    Regex {
        /// The entry.
        entry: String,
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// `DOCKER_METADATA_SHORT_SHA_LENGTH` is not a number.
    #[error("DOCKER_METADATA_SHORT_SHA_LENGTH is not a valid number: {0}")]
    ShortSha(String),
    /// A semver `match=` has no capture group.
    #[error("tags entry `{entry}`: match regex `{pattern}` has no capture group 1")]
    NoGroup {
        /// The entry.
        entry: String,
        /// The pattern.
        pattern: String,
    },
    /// Something strict mode refuses.
    #[error("{input}: {reason} (strict)")]
    Strict {
        /// Input name.
        input: &'static str,
        /// What.
        reason: String,
    },
}

/// `version` as upstream computes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// The first produced value.
    pub main: Option<String>,
    /// Later distinct values.
    pub partial: Vec<String>,
    /// Whether `latest` is emitted.
    pub latest: bool,
}

/// The first semver entry's input, kept for `latest=highest-semver`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SemverSource {
    /// The version text after `match=` (e.g. `v1.2.3`).
    pub value: String,
    /// The entry's `match=` regex, if any.
    pub matcher: Option<String>,
}

/// The result of the tag computation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Computed {
    /// Version.
    pub version: Version,
    /// Enabled image names, lowercased.
    pub images: Vec<String>,
    /// Full tags.
    pub tags: Vec<String>,
    /// Tag names once, without images.
    pub tag_names: Vec<String>,
    /// Warnings to print.
    pub warnings: Vec<String>,
    /// For `latest=highest-semver`.
    pub semver_source: Option<SemverSource>,
}

/// The ref upstream uses for a workflow event: `pull_request_target` runs get
/// `refs/pull/<payload.number>/merge` (GitHub sends the base branch as `GITHUB_REF` there).
///
/// See: <https://docs.github.com/en/actions/reference/workflows-and-actions/events-that-trigger-workflows#pull_request_target>
pub fn workflow_ref(event_name: &str, git_ref: &str, payload: &Value) -> String {
    if event_name.contains("pull_request_target") {
        let n = match payload.get("number") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "undefined".to_string(),
            Some(v) => v.to_string(),
        };
        return format!("refs/pull/{n}/merge");
    }
    git_ref.to_string()
}

/// The commit date from the payload, in upstream's order: the `commits[]` entry whose `id` is
/// `sha`, then `head_commit` when its `id` is `sha`. `None` means: ask the API, then use now.
pub fn payload_commit_date(payload: &Value, sha: &str) -> Option<(DateTime<Utc>, &'static str)> {
    if let Some(d) = payload
        .get("commits")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(sha))
        })
        .and_then(|c| c.get("timestamp").and_then(Value::as_str))
        .and_then(moment::parse_instant)
    {
        return Some((d, "payload commits[]"));
    }
    let head = payload.get("head_commit")?;
    if head.get("id").and_then(Value::as_str) == Some(sha) {
        let d = head
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(moment::parse_instant)?;
        return Some((d, "payload head_commit"));
    }
    None
}

/// `[^a-zA-Z0-9._-]+` → `-`.
pub fn sanitize_tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// A Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_docker_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A Docker repository name: optional `host[:port]/`, then lowercase path components.
pub fn is_valid_image_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = first.split_once(':').unwrap_or((first, ""));
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !host_ok || (!port.is_empty() && port.parse::<u16>().is_err()) {
                return false;
            }
            parts.remove(0);
        }
    }
    !parts.is_empty()
        && parts.iter().all(|p| {
            // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
            let b = p.as_bytes();
            if b.is_empty()
                || !b[0].is_ascii_alphanumeric()
                || !b[b.len() - 1].is_ascii_alphanumeric()
            {
                return false;
            }
            if !p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            }) {
                return false;
            }
            !p.contains("..")
                && !p.contains("___")
                && !p.contains("._")
                && !p.contains("_.")
                && !p.contains(".-")
                && !p.contains("-.")
                && !p.contains("_-")
                && !p.contains("-_")
        })
}

impl MetaContext {
    fn payload_str(&self, pointer: &str) -> Option<String> {
        match self.payload.pointer(pointer)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The short SHA (`DOCKER_METADATA_SHORT_SHA_LENGTH`, default 7).
    pub fn short_sha(&self) -> Result<String, MetaError> {
        let mut len = 7.0;
        if let Some(raw) = self.short_sha_length.as_deref().filter(|s| !s.is_empty()) {
            len = tags::js_number(raw).ok_or_else(|| MetaError::ShortSha(raw.to_string()))?;
        }
        let n = self.sha.chars().count();
        if len >= n as f64 {
            return Ok(self.sha.clone());
        }
        let take = if len.is_nan() || len <= 0.0 {
            0
        } else {
            len.floor() as usize
        };
        Ok(self.sha.chars().take(take).collect())
    }

    fn branch(&self) -> String {
        self.git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or("")
            .to_string()
    }

    fn tag(&self) -> String {
        self.git_ref
            .strip_prefix("refs/tags/")
            .unwrap_or("")
            .to_string()
    }

    fn base_ref(&self) -> String {
        if self.git_ref.starts_with("refs/tags/")
            && let Some(b) = self.payload_str("/base_ref")
        {
            return b.strip_prefix("refs/heads/").unwrap_or(&b).to_string();
        }
        if self.git_ref.starts_with("refs/pull/")
            && let Some(b) = self.payload_str("/pull_request/base/ref")
        {
            return b;
        }
        String::new()
    }

    fn is_default_branch(&self) -> bool {
        let branch = self
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.git_ref);
        if branch.is_empty() {
            return false;
        }
        if self.payload_str("/repository/default_branch").as_deref() == Some(branch) {
            return true;
        }
        let e = &self.event_name;
        e.contains("create")
            || e.contains("discussion")
            || e.contains("issues")
            || e.contains("schedule")
    }

    fn format_date(
        &self,
        instant: DateTime<Utc>,
        helper: &str,
        params: &[Arg],
        hash: &[(String, Arg)],
    ) -> Result<String, ExprError> {
        let mut tz = chrono_tz::UTC;
        for (k, v) in hash {
            if k != "tz" {
                return Err(ExprError::Helper(format!("Unknown {k} attribute")));
            }
            let name = v.as_str().ok_or_else(|| {
                ExprError::Helper(format!(
                    "{helper}: tz must be a quoted zone name, e.g. tz='Europe/Paris'"
                ))
            })?;
            match moment::zone(name) {
                Some(z) => tz = z,
                None if self.strict => {
                    return Err(ExprError::Helper(format!(
                        "{helper}: unknown time zone `{name}` (strict)"
                    )));
                }
                None => {}
            }
        }
        let fmt = params.first().and_then(|p| p.as_str());
        Ok(moment::format(instant, tz, fmt))
    }
}

/// The global-expression scope (tags' value/prefix/suffix/enable, flavor prefix/suffix, labels).
struct GlobalScope<'a> {
    ctx: &'a MetaContext,
}

impl Scope for GlobalScope<'_> {
    fn value(&self, name: &str) -> Result<Option<String>, ExprError> {
        let c = self.ctx;
        Ok(Some(match name {
            "branch" => c.branch(),
            "tag" => c.tag(),
            "sha" => c
                .short_sha()
                .map_err(|e| ExprError::Helper(e.to_string()))?,
            "base_ref" => c.base_ref(),
            "head_ref" => c.head_ref.clone(),
            "is_default_branch" => c.is_default_branch().to_string(),
            "is_not_default_branch" => (!c.is_default_branch()).to_string(),
            "date" | "commit_date" => {
                return Err(ExprError::Helper(format!(
                    "{{{{{name}}}}} needs a quoted format, e.g. {{{{{name} 'YYYYMMDD'}}}}"
                )));
            }
            _ => return Ok(None),
        }))
    }

    fn call(
        &self,
        name: &str,
        params: &[Arg],
        hash: &[(String, Arg)],
    ) -> Result<Option<String>, ExprError> {
        match name {
            "date" => self
                .ctx
                .format_date(self.ctx.now, name, params, hash)
                .map(Some),
            "commit_date" => self
                .ctx
                .format_date(self.ctx.commit_date, name, params, hash)
                .map(Some),
            _ => self.value(name),
        }
    }
}

/// The `schedule` pattern scope: only `date` and `commit_date`.
struct DateScope<'a> {
    ctx: &'a MetaContext,
}

impl Scope for DateScope<'_> {
    fn value(&self, name: &str) -> Result<Option<String>, ExprError> {
        match name {
            "date" | "commit_date" => GlobalScope { ctx: self.ctx }.value(name),
            _ => Ok(None),
        }
    }
    fn call(
        &self,
        name: &str,
        params: &[Arg],
        hash: &[(String, Arg)],
    ) -> Result<Option<String>, ExprError> {
        match name {
            "date" | "commit_date" => GlobalScope { ctx: self.ctx }.call(name, params, hash),
            _ => Ok(None),
        }
    }
}

/// A fixed map of values (semver and pep440 patterns). `functions`: the names are helper
/// functions that ignore their arguments (pep440) rather than plain values (semver), where a
/// call with parameters is Handlebars' "Missing helper".
struct MapScope {
    values: Vec<(&'static str, String)>,
    functions: bool,
}

impl Scope for MapScope {
    fn value(&self, name: &str) -> Result<Option<String>, ExprError> {
        Ok(self
            .values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone()))
    }
    fn call(
        &self,
        name: &str,
        _: &[Arg],
        _: &[(String, Arg)],
    ) -> Result<Option<String>, ExprError> {
        if self.functions {
            self.value(name)
        } else {
            Ok(None)
        }
    }
}

/// Evaluates global expressions in `text`.
pub fn global_exp(ctx: &MetaContext, input: &'static str, text: &str) -> Result<String, MetaError> {
    expr::render(text, &GlobalScope { ctx }).map_err(|source| MetaError::Expr {
        input,
        text: text.to_string(),
        source,
    })
}

fn render_with(scope: &dyn Scope, input: &'static str, text: &str) -> Result<String, MetaError> {
    expr::render(text, scope).map_err(|source| MetaError::Expr {
        input,
        text: text.to_string(),
        source,
    })
}

fn is_raw_statement(pattern: &str) -> bool {
    Template::parse(pattern).is_ok_and(|t| t.is_single("raw"))
}

/// Translates JavaScript regex source (Annex B syntax, as V8 accepts it without the `u` flag) to
/// the regex crate's syntax: a `{` that does not start a quantifier and a lone `}` or `]` are
/// literals; `[` inside a class is a literal; `\d`/`\w` are ASCII-only.
pub fn js_regex_source(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    let quantifier_end = |i: usize| -> Option<usize> {
        // `{n}`, `{n,}`, `{n,m}` starting at i
        let mut j = i + 1;
        let start = j;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        if j == start {
            return None;
        }
        if j < chars.len() && chars[j] == ',' {
            j += 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
        }
        (j < chars.len() && chars[j] == '}').then_some(j)
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('d') => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
                Some('w') => out.push_str(if in_class {
                    "A-Za-z0-9_"
                } else {
                    "[A-Za-z0-9_]"
                }),
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if chars.get(i + 1) == Some(&'-') => out.push_str("\\-"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    // `[]` never matches in JS; `[^]` matches anything.
                    out.push_str(if out.ends_with('^') {
                        "\\s\\S"
                    } else {
                        "^\\s\\S"
                    });
                }
            }
            '{' => match quantifier_end(i) {
                Some(j) if i > 0 && !matches!(chars[i - 1], '(' | '|') => {
                    out.extend(&chars[i..=j]);
                    i = j;
                }
                _ => out.push_str("\\{"),
            },
            '}' | ']' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// A JavaScript regex (`/source/flags` or a plain source) as a Rust regex; `global` reported.
fn js_regex(
    entry: &str,
    pattern: &str,
    allow_slashes: bool,
) -> Result<(regex::Regex, bool), MetaError> {
    let (source, flags) = match (
        allow_slashes,
        pattern
            .strip_prefix('/')
            .and_then(|p| p.rfind('/').map(|i| (&p[..i], &p[i + 1..]))),
    ) {
        (true, Some((s, f))) if !s.is_empty() => (s.to_string(), f.to_string()),
        _ => (pattern.to_string(), String::new()),
    };
    let mut b = regex::RegexBuilder::new(&js_regex_source(&source));
    let mut global = false;
    for f in flags.chars() {
        match f {
            'i' => {
                b.case_insensitive(true);
            }
            'm' => {
                b.multi_line(true);
            }
            's' => {
                b.dot_matches_new_line(true);
            }
            'g' => global = true,
            'u' | 'y' | 'd' | 'v' => {}
            other => {
                return Err(MetaError::Regex {
                    entry: entry.to_string(),
                    pattern: pattern.to_string(),
                    reason: format!("Invalid flags supplied to RegExp constructor '{other}'"),
                });
            }
        }
    }
    b.size_limit(1 << 20);
    let re = b.build().map_err(|e| MetaError::Regex {
        entry: entry.to_string(),
        pattern: pattern.to_string(),
        reason: e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string(),
    })?;
    Ok((re, global))
}

/// The tag computation.
pub struct Computation<'a> {
    ctx: &'a MetaContext,
    flavor: &'a Flavor,
    version: Version,
    latest_set: bool,
    warnings: Vec<String>,
    semver_source: Option<SemverSource>,
}

impl<'a> Computation<'a> {
    fn auto(&self, verdict: bool) -> bool {
        match self.flavor.latest {
            Latest::Auto | Latest::HighestSemver => verdict,
            Latest::True => true,
            Latest::False => false,
        }
    }

    fn set_value(&self, val: &str, tag: &TagEntry) -> Result<String, MetaError> {
        let mut v = val.to_string();
        if let Some(p) = tag.get("prefix") {
            v = format!("{}{v}", global_exp(self.ctx, "tags", p)?);
        } else if !self.flavor.prefix.is_empty() {
            v = format!(
                "{}{v}",
                global_exp(self.ctx, "flavor", &self.flavor.prefix)?
            );
        }
        if let Some(s) = tag.get("suffix") {
            v = format!("{v}{}", global_exp(self.ctx, "tags", s)?);
        } else if !self.flavor.suffix.is_empty() {
            v = format!(
                "{v}{}",
                global_exp(self.ctx, "flavor", &self.flavor.suffix)?
            );
        }
        Ok(v)
    }

    fn set_version(&mut self, val: String, latest: bool) {
        if val.is_empty() {
            return;
        }
        let val = sanitize_tag(&val);
        match &self.version.main {
            None => self.version.main = Some(val),
            Some(m) if *m != val => self.version.partial.push(val),
            Some(_) => {}
        }
        if !self.latest_set {
            self.latest_set = true;
            self.version.latest = latest;
        }
    }

    fn ref_value(&self, tag: &TagEntry) -> Result<Option<String>, MetaError> {
        let value = tag.attr("value");
        if !self.ctx.git_ref.starts_with("refs/tags/") && value.is_empty() {
            return Ok(None);
        }
        if !value.is_empty() {
            return Ok(Some(global_exp(self.ctx, "tags", value)?));
        }
        Ok(Some(self.ctx.tag()))
    }

    fn apply_match(&mut self, tag: &TagEntry, vraw: String) -> Result<String, MetaError> {
        let m = tag.attr("match");
        if m.is_empty() {
            return Ok(vraw);
        }
        let (re, _) = js_regex(&tag.source, m, false)?;
        match re.captures(&vraw) {
            None => {
                if self.ctx.strict {
                    return Err(MetaError::Strict {
                        input: "tags",
                        reason: format!(
                            "entry `{}`: match `{m}` does not match `{vraw}`",
                            tag.source
                        ),
                    });
                }
                self.warnings.push(format!("{m} does not match {vraw}."));
                Ok(vraw)
            }
            Some(c) => match c.get(1) {
                Some(g) => Ok(g.as_str().to_string()),
                None => Err(MetaError::NoGroup {
                    entry: tag.source.clone(),
                    pattern: m.to_string(),
                }),
            },
        }
    }

    fn proc_semver(&mut self, tag: &TagEntry) -> Result<(), MetaError> {
        let Some(vraw) = self.ref_value(tag)? else {
            return Ok(());
        };
        let vraw = self.apply_match(tag, vraw)?.replace('/', "-");
        let Some(sv) = SemVer::parse(&vraw) else {
            self.warnings.push(format!(
                "{vraw} is not a valid semver. More info: https://semver.org/"
            ));
            return Ok(());
        };
        if self.semver_source.is_none() {
            self.semver_source = Some(SemverSource {
                value: vraw.clone(),
                matcher: Some(tag.attr("match").to_string()).filter(|m| !m.is_empty()),
            });
        }
        let scope = MapScope {
            functions: false,
            values: vec![
                ("raw", sv.raw.clone()),
                ("version", sv.version.clone()),
                ("major", sv.major.to_string()),
                ("minor", sv.minor.to_string()),
                ("patch", sv.patch.to_string()),
                ("prerelease", sv.prerelease.join(",")),
                ("build", sv.build.join(",")),
                ("loose", "true".into()),
            ],
        };
        let pattern = tag.attr("pattern");
        let (out, latest) = if sv.is_prerelease() {
            let p = if is_raw_statement(pattern) {
                pattern
            } else {
                "{{version}}"
            };
            (render_with(&scope, "tags", p)?, false)
        } else {
            (render_with(&scope, "tags", pattern)?, true)
        };
        let v = self.set_value(&out, tag)?;
        let l = self.auto(latest);
        self.set_version(v, l);
        Ok(())
    }

    fn proc_pep440(&mut self, tag: &TagEntry) -> Result<(), MetaError> {
        let Some(vraw) = self.ref_value(tag)? else {
            return Ok(());
        };
        let vraw = self.apply_match(tag, vraw)?.replace('/', "-");
        let Some(pv) = Pep440::parse(&vraw) else {
            self.warnings.push(format!(
                "{vraw} does not conform to PEP 440. More info: https://www.python.org/dev/peps/pep-0440"
            ));
            return Ok(());
        };
        let pattern = tag.attr("pattern");
        let (out, latest) = if pv.is_prerelease() || pv.is_postrelease() || pv.is_devrelease() {
            if is_raw_statement(pattern) {
                (vraw.clone(), false)
            } else {
                (pv.clean(), false)
            }
        } else {
            let scope = MapScope {
                functions: true,
                values: vec![
                    ("raw", vraw.clone()),
                    ("version", pv.clean()),
                    ("major", pv.major().to_string()),
                    ("minor", pv.minor().to_string()),
                    ("patch", pv.patch().to_string()),
                ],
            };
            (render_with(&scope, "tags", pattern)?, true)
        };
        let v = self.set_value(&out, tag)?;
        let l = self.auto(latest);
        self.set_version(v, l);
        Ok(())
    }

    fn proc_match(&mut self, tag: &TagEntry) -> Result<(), MetaError> {
        let Some(vraw) = self.ref_value(tag)? else {
            return Ok(());
        };
        let pattern = tag.attr("pattern");
        let (re, global) = js_regex(&tag.source, pattern, true)?;
        let group = tag.attr("group");
        let found: Option<Vec<Option<String>>> = if global {
            let all: Vec<Option<String>> = re
                .find_iter(&vraw)
                .map(|m| Some(m.as_str().to_string()))
                .collect();
            (!all.is_empty()).then_some(all)
        } else {
            re.captures(&vraw).map(|c| {
                c.iter()
                    .map(|m| m.map(|m| m.as_str().to_string()))
                    .collect()
            })
        };
        let Some(found) = found else {
            self.warnings
                .push(format!("{pattern} does not match {vraw}."));
            return Ok(());
        };
        // `tmatch[group]`: a property lookup, so only a canonical index string finds a group.
        let idx = group
            .parse::<usize>()
            .ok()
            .filter(|i| i.to_string() == group);
        let Some(Some(val)) = idx.and_then(|i| found.get(i).cloned()) else {
            self.warnings.push(format!(
                "Group {group} does not exist for {pattern} pattern."
            ));
            return Ok(());
        };
        let v = self.set_value(&val, tag)?;
        let l = self.auto(true);
        self.set_version(v, l);
        Ok(())
    }

    fn proc(&mut self, tag: &TagEntry) -> Result<(), MetaError> {
        let r = &self.ctx.git_ref;
        match tag.kind {
            TagType::Schedule => {
                if !self.ctx.event_name.contains("schedule") {
                    return Ok(());
                }
                let out = render_with(&DateScope { ctx: self.ctx }, "tags", tag.attr("pattern"))?;
                let v = self.set_value(&out, tag)?;
                let l = self.auto(false);
                self.set_version(v, l);
            }
            TagType::Semver => self.proc_semver(tag)?,
            TagType::Pep440 => self.proc_pep440(tag)?,
            TagType::Match => self.proc_match(tag)?,
            TagType::Ref => {
                let (val, latest) = match tag.attr("event") {
                    "branch" if r.starts_with("refs/heads/") => (self.ctx.branch(), false),
                    "tag" if r.starts_with("refs/tags/") => (self.ctx.tag(), true),
                    "pr" if r.starts_with("refs/pull/") => {
                        let v = r.trim_start_matches("refs/pull/");
                        (v.strip_suffix("/merge").unwrap_or(v).to_string(), false)
                    }
                    _ => return Ok(()),
                };
                let v = self.set_value(&val, tag)?;
                let l = self.auto(latest);
                self.set_version(v, l);
            }
            TagType::Edge => {
                let Some(b) = r.strip_prefix("refs/heads/") else {
                    return Ok(());
                };
                let want = if tag.attr("branch").is_empty() {
                    self.ctx.api_default_branch.as_str()
                } else {
                    tag.attr("branch")
                };
                if want != b {
                    return Ok(());
                }
                let v = self.set_value("edge", tag)?;
                let l = self.auto(false);
                self.set_version(v, l);
            }
            TagType::Raw => {
                let out = global_exp(self.ctx, "tags", tag.attr("value"))?;
                let v = self.set_value(&out, tag)?;
                let l = self.auto(false);
                self.set_version(v, l);
            }
            TagType::Sha => {
                if self.ctx.sha.is_empty() {
                    return Ok(());
                }
                let val = if tag.attr("format") == "short" {
                    self.ctx.short_sha()?
                } else {
                    self.ctx.sha.clone()
                };
                let v = self.set_value(&val, tag)?;
                let l = self.auto(false);
                self.set_version(v, l);
            }
        }
        Ok(())
    }
}

/// Whether the repository's tags make `candidate` the highest release (for `latest=highest-semver`).
pub fn is_highest_semver(candidate: &SemverSource, repo_tags: &[String]) -> bool {
    let Some(cur) = SemVer::parse(&candidate.value) else {
        return false;
    };
    if cur.is_prerelease() {
        return false;
    }
    let matcher = candidate
        .matcher
        .as_deref()
        .and_then(|m| regex::Regex::new(m).ok());
    repo_tags.iter().all(|t| {
        let text = match &matcher {
            Some(re) => match re.captures(t).and_then(|c| c.get(1)) {
                Some(g) => g.as_str().to_string(),
                None => return true,
            },
            None => t.clone(),
        };
        match SemVer::parse(&text.replace('/', "-")) {
            Some(v) if !v.is_prerelease() => cur.cmp_precedence(&v).is_ge(),
            _ => true,
        }
    })
}

/// Runs the computation.
pub fn compute(
    ctx: &MetaContext,
    images: &[Image],
    tag_entries: &[TagEntry],
    flavor: &Flavor,
    repo_tags: Option<&[String]>,
) -> Result<Computed, MetaError> {
    let mut c = Computation {
        ctx,
        flavor,
        version: Version::default(),
        latest_set: false,
        warnings: Vec::new(),
        semver_source: None,
    };
    for tag in tag_entries {
        let enabled = global_exp(ctx, "tags", tag.attr("enable"))?;
        match enabled.as_str() {
            "true" => c.proc(tag)?,
            "false" => {}
            _ => {
                return Err(MetaError::Enable {
                    entry: tag.source.clone(),
                    value: enabled,
                });
            }
        }
    }
    let mut version = c.version;
    let mut warnings = c.warnings;
    let mut seen = std::collections::HashSet::new();
    version.partial.retain(|p| seen.insert(p.clone()));
    if flavor.latest == Latest::HighestSemver && version.latest {
        let highest = match (&c.semver_source, repo_tags) {
            (Some(src), Some(tags)) => is_highest_semver(src, tags),
            _ => false,
        };
        if !highest {
            warnings.push(match &c.semver_source {
                Some(src) => format!(
                    "latest=highest-semver: {} is not the highest release among the repository's tags; not tagging latest",
                    src.value
                ),
                None => "latest=highest-semver: no semver tag was produced; not tagging latest".to_string(),
            });
            version.latest = false;
        }
    }
    let image_names: Vec<String> = images
        .iter()
        .filter(|i| i.enable)
        .map(|i| i.name.to_lowercase())
        .collect();
    let latest_tag = if version.latest {
        Some(sanitize_tag(&format!(
            "{}latest{}",
            if flavor.prefix_latest {
                flavor.prefix.as_str()
            } else {
                ""
            },
            if flavor.suffix_latest {
                flavor.suffix.as_str()
            } else {
                ""
            }
        )))
    } else {
        None
    };
    let generate = |prefix: &str| -> Vec<String> {
        let Some(main) = &version.main else {
            return Vec::new();
        };
        let mut out = vec![format!("{prefix}{main}")];
        out.extend(version.partial.iter().map(|p| format!("{prefix}{p}")));
        if let Some(l) = &latest_tag {
            out.push(format!("{prefix}{l}"));
        }
        out
    };
    let tag_names = generate("");
    let tags = if image_names.is_empty() {
        tag_names.clone()
    } else {
        image_names
            .iter()
            .flat_map(|i| generate(&format!("{i}:")))
            .collect()
    };
    if ctx.strict {
        if let Some(l) = &latest_tag
            && (version.main.as_deref() == Some(l) || version.partial.contains(l))
        {
            return Err(MetaError::Strict {
                input: "tags",
                reason: format!(
                    "`{l}` is produced by an entry and again by flavor latest; use flavor latest=false or drop the entry"
                ),
            });
        }
        for t in &tag_names {
            if !is_valid_docker_tag(t) {
                return Err(MetaError::Strict {
                    input: "tags",
                    reason: format!(
                        "`{t}` is not a valid Docker tag (at most 128 of [A-Za-z0-9_.-], not starting with . or -)"
                    ),
                });
            }
        }
        for i in &image_names {
            if !is_valid_image_name(i) {
                return Err(MetaError::Strict {
                    input: "images",
                    reason: format!("`{i}` is not a valid image name"),
                });
            }
        }
    }
    Ok(Computed {
        version,
        images: image_names,
        tags,
        tag_names,
        warnings,
        semver_source: c.semver_source,
    })
}
