//! Image references (`registry/repo:tag@sha256:…`): parsing with Docker's normalisation rules,
//! validation, and display. Pure string handling; must not touch the network.
//!
//! See: <https://github.com/distribution/reference/blob/main/reference.go> (grammar) and
//! <https://github.com/distribution/distribution/blob/v2.8.2/reference/normalize.go> (docker.io).

use std::fmt;

use crate::Error;

/// The registry Docker assumes for a bare name (`alpine`, `acme/api`).
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API really lives.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference. `tag` and `digest` are both optional (a repository reference).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ImageRef {
    /// Registry host (and port) as written, `docker.io` for Hub.
    pub registry: String,
    /// Repository path (`library/alpine`, `acme/api`).
    pub repository: String,
    /// Tag, when given.
    pub tag: Option<String>,
    /// Digest (`sha256:<64 hex>`), when given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference. `alpine` → `docker.io/library/alpine`; the tag is left empty when absent.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        let bad = |reason: &str| Error::InvalidReference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        if s.len() > 4096 {
            return Err(bad("longer than 4096 characters"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|e| bad(&e))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t).map_err(|e| bad(&e))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        validate_registry(&registry).map_err(|e| bad(&e))?;
        validate_repository(&repository).map_err(|e| bad(&e))?;
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is reached on (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The reference to use in API paths: the digest when set, else the tag, else `latest`.
    pub fn api_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest` (no tag).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// Whether two references are on the same registry.
    pub fn same_registry(&self, other: &Self) -> bool {
        self.registry.eq_ignore_ascii_case(&other.registry)
    }

    /// Whether two references name the same repository.
    pub fn same_repository(&self, other: &Self) -> bool {
        self.same_registry(other) && self.repository == other.repository
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Checks `sha256:<64 lowercase hex>` (and `sha512:<128 hex>`).
pub fn validate_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!("digest `{d}` is not `<algorithm>:<hex>`"));
    };
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("digest algorithm `{alg}` is not sha256 or sha512")),
    };
    if hex.len() != want || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "digest `{d}` must have {want} lowercase hex characters after `{alg}:`"
        ));
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{t}` must be 1-128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ))
    }
}

fn validate_registry(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "registry `{r}` is not a host name with an optional port"
        ))
    }
}

fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("repository name is empty".into());
    }
    if repo.len() > 255 {
        return Err("repository name is longer than 255 characters".into());
    }
    for comp in repo.split('/') {
        let bytes = comp.as_bytes();
        let ok = !comp.is_empty()
            && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
            && bytes[bytes.len() - 1].is_ascii_lowercase()
                | bytes[bytes.len() - 1].is_ascii_digit()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !ok {
            return Err(format!(
                "repository component `{comp}` must be lowercase letters and digits separated by `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let r = ImageRef::parse("alpine").expect("ok");
        assert_eq!(r.to_string(), "docker.io/library/alpine");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("127.0.0.1:5000/acme/api:v1").expect("ok");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "acme/api", Some("v1"))
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/o/r:1@{d}")).expect("ok");
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.api_reference(), d);
        let r = ImageRef::parse("localhost/x").expect("ok");
        assert_eq!(r.registry, "localhost");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/case",
            "ghcr.io/o/r:",
            "ghcr.io/o/r:-x",
            "ghcr.io/o/r@sha256:abc",
            "ghcr.io/o//r",
            "ghcr.io/o/r@md5:00",
            "bad host!/x",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
