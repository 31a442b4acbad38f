//! Repository calls: `GET /repos/{owner}/{repo}`, `GET /repos/{owner}/{repo}/commits/{sha}` and
//! the paginated `GET /repos/{owner}/{repo}/tags`.
//!
//! Only the fields gantry uses are typed; all are optional because GitHub Enterprise versions and
//! fakes differ. Callers decide what a failure means (fail, or fall back).
//!
//! See: <https://docs.github.com/en/rest/repos/repos#get-a-repository>

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::client::{ApiError, GitHub, next_link};

/// A repository's licence.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct RepoLicense {
    /// SPDX identifier (`MIT`, `NOASSERTION`).
    pub spdx_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

/// What `GET /repos/{owner}/{repo}` returns, in the fields gantry uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct RepoInfo {
    /// Short name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// Description.
    pub description: Option<String>,
    /// Web URL.
    pub html_url: String,
    /// Default branch.
    pub default_branch: Option<String>,
    /// Licence.
    pub license: Option<RepoLicense>,
}

/// The commit fields gantry uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full SHA.
    pub sha: String,
    /// `commit.committer.date`, when present.
    pub committer_date: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CommitResponse {
    sha: String,
    commit: CommitBody,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct CommitBody {
    committer: Option<GitPerson>,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct GitPerson {
    date: Option<String>,
}
#[derive(Deserialize)]
struct TagEntry {
    name: String,
}

/// The most pages of tags read (100 per page): 100 000 tags.
pub const MAX_TAG_PAGES: usize = 1000;

fn seg(s: &str) -> String {
    // Owner and repository names are [A-Za-z0-9._-]; escape anything else so a bad value cannot
    // change the path.
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl GitHub {
    /// `GET /repos/{owner}/{repo}`.
    pub async fn repository(&self, owner: &str, repo: &str) -> Result<RepoInfo, ApiError> {
        let url = self.url(&format!("/repos/{}/{}", seg(owner), seg(repo)));
        Ok(self.get_json(&url).await?.0)
    }

    /// `GET /repos/{owner}/{repo}/commits/{sha}`.
    pub async fn commit(&self, owner: &str, repo: &str, sha: &str) -> Result<CommitInfo, ApiError> {
        let url = self.url(&format!(
            "/repos/{}/{}/commits/{}",
            seg(owner),
            seg(repo),
            seg(sha)
        ));
        let (c, _): (CommitResponse, _) = self.get_json(&url).await?;
        let committer_date = c
            .commit
            .committer
            .and_then(|p| p.date)
            .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
            .map(|d| d.with_timezone(&Utc));
        Ok(CommitInfo {
            sha: c.sha,
            committer_date,
        })
    }

    /// Every tag name of the repository (`GET /repos/{owner}/{repo}/tags?per_page=100`, following
    /// `Link: rel="next"`), in the API's order.
    pub async fn tag_names(&self, owner: &str, repo: &str) -> Result<Vec<String>, ApiError> {
        let mut url = self.url(&format!(
            "/repos/{}/{}/tags?per_page=100",
            seg(owner),
            seg(repo)
        ));
        let mut names = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let (page, headers): (Vec<TagEntry>, _) = self.get_json(&url).await?;
            names.extend(page.into_iter().map(|t| t.name));
            match next_link(&headers) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("acme"), "acme");
        assert_eq!(seg("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn repo_info_tolerates_missing_fields() {
        let r: RepoInfo = serde_json::from_str(r#"{"name":"x","license":null}"#).unwrap();
        assert_eq!(r.name, "x");
        assert!(r.license.is_none());
    }
}
