//! Version parsing as upstream's libraries do it: npm `semver.valid` (strict: an optional leading
//! `v`, surrounding whitespace allowed, at most 256 characters) and `@renovate/pep440` (`valid`,
//! `explain`, `clean`, `major`/`minor`/`patch`).
//!
//! It owns only parsing and normalisation; deciding tags from versions is `meta.rs`.
//!
//! See: <https://semver.org/> and <https://peps.python.org/pep-0440/>

use std::sync::OnceLock;

use regex::Regex;

/// A parsed semantic version (the fields upstream's templates can see).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemVer {
    /// The input as given (trimmed).
    pub raw: String,
    /// `major.minor.patch[-prerelease]` (no `v`, no build).
    pub version: String,
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// Pre-release identifiers.
    pub prerelease: Vec<String>,
    /// Build identifiers.
    pub build: Vec<String>,
}

fn semver_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    #[allow(clippy::expect_used)]
    RE.get_or_init(|| {
        let num = r"(?:0|[1-9][0-9]*)";
        let pre_id = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][a-zA-Z0-9-]*)";
        let build_id = r"[0-9A-Za-z-]+";
        Regex::new(&format!(
            r"^v?({num})\.({num})\.({num})(?:-({pre_id}(?:\.{pre_id})*))?(?:\+({build_id}(?:\.{build_id})*))?$"
        ))
        .expect("static regex")
    })
}

/// Max length npm semver accepts.
const SEMVER_MAX: usize = 256;
/// `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE: u64 = 9_007_199_254_740_991;

impl SemVer {
    /// `semver.valid(text)` then `semver.parse`: `None` when invalid.
    pub fn parse(text: &str) -> Option<SemVer> {
        if text.len() > SEMVER_MAX {
            return None;
        }
        let t = text.trim();
        let c = semver_re().captures(t)?;
        let n = |i: usize| -> Option<u64> {
            let v: u64 = c.get(i)?.as_str().parse().ok()?;
            (v <= MAX_SAFE).then_some(v)
        };
        let (major, minor, patch) = (n(1)?, n(2)?, n(3)?);
        let split = |i: usize| -> Vec<String> {
            c.get(i)
                .map(|m| m.as_str().split('.').map(str::to_string).collect())
                .unwrap_or_default()
        };
        let prerelease = split(4);
        let build = split(5);
        let mut version = format!("{major}.{minor}.{patch}");
        if !prerelease.is_empty() {
            version.push('-');
            version.push_str(&prerelease.join("."));
        }
        Some(SemVer {
            raw: t.to_string(),
            version,
            major,
            minor,
            patch,
            prerelease,
            build,
        })
    }

    /// Whether this is a pre-release.
    pub fn is_prerelease(&self) -> bool {
        !self.prerelease.is_empty()
    }

    /// Semver precedence (build ignored).
    pub fn cmp_precedence(&self, other: &SemVer) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let base =
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if base != Ordering::Equal {
            return base;
        }
        match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        for (a, b) in self.prerelease.iter().zip(&other.prerelease) {
            let o = match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                _ => a.cmp(b),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        self.prerelease.len().cmp(&other.prerelease.len())
    }
}

/// A parsed PEP 440 version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pep440 {
    /// Epoch.
    pub epoch: u64,
    /// Release numbers.
    pub release: Vec<u64>,
    /// Pre-release (`a`/`b`/`rc`, number).
    pub pre: Option<(String, u64)>,
    /// Post-release number.
    pub post: Option<u64>,
    /// Dev-release number.
    pub dev: Option<u64>,
    /// Local label, normalised.
    pub local: Option<String>,
}

fn pep_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    #[allow(clippy::expect_used)]
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?i)^v?(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)",
            r"(?P<pre>[-_\.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_\.]?(?P<pre_n>[0-9]+)?)?",
            r"(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?",
            r"(?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?",
            r"(?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?$"
        ))
        .expect("static regex")
    })
}

impl Pep440 {
    /// `pep440.valid(text)` then `parse`: no surrounding whitespace allowed.
    pub fn parse(text: &str) -> Option<Pep440> {
        let c = pep_re().captures(text)?;
        let num =
            |name: &str| -> Option<u64> { c.name(name).and_then(|m| m.as_str().parse().ok()) };
        let epoch = num("epoch").unwrap_or(0);
        let release = c
            .name("release")?
            .as_str()
            .split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()?;
        let pre = c.name("pre_l").map(|l| {
            let l = match l.as_str().to_ascii_lowercase().as_str() {
                "alpha" | "a" => "a",
                "beta" | "b" => "b",
                _ => "rc",
            }
            .to_string();
            (l, num("pre_n").unwrap_or(0))
        });
        let post = if c.name("post").is_some() {
            Some(num("post_n1").or_else(|| num("post_n2")).unwrap_or(0))
        } else {
            None
        };
        let dev = c.name("dev_l").map(|_| num("dev_n").unwrap_or(0));
        let local = c
            .name("local")
            .map(|l| l.as_str().to_ascii_lowercase().replace(['-', '_'], "."));
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// Pre-release or dev-release (`explain().is_prerelease`).
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// Post-release.
    pub fn is_postrelease(&self) -> bool {
        self.post.is_some()
    }

    /// Dev-release.
    pub fn is_devrelease(&self) -> bool {
        self.dev.is_some()
    }

    /// The normalised form (`pep440.clean`): `1.1beta2` → `1.1b2`, `v1.2post1` → `1.2.post1`.
    pub fn clean(&self) -> String {
        let mut s = String::new();
        if self.epoch != 0 {
            s.push_str(&format!("{}!", self.epoch));
        }
        s.push_str(
            &self
                .release
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("."),
        );
        if let Some((l, n)) = &self.pre {
            s.push_str(&format!("{l}{n}"));
        }
        if let Some(n) = self.post {
            s.push_str(&format!(".post{n}"));
        }
        if let Some(n) = self.dev {
            s.push_str(&format!(".dev{n}"));
        }
        if let Some(l) = &self.local {
            s.push_str(&format!("+{l}"));
        }
        s
    }

    /// `release[0]`.
    pub fn major(&self) -> u64 {
        self.release.first().copied().unwrap_or(0)
    }
    /// `release[1]` or 0.
    pub fn minor(&self) -> u64 {
        self.release.get(1).copied().unwrap_or(0)
    }
    /// `release[2]` or 0.
    pub fn patch(&self) -> u64 {
        self.release.get(2).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_like_npm() {
        let v = SemVer::parse("v1.2.3+build.5").unwrap();
        assert_eq!(
            (v.version.as_str(), v.raw.as_str()),
            ("1.2.3", "v1.2.3+build.5")
        );
        assert!(SemVer::parse(" 1.2.3 ").is_some());
        assert!(SemVer::parse("=1.2.3").is_none());
        assert!(SemVer::parse("v0.29").is_none());
        assert!(SemVer::parse("01.2.3").is_none());
        let p = SemVer::parse("5.1.0-rc.1").unwrap();
        assert!(p.is_prerelease());
        assert_eq!(p.prerelease, vec!["rc", "1"]);
        assert!(SemVer::parse(&format!("1.2.3-{}", "a".repeat(300))).is_none());
        assert!(SemVer::parse("1.2.3").unwrap().cmp_precedence(&p).is_lt());
        assert!(SemVer::parse("5.1.0").unwrap().cmp_precedence(&p).is_gt());
        assert!(
            SemVer::parse("1.0.0-alpha.1")
                .unwrap()
                .cmp_precedence(&SemVer::parse("1.0.0-alpha.beta").unwrap())
                .is_lt()
        );
    }

    #[test]
    fn pep440_like_renovate() {
        for (i, o) in [
            ("1.1beta2", "1.1b2"),
            ("1.2post1", "1.2.post1"),
            ("1.0dev4", "1.0.dev4"),
            ("v1.2.3rc2", "1.2.3rc2"),
            ("1.0-1", "1.0.post1"),
            ("1!2.0+Ubuntu-1", "1!2.0+ubuntu.1"),
        ] {
            assert_eq!(Pep440::parse(i).unwrap().clean(), o, "{i}");
        }
        let v = Pep440::parse("1.2").unwrap();
        assert_eq!((v.major(), v.minor(), v.patch()), (1, 2, 0));
        assert!(Pep440::parse("1.0dev4").unwrap().is_prerelease());
        assert!(Pep440::parse("1.2post1").unwrap().is_postrelease());
        assert!(Pep440::parse(" 1.2").is_none());
        assert!(Pep440::parse("1.2.x").is_none());
    }
}
