//! Labels and annotations: the 8 OCI defaults (from the repository API and the run), the user's
//! lines after expressions (split at the first `=`, lines without `=` dropped, last key wins),
//! sorted by key the way JavaScript's `localeCompare` orders them, and annotation levels.
//!
//! It must not fetch anything: the repository data and dates come in as arguments.

use std::cmp::Ordering;

use gantry_github::RepoInfo;

use crate::meta::{MetaContext, MetaError, global_exp};

/// Inputs of the default labels.
#[derive(Clone, Debug)]
pub struct Defaults<'a> {
    /// Repository API data.
    pub repo: &'a RepoInfo,
    /// `version.main`.
    pub version: &'a str,
    /// `created` value (ISO string).
    pub created: &'a str,
    /// Revision (sha).
    pub revision: &'a str,
}

/// The ICU root-collation rank of an ASCII punctuation or symbol character (`localeCompare`
/// puts whitespace, then punctuation, then symbols, then digits, then letters).
fn punct_rank(c: char) -> Option<usize> {
    const ORDER: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
    ORDER.find(c)
}

fn primary(c: char) -> (u8, u32) {
    if c.is_whitespace() {
        (0, c as u32)
    } else if let Some(r) = punct_rank(c) {
        (1, r as u32)
    } else if c.is_ascii_digit() {
        (3, c as u32)
    } else if c.is_alphabetic() {
        let lower = c.to_lowercase().next().unwrap_or(c);
        (4, lower as u32)
    } else {
        (2, c as u32)
    }
}

/// An approximation of V8's `String.prototype.localeCompare` (ICU root collation) that is exact
/// for ASCII keys: primary by character class and letter ignoring case, then lowercase first.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    let pa: Vec<(u8, u32)> = a.chars().map(primary).collect();
    let pb: Vec<(u8, u32)> = b.chars().map(primary).collect();
    match pa.cmp(&pb) {
        Ordering::Equal => {}
        o => return o,
    }
    // Tertiary: lowercase before uppercase.
    let ta: Vec<bool> = a.chars().map(char::is_uppercase).collect();
    let tb: Vec<bool> = b.chars().map(char::is_uppercase).collect();
    ta.cmp(&tb).then_with(|| a.cmp(b))
}

/// Computes labels (or annotations) from defaults plus `extra` lines (`input` names the source
/// input for errors). Returns `key=value` strings sorted by key.
pub fn compute(
    ctx: &MetaContext,
    defaults: &Defaults<'_>,
    input: &'static str,
    extra: &[String],
) -> Result<Vec<(String, String)>, MetaError> {
    let repo = defaults.repo;
    let lic = repo
        .license
        .as_ref()
        .and_then(|l| l.spdx_id.clone())
        .unwrap_or_default();
    let mut lines: Vec<String> = vec![
        format!("org.opencontainers.image.title={}", repo.name),
        format!(
            "org.opencontainers.image.description={}",
            repo.description.clone().unwrap_or_default()
        ),
        format!("org.opencontainers.image.url={}", repo.html_url),
        format!("org.opencontainers.image.source={}", repo.html_url),
        format!("org.opencontainers.image.version={}", defaults.version),
        format!("org.opencontainers.image.created={}", defaults.created),
        format!("org.opencontainers.image.revision={}", defaults.revision),
        format!("org.opencontainers.image.licenses={lic}"),
    ];
    for l in extra {
        lines.push(global_exp(ctx, input, l)?);
    }
    let mut map: Vec<(String, String)> = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match map.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => map.push((k.to_string(), v.to_string())),
        }
    }
    map.sort_by(|a, b| locale_compare(&a.0, &b.0));
    Ok(map)
}

/// `level:key=value` for each level (level-major order).
pub fn with_levels(annotations: &[(String, String)], levels: &[String]) -> Vec<String> {
    levels
        .iter()
        .flat_map(|l| annotations.iter().map(move |(k, v)| format!("{l}:{k}={v}")))
        .collect()
}

/// The JSON object form of labels (`/([^=]*)=(.*)/`: a value stops at a line break).
pub fn json_map(labels: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .split(['\n', '\r', '\u{2028}', '\u{2029}'])
                .next()
                .unwrap_or_default();
            (k.clone(), serde_json::Value::String(v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_order() {
        let mut v = vec![
            "org.b",
            "Org.a",
            "maintainer",
            "org.a",
            "a_b",
            "a-b",
            "a.b",
            "a1",
            "ab",
        ];
        v.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(
            v,
            vec![
                "a_b",
                "a-b",
                "a.b",
                "a1",
                "ab",
                "maintainer",
                "org.a",
                "Org.a",
                "org.b"
            ]
        );
    }
}
