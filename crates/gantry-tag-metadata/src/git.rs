//! `context: git`: the ref, SHA and commit date of the repository checked out in the workspace,
//! read from `.git` directly (HEAD, loose and packed refs, loose commit objects) without running
//! git.
//!
//! It must not write anything and must not guess: a detached HEAD that no tag or pull ref points
//! at is an error, as upstream's "Cannot find detached HEAD ref".

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};

/// What the checkout says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitContext {
    /// Full ref.
    pub git_ref: String,
    /// Commit SHA.
    pub sha: String,
    /// Committer date, when the commit object is loose (packed objects fall back to the API).
    pub commit_date: Option<DateTime<Utc>>,
}

/// A checkout that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// No `.git`.
    #[error("no git repository at {0} (context: git needs a checkout, e.g. actions/checkout)")]
    NotARepo(String),
    /// Unreadable.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Detached HEAD with nothing pointing at it.
    #[error("Cannot find detached HEAD ref for {0}: no tag or pull request ref points at it")]
    Detached(String),
}

fn git_dir(workspace: &Path) -> Result<PathBuf, GitError> {
    let dot = workspace.join(".git");
    if dot.is_dir() {
        return Ok(dot);
    }
    if dot.is_file() {
        let text = read(&dot)?;
        if let Some(p) = text.trim().strip_prefix("gitdir:") {
            let p = PathBuf::from(p.trim());
            return Ok(if p.is_absolute() {
                p
            } else {
                workspace.join(p)
            });
        }
    }
    Err(GitError::NotARepo(workspace.display().to_string()))
}

fn read(p: &Path) -> Result<String, GitError> {
    std::fs::read_to_string(p).map_err(|e| GitError::Read {
        path: p.display().to_string(),
        reason: e.to_string(),
    })
}

/// All refs: (name, sha), loose ones overriding packed ones; peeled tags map to the commit.
fn all_refs(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("packed-refs")) {
        let mut last: Option<usize> = None;
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            if let Some(peeled) = line.strip_prefix('^') {
                if let Some(i) = last {
                    let name = out[i].0.clone();
                    out.push((name, peeled.trim().to_string()));
                }
                continue;
            }
            if let Some((sha, name)) = line.split_once(' ') {
                out.push((name.trim().to_string(), sha.trim().to_string()));
                last = Some(out.len() - 1);
            }
        }
    }
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let (Ok(rel), Ok(text)) = (p.strip_prefix(base), std::fs::read_to_string(&p))
            {
                out.push((rel.display().to_string(), text.trim().to_string()));
            }
        }
    }
    walk(dir, &dir.join("refs"), &mut out);
    out
}

fn resolve(dir: &Path, name: &str) -> Option<String> {
    all_refs(dir)
        .into_iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
}

/// The committer date of a loose commit object.
fn loose_commit_date(dir: &Path, sha: &str) -> Option<DateTime<Utc>> {
    if sha.len() < 3 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let p = dir.join("objects").join(&sha[..2]).join(&sha[2..]);
    let bytes = std::fs::read(p).ok()?;
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(&bytes[..])
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    let line = text.lines().find(|l| l.contains("committer "))?;
    let mut parts = line.rsplitn(3, ' ');
    let _tz = parts.next()?;
    let ts: i64 = parts.next()?.parse().ok()?;
    Utc.timestamp_opt(ts, 0).single()
}

/// Reads the checkout at `workspace`.
pub fn context(workspace: &Path) -> Result<GitContext, GitError> {
    let dir = git_dir(workspace)?;
    let head = read(&dir.join("HEAD"))?;
    let head = head.trim();
    let (git_ref, sha) = if let Some(r) = head.strip_prefix("ref:") {
        let r = r.trim().to_string();
        let sha = resolve(&dir, &r).unwrap_or_default();
        (r, sha)
    } else {
        let sha = head.to_string();
        let refs = all_refs(&dir);
        let mut tags: Vec<&String> = refs
            .iter()
            .filter(|(n, s)| n.starts_with("refs/tags/") && *s == sha)
            .map(|(n, _)| n)
            .collect();
        tags.sort();
        let pull = refs.iter().find_map(|(n, s)| {
            (*s == sha)
                .then(|| n.strip_prefix("refs/remotes/pull/"))
                .flatten()
                .map(|rest| format!("refs/pull/{rest}"))
        });
        match (tags.first(), pull) {
            (Some(t), _) => ((*t).clone(), sha),
            (None, Some(p)) => (p, sha),
            (None, None) => return Err(GitError::Detached(sha)),
        }
    };
    let commit_date = loose_commit_date(&dir, &sha);
    Ok(GitContext {
        git_ref,
        sha,
        commit_date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    #[test]
    fn branch_tag_and_detached() {
        let d = tempfile::tempdir().unwrap();
        let g = d.path().join(".git");
        let sha = "860c1904a1ce19322e91ac35af1ab07466440c37";
        write(&g.join("HEAD"), "ref: refs/heads/main\n");
        write(&g.join("refs/heads/main"), &format!("{sha}\n"));
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"commit 100\0tree x\nauthor A <a@b> 1578616200 +0000\ncommitter C <c@d> 1578616200 +0100\n\nmsg\n").unwrap();
        write(&g.join("objects/86").join(&sha[2..]), "");
        std::fs::write(g.join("objects/86").join(&sha[2..]), enc.finish().unwrap()).unwrap();
        let c = context(d.path()).unwrap();
        assert_eq!(c.git_ref, "refs/heads/main");
        assert_eq!(c.sha, sha);
        assert_eq!(c.commit_date.unwrap().timestamp(), 1578616200);

        write(&g.join("HEAD"), &format!("{sha}\n"));
        assert!(matches!(context(d.path()), Err(GitError::Detached(_))));
        write(
            &g.join("packed-refs"),
            &format!("# pack-refs\n{sha} refs/tags/v1.2.3\n"),
        );
        assert_eq!(context(d.path()).unwrap().git_ref, "refs/tags/v1.2.3");
        let none = tempfile::tempdir().unwrap();
        assert!(matches!(context(none.path()), Err(GitError::NotARepo(_))));
    }
}
