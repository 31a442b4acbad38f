//! The `tags`, `flavor` and `images` entry grammars: parsing one entry into typed data with
//! upstream's defaults (priorities, `pr-`/`sha-` prefixes, `nightly`), its quirks (the tag parser
//! splits at the first `=`, the flavor and image parsers at every `=`), and, with `strict`, errors
//! for what upstream silently accepts.
//!
//! It must not evaluate expressions or look at the git context: that is `meta.rs`.

use crate::csv::{self, CsvError};

/// A bad entry in `tags`, `flavor` or `images`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// CSV syntax.
    #[error("{input} entry `{entry}`: {source}")]
    Csv {
        /// Input name.
        input: &'static str,
        /// The entry.
        entry: String,
        /// The CSV error.
        source: CsvError,
    },
    /// Anything else, worded like upstream where upstream has a message.
    #[error("{input} entry `{entry}`: {reason}")]
    Invalid {
        /// Input name.
        input: &'static str,
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
}

impl EntryError {
    /// The input this error is about.
    pub fn input(&self) -> &'static str {
        match self {
            Self::Csv { input, .. } | Self::Invalid { input, .. } => input,
        }
    }
    /// The offending entry.
    pub fn entry(&self) -> &str {
        match self {
            Self::Csv { entry, .. } | Self::Invalid { entry, .. } => entry,
        }
    }
}

fn invalid(input: &'static str, entry: &str, reason: impl Into<String>) -> EntryError {
    EntryError::Invalid {
        input,
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// Tag types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagType {
    /// `type=schedule`.
    Schedule,
    /// `type=semver`.
    Semver,
    /// `type=pep440`.
    Pep440,
    /// `type=match`.
    Match,
    /// `type=edge`.
    Edge,
    /// `type=ref`.
    Ref,
    /// `type=raw`.
    Raw,
    /// `type=sha`.
    Sha,
}

impl TagType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "schedule" => Self::Schedule,
            "semver" => Self::Semver,
            "pep440" => Self::Pep440,
            "match" => Self::Match,
            "edge" => Self::Edge,
            "ref" => Self::Ref,
            "raw" => Self::Raw,
            "sha" => Self::Sha,
            _ => return None,
        })
    }

    /// The name as written in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Semver => "semver",
            Self::Pep440 => "pep440",
            Self::Match => "match",
            Self::Edge => "edge",
            Self::Ref => "ref",
            Self::Raw => "raw",
            Self::Sha => "sha",
        }
    }

    fn default_priority(self) -> &'static str {
        match self {
            Self::Schedule => "1000",
            Self::Semver | Self::Pep440 => "900",
            Self::Match => "800",
            Self::Edge => "700",
            Self::Ref => "600",
            Self::Raw => "200",
            Self::Sha => "100",
        }
    }

    fn known_attrs(self) -> &'static [&'static str] {
        match self {
            Self::Schedule => &["pattern"],
            Self::Semver | Self::Pep440 => &["pattern", "value", "match"],
            Self::Match => &["pattern", "group", "value"],
            Self::Edge => &["branch"],
            Self::Ref => &["event"],
            Self::Raw => &["value"],
            Self::Sha => &["format"],
        }
    }
}

/// One `tags` entry after defaults.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TagEntry {
    /// Type.
    #[serde(rename = "type")]
    pub kind: TagType,
    /// Attributes in the order they were set (keys lowercased), defaults appended.
    pub attrs: Vec<(String, String)>,
    /// The entry as written.
    #[serde(skip)]
    pub source: String,
}

impl TagEntry {
    /// An attribute.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An attribute or `""`.
    pub fn attr(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Whether an attribute is present (even empty).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn set(&mut self, key: &str, value: &str) {
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.attrs.push((key.to_string(), value.to_string())),
        }
    }

    fn set_default(&mut self, key: &str, value: &str) {
        if !self.has(key) {
            self.attrs.push((key.to_string(), value.to_string()));
        }
    }

    /// `Number(priority)` (NaN when not a number, as JavaScript).
    pub fn priority(&self) -> f64 {
        js_number(self.attr("priority")).unwrap_or(f64::NAN)
    }

    /// The canonical text (`type=…,key=value…`) as upstream logs it.
    pub fn canonical(&self) -> String {
        let mut out = vec![format!("type={}", self.kind.as_str())];
        out.extend(self.attrs.iter().map(|(k, v)| format!("{k}={v}")));
        out.join(",")
    }
}

/// JavaScript `Number(text)`: trimmed; empty is 0; hex/octal/binary prefixes; decimal with
/// exponent; `Infinity`. `None` for NaN.
pub fn js_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return Some(0.0);
    }
    for (p, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(rest) = t.strip_prefix(p) {
            return u64::from_str_radix(rest, radix).ok().map(|v| v as f64);
        }
    }
    match t {
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let valid = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && t.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Splits a field at the first `=` that has at least one character before it (upstream's
/// `/(?<=^[^=]+?)=/`), trimming both sides.
fn split_first_eq(field: &str) -> (String, Option<String>) {
    match field.find('=') {
        Some(i) if i > 0 => (
            field[..i].trim().to_string(),
            Some(field[i + 1..].trim().to_string()),
        ),
        _ => (field.trim().to_string(), None),
    }
}

/// Splits at every `=` and keeps the first two parts (upstream's flavor/image parsers).
/// Returns `(key, value, truncated)`.
fn split_every_eq(field: &str) -> (String, Option<String>, bool) {
    let parts: Vec<&str> = field.split('=').collect();
    if parts.len() == 1 {
        return (parts[0].trim().to_string(), None, false);
    }
    (
        parts[0].trim().to_string(),
        Some(parts[1].trim().to_string()),
        parts.len() > 2,
    )
}

/// The default `tags` when the input is empty.
pub const DEFAULT_TAGS: &[&str] = &[
    "type=schedule",
    "type=ref,event=branch",
    "type=ref,event=tag",
    "type=ref,event=pr",
];

/// Parses one `tags` entry.
pub fn parse_tag(entry: &str, strict: bool) -> Result<TagEntry, EntryError> {
    const INPUT: &str = "tags";
    let fields = csv::entry_fields(entry).map_err(|source| EntryError::Csv {
        input: INPUT,
        entry: entry.to_string(),
        source,
    })?;
    let mut kind = None;
    let mut t = TagEntry {
        kind: TagType::Raw,
        attrs: Vec::new(),
        source: entry.to_string(),
    };
    for field in &fields {
        let (key, value) = split_first_eq(field);
        match value {
            None => t.set("value", &key),
            Some(v) => {
                let key = key.to_lowercase();
                if key == "type" {
                    kind = Some(TagType::parse(&v).ok_or_else(|| {
                        invalid(INPUT, entry, format!("Unknown tag type attribute: {v}"))
                    })?);
                } else {
                    t.set(&key, &v);
                }
            }
        }
    }
    t.kind = kind.unwrap_or(TagType::Raw);
    let missing = |a: &str| invalid(INPUT, entry, format!("Missing {a} attribute for {entry}"));
    match t.kind {
        TagType::Schedule => t.set_default("pattern", "nightly"),
        TagType::Semver | TagType::Pep440 => {
            if !t.has("pattern") {
                return Err(missing("pattern"));
            }
            t.set_default("value", "");
            t.set_default("match", "");
        }
        TagType::Match => {
            if !t.has("pattern") {
                return Err(missing("pattern"));
            }
            t.set_default("group", "0");
            if js_number(t.attr("group")).is_none() {
                return Err(invalid(
                    INPUT,
                    entry,
                    format!("Invalid match group for {entry}"),
                ));
            }
            t.set_default("value", "");
        }
        TagType::Edge => t.set_default("branch", ""),
        TagType::Ref => {
            if !t.has("event") {
                return Err(missing("event"));
            }
            if !matches!(t.attr("event"), "branch" | "tag" | "pr") {
                return Err(invalid(
                    INPUT,
                    entry,
                    format!("Invalid event for {entry} (expected branch, tag or pr)"),
                ));
            }
            if t.attr("event") == "pr" {
                t.set_default("prefix", "pr-");
            }
        }
        TagType::Raw => {
            if !t.has("value") {
                return Err(missing("value"));
            }
        }
        TagType::Sha => {
            t.set_default("prefix", "sha-");
            t.set_default("format", "short");
            if !matches!(t.attr("format"), "short" | "long") {
                return Err(invalid(
                    INPUT,
                    entry,
                    format!("Invalid format for {entry} (expected short or long)"),
                ));
            }
        }
    }
    t.set_default("enable", "true");
    t.set_default("priority", t.kind.default_priority());
    if strict {
        for (k, _) in &t.attrs {
            if !matches!(k.as_str(), "enable" | "priority" | "prefix" | "suffix")
                && !t.kind.known_attrs().contains(&k.as_str())
            {
                return Err(invalid(
                    INPUT,
                    entry,
                    format!(
                        "unknown attribute `{k}` for type={} (strict); known: enable, priority, prefix, suffix, {}",
                        t.kind.as_str(),
                        t.kind.known_attrs().join(", ")
                    ),
                ));
            }
        }
        if !t.priority().is_finite() {
            return Err(invalid(
                INPUT,
                entry,
                format!("priority `{}` is not a number (strict)", t.attr("priority")),
            ));
        }
    }
    Ok(t)
}

/// Parses `tags` entries (defaults when empty) and sorts them by priority, highest first,
/// stable for ties and NaN (as upstream's comparator).
pub fn parse_tags(entries: &[String], strict: bool) -> Result<Vec<TagEntry>, EntryError> {
    let mut tags = if entries.is_empty() {
        DEFAULT_TAGS
            .iter()
            .map(|e| parse_tag(e, strict))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        entries
            .iter()
            .map(|e| parse_tag(e, strict))
            .collect::<Result<Vec<_>, _>>()?
    };
    v8_sort(&mut tags, |a, b| {
        let (x, y) = (a.priority(), b.priority());
        if x < y {
            1
        } else if x > y {
            -1
        } else {
            0
        }
    });
    Ok(tags)
}

/// V8's `Array.prototype.sort` for short arrays (TimSort with one run: the natural run at the
/// start, then binary insertion), so that an inconsistent comparator (a NaN priority) gives the
/// same order as upstream.
fn v8_sort<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> i8) {
    let n = v.len();
    if n < 2 {
        return;
    }
    // Count the natural run.
    let mut run = 2;
    let descending = cmp(&v[1], &v[0]) < 0;
    while run < n {
        let o = cmp(&v[run], &v[run - 1]);
        if (descending && o >= 0) || (!descending && o < 0) {
            break;
        }
        run += 1;
    }
    if descending {
        v[..run].reverse();
    }
    for i in run..n {
        let (mut left, mut right) = (0, i);
        while left < right {
            let mid = left + ((right - left) >> 1);
            if cmp(&v[i], &v[mid]) < 0 {
                right = mid;
            } else {
                left = mid + 1;
            }
        }
        v[left..=i].rotate_right(1);
    }
}

/// `latest` policy from `flavor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Latest {
    /// Decided by the first produced value.
    Auto,
    /// Always (when any tag is produced).
    True,
    /// Never.
    False,
    /// Like auto, and only when the version is the highest semver among the repository's tags.
    HighestSemver,
}

/// The parsed `flavor`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Flavor {
    /// `latest=`.
    pub latest: Latest,
    /// `prefix=`.
    pub prefix: String,
    /// `onlatest=` for the prefix.
    pub prefix_latest: bool,
    /// `suffix=`.
    pub suffix: String,
    /// `onlatest=` for the suffix.
    pub suffix_latest: bool,
}

impl Default for Flavor {
    fn default() -> Self {
        Self {
            latest: Latest::Auto,
            prefix: String::new(),
            prefix_latest: false,
            suffix: String::new(),
            suffix_latest: false,
        }
    }
}

/// Parses `flavor` entries.
pub fn parse_flavor(entries: &[String], strict: bool) -> Result<Flavor, EntryError> {
    const INPUT: &str = "flavor";
    let mut f = Flavor::default();
    for entry in entries {
        let fields = csv::entry_fields(entry).map_err(|source| EntryError::Csv {
            input: INPUT,
            entry: entry.clone(),
            source,
        })?;
        let mut onlatest_for = "";
        for field in &fields {
            let (key, value, truncated) = if strict {
                let (k, v) = split_first_eq(field);
                (k, v, false)
            } else {
                split_every_eq(field)
            };
            let _ = truncated;
            let Some(value) = value else {
                return Err(invalid(
                    INPUT,
                    entry,
                    format!("Invalid flavor entry: {entry}"),
                ));
            };
            match key.to_lowercase().as_str() {
                "latest" => {
                    f.latest = match value.as_str() {
                        "auto" => Latest::Auto,
                        "true" => Latest::True,
                        "false" => Latest::False,
                        "highest-semver" => Latest::HighestSemver,
                        _ => {
                            return Err(invalid(
                                INPUT,
                                entry,
                                format!(
                                    "Invalid latest flavor entry: {entry} (expected auto, true, false or highest-semver)"
                                ),
                            ));
                        }
                    }
                }
                "prefix" => {
                    f.prefix = value;
                    onlatest_for = "prefix";
                }
                "suffix" => {
                    f.suffix = value;
                    onlatest_for = "suffix";
                }
                "onlatest" => {
                    if !matches!(value.as_str(), "true" | "false") {
                        return Err(invalid(
                            INPUT,
                            entry,
                            format!("Invalid value for onlatest attribute: {value}"),
                        ));
                    }
                    match onlatest_for {
                        "prefix" => f.prefix_latest = value == "true",
                        "suffix" => f.suffix_latest = value == "true",
                        _ if strict => {
                            return Err(invalid(
                                INPUT,
                                entry,
                                "onlatest must follow prefix= or suffix= on the same line (strict)",
                            ));
                        }
                        _ => {}
                    }
                }
                _ => {
                    return Err(invalid(
                        INPUT,
                        entry,
                        format!("Unknown flavor entry: {entry}"),
                    ));
                }
            }
        }
    }
    Ok(f)
}

/// Whether a flavor field would be cut by upstream's every-`=` split (strict reports it).
pub fn flavor_truncations(entries: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries {
        if let Ok(fields) = csv::entry_fields(e) {
            for f in fields {
                if split_every_eq(&f).2 {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// One `images` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    /// The name (lowercased when used).
    pub name: String,
    /// `enable=`.
    pub enable: bool,
}

/// Parses `images` (legacy single-line comma form, or one image per line with attributes).
pub fn parse_images(entries: &[String]) -> Result<Vec<Image>, EntryError> {
    const INPUT: &str = "images";
    let fields_of = |e: &String| {
        csv::entry_fields(e).map_err(|source| EntryError::Csv {
            input: INPUT,
            entry: e.clone(),
            source,
        })
    };
    if entries.len() == 1 {
        let fields = fields_of(&entries[0])?;
        if fields.iter().all(|f| !f.contains('=')) {
            return Ok(fields
                .iter()
                .map(|f| Image {
                    name: f.trim().to_string(),
                    enable: true,
                })
                .collect());
        }
    }
    let mut images = Vec::new();
    for entry in entries {
        let mut img = Image {
            name: String::new(),
            enable: true,
        };
        for field in fields_of(entry)? {
            let (key, value, _) = split_every_eq(&field);
            match value {
                None => img.name = key,
                Some(v) => match key.to_lowercase().as_str() {
                    "name" => img.name = v,
                    "enable" => {
                        img.enable = match v.as_str() {
                            "true" => true,
                            "false" => false,
                            _ => {
                                return Err(invalid(
                                    INPUT,
                                    entry,
                                    format!("Invalid enable attribute value: {entry}"),
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(invalid(
                            INPUT,
                            entry,
                            format!("Unknown image attribute: {entry}"),
                        ));
                    }
                },
            }
        }
        if img.name.is_empty() {
            return Err(invalid(
                INPUT,
                entry,
                format!("Image name attribute empty: {entry}"),
            ));
        }
        images.push(img);
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tag_defaults() {
        let t = parse_tag("type=sha", false).unwrap();
        assert_eq!(
            t.canonical(),
            "type=sha,prefix=sha-,format=short,enable=true,priority=100"
        );
        let t = parse_tag("type=ref,event=pr", false).unwrap();
        assert_eq!(t.attr("prefix"), "pr-");
        let t = parse_tag("foo", false).unwrap();
        assert_eq!((t.kind, t.attr("value")), (TagType::Raw, "foo"));
        let t = parse_tag("type=raw,value=a=b", false).unwrap();
        assert_eq!(t.attr("value"), "a=b");
        assert!(parse_tag("type=foo", false).is_err());
        assert!(parse_tag("type=semver", false).is_err());
        assert!(parse_tag("type=ref,event=push", false).is_err());
        assert!(parse_tag("type=match,pattern=x,group=a", false).is_err());
        assert!(parse_tag("type=sha,format=medium", false).is_err());
    }

    #[test]
    fn strict_refuses_unknown_attributes_and_bad_priority() {
        assert!(parse_tag("type=raw,value=x,evnt=tag", false).is_ok());
        assert!(parse_tag("type=raw,value=x,evnt=tag", true).is_err());
        assert!(parse_tag("type=raw,value=x,priority=high", false).is_ok());
        assert!(parse_tag("type=raw,value=x,priority=high", true).is_err());
    }

    #[test]
    fn priority_sort_is_stable_and_nan_equal() {
        let t = parse_tags(
            &s(&[
                "type=raw,value=a",
                "type=sha",
                "type=raw,value=b,priority=x",
                "type=schedule",
            ]),
            false,
        )
        .unwrap();
        let order: Vec<&str> = t.iter().map(|t| t.attr("priority")).collect();
        // A NaN priority compares equal to everything, so V8 sees one ascending run and
        // leaves the list as written (behaviour: a bad priority breaks the sort).
        assert_eq!(order, vec!["200", "100", "x", "1000"]);
        let t = parse_tags(
            &s(&[
                "type=sha",
                "type=raw,value=a",
                "type=semver,pattern={{version}}",
                "type=raw,value=b,priority=200",
            ]),
            false,
        )
        .unwrap();
        let order: Vec<String> = t
            .iter()
            .map(|t| format!("{}:{}", t.kind.as_str(), t.attr("value")))
            .collect();
        assert_eq!(order, vec!["semver:", "raw:a", "raw:b", "sha:"]);
    }

    #[test]
    fn flavor_splits_on_every_equal() {
        let f = parse_flavor(&s(&["suffix=-{{date 'YYYY' tz='UTC'}}"]), false).unwrap();
        assert_eq!(f.suffix, "-{{date 'YYYY' tz");
        let f = parse_flavor(&s(&["suffix=-{{date 'YYYY' tz='UTC'}}"]), true).unwrap();
        assert_eq!(f.suffix, "-{{date 'YYYY' tz='UTC'}}");
        assert!(parse_flavor(&s(&["latest=maybe"]), false).is_err());
        assert!(parse_flavor(&s(&["foo=bar"]), false).is_err());
        assert!(parse_flavor(&s(&["prefix"]), false).is_err());
        let f = parse_flavor(&s(&["prefix=a-,onlatest=true,suffix=-b"]), false).unwrap();
        assert!(f.prefix_latest && !f.suffix_latest);
    }

    #[test]
    fn images_forms() {
        let i = parse_images(&s(&["name/foo,name/bar"])).unwrap();
        assert_eq!(i.len(), 2);
        let i = parse_images(&s(&["name=a/b,enable=false", "c/d"])).unwrap();
        assert_eq!(
            (i[0].name.as_str(), i[0].enable, i[1].name.as_str()),
            ("a/b", false, "c/d")
        );
        assert_eq!(parse_images(&s(&["name=a=b"])).unwrap()[0].name, "a");
        assert!(parse_images(&s(&["name=x,enable=yes"])).is_err());
        assert!(parse_images(&s(&["name=x,foo=bar"])).is_err());
        assert!(parse_images(&s(&["enable=true"])).is_err());
    }
}
