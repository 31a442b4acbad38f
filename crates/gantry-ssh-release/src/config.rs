//! `Config::resolve`: every input read once, validated, and turned into typed values. Every error
//! names the input and the value (never a secret's value). Nothing here touches the network or a
//! host; the artifact is only located (and checked) here, and prepared in `artifact.rs`.

use std::path::PathBuf;
use std::time::Duration;

use gantry_runtime::{InputError, Secret, Step};
use serde::Serialize;

use crate::scripts::Probe;

/// One target host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// SSH user.
    pub user: String,
    /// SSH port.
    pub port: u16,
    /// Deploy path on this host.
    pub deploy_path: String,
}

impl Host {
    /// `user@host:port` for messages (`[v6]` bracketed).
    pub fn label(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 22 {
            format!("{}@{h}", self.user)
        } else {
            format!("{}@{h}:{}", self.user, self.port)
        }
    }
}

/// A parsed `user@host:port` (parts optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `user@host:port`, `[v6]:port`, bare IPv6, with the reason on error.
pub(crate) fn parse_host(text: &str) -> Result<HostSpec, String> {
    let t = text.trim();
    let t = t.strip_prefix("ssh://").unwrap_or(t);
    if t.is_empty() {
        return Err("empty host".into());
    }
    let (user, rest) = match t.rsplit_once('@') {
        Some((u, r)) => {
            if u.is_empty()
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(format!("`{u}` is not a valid user name"));
            }
            (Some(u.to_string()), r)
        }
        None => (None, t),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or("an IPv6 address opened with `[` needs a closing `]`")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected `:port` after `]`")?),
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{h}` is not an IPv6 address"));
        }
        (h.to_string(), port)
    } else if rest.matches(':').count() > 1 {
        if rest.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "`{rest}` is not an IPv6 address (write `[addr]:port` for a port)"
            ));
        }
        (rest.to_string(), None)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    if !host.contains(':')
        && (host.is_empty()
            || host.starts_with('-')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)))
    {
        return Err(format!("`{host}` is not a valid host name or address"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{p}` is not a valid port (1-65535)"))?,
        ),
    };
    Ok(HostSpec { user, host, port })
}

/// Where the artifact comes from.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ArtifactSource {
    /// A local file or directory.
    Local {
        /// Path on this machine.
        path: PathBuf,
    },
    /// An HTTPS URL with a checksum.
    Url {
        /// The URL.
        url: String,
    },
    /// A GitHub Actions artifact by id or name.
    ActionsArtifact {
        /// Id or name.
        reference: String,
    },
}

/// What this run does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Release a new artifact.
    Deploy,
    /// Switch back.
    Rollback,
    /// Remove a stale lock.
    Unlock,
}

/// After-switch failure policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Roll back every switched host and stop.
    RollbackAll,
    /// Stop before the next batch; switched hosts stay.
    Stop,
    /// Keep going with the healthy hosts.
    Continue,
}

/// Resolved configuration.
#[derive(Debug)]
pub struct Config {
    /// Mode.
    pub mode: Mode,
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Jump hosts.
    pub jump_hosts: Vec<Host>,
    /// Private key.
    pub key: Secret,
    /// Passphrase.
    pub passphrase: Option<Secret>,
    /// known_hosts content.
    pub known_hosts: Option<String>,
    /// Fingerprints.
    pub fingerprints: Vec<String>,
    /// Extra ssh_config.
    pub ssh_config: Option<String>,
    /// Artifact (deploy mode).
    pub artifact: Option<ArtifactSource>,
    /// Expected sha256.
    pub artifact_sha256: Option<String>,
    /// GitHub token.
    pub github_token: Option<Secret>,
    /// Release id (deploy) or the target (rollback-to).
    pub release_id: String,
    /// Rollback target.
    pub rollback_to: Option<String>,
    /// Keep.
    pub keep_releases: u32,
    /// Shared entries.
    pub shared: Vec<String>,
    /// `.env`.
    pub dotenv: Option<Secret>,
    /// Where `.env` goes.
    pub dotenv_path: String,
    /// requirements.txt.
    pub requirements: Option<String>,
    /// Python.
    pub python: String,
    /// pip args.
    pub pip_args: String,
    /// Smoke test.
    pub smoke: Option<String>,
    /// Hook before switch.
    pub script: Option<String>,
    /// Hook after switch.
    pub post_script: Option<String>,
    /// Restart.
    pub restart: Option<String>,
    /// Health probe.
    pub health: Option<Probe>,
    /// Health deadline.
    pub health_timeout: Duration,
    /// Health interval.
    pub health_interval: Duration,
    /// Lock wait.
    pub lock_timeout: Duration,
    /// Minimum free bytes (None: 3 × artifact).
    pub min_free: Option<u64>,
    /// Parallelism.
    pub max_parallel: usize,
    /// Batch size (0: all).
    pub batch_size: usize,
    /// Policy.
    pub on_failure: OnFailure,
    /// Auto-rollback.
    pub rollback_on_failure: bool,
    /// Verify only.
    pub verify_only: bool,
    /// Per-stage timeout.
    pub command_timeout: Duration,
    /// Overall timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

fn validate_release_id(name: &str, id: &str) -> Result<(), InputError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(InputError::invalid(
            name,
            id,
            "a release id may contain letters, digits, `.`, `_`, `-`, `+` and must not start with `.` or `-`",
        ))
    }
}

/// Validates a deploy path: not `/`, not the home itself, no `..`, no control characters.
pub(crate) fn validate_deploy_path(name: &str, p: &str) -> Result<String, InputError> {
    let t = p.trim();
    let t = t.strip_prefix("~/").unwrap_or(t);
    let stripped = t.trim_end_matches('/');
    if stripped.is_empty() || matches!(stripped, "~" | "." | "$HOME" | "/root" | "/home") {
        let reason = if t.starts_with('/') {
            "the deploy path must not be `/`: releases, shared files and cleanup would act on the whole filesystem"
        } else {
            "the deploy path must not be the deploy user's home itself; use a subdirectory such as `apps/myapp`"
        };
        return Err(InputError::invalid(name, p, reason));
    }
    if stripped.split('/').any(|c| c == "..") || stripped.chars().any(char::is_control) {
        return Err(InputError::invalid(
            name,
            p,
            "the deploy path must not contain `..` or control characters",
        ));
    }
    if stripped.starts_with('~') || stripped.contains('$') {
        return Err(InputError::invalid(
            name,
            p,
            "use a path relative to the deploy user's home (e.g. `apps/myapp`) instead of `~user` or variables",
        ));
    }
    Ok(stripped.to_string())
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FileHost {
    Text(String),
    Map {
        host: String,
        user: Option<String>,
        port: Option<u16>,
        #[serde(rename = "deploy-path", alias = "deploy_path")]
        deploy_path: Option<String>,
    },
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum HostsFile {
    List(Vec<FileHost>),
    Wrapped { hosts: Vec<FileHost> },
}

/// Refuses keys a hosts-file entry does not know (a typo such as `deploy_paht` would otherwise
/// deploy to the default path without a word).
fn unknown_host_keys(text: &str) -> Result<(), String> {
    const KNOWN: &[&str] = &["host", "user", "port", "deploy-path", "deploy_path"];
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return Ok(()); // the typed parse reports the syntax error
    };
    let list = match &doc {
        serde_yaml::Value::Mapping(m) => match m.get("hosts") {
            Some(serde_yaml::Value::Sequence(l)) => l.clone(),
            _ => {
                let keys: Vec<String> = m
                    .keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .filter(|k| k != "hosts")
                    .collect();
                if !keys.is_empty() {
                    return Err(format!(
                        "unknown key(s) {} at the top level (expected a list of hosts or `hosts:`)",
                        keys.join(", ")
                    ));
                }
                return Ok(());
            }
        },
        serde_yaml::Value::Sequence(l) => l.clone(),
        _ => return Ok(()),
    };
    for entry in &list {
        if let serde_yaml::Value::Mapping(m) = entry {
            for k in m.keys() {
                let k = k.as_str().unwrap_or("?");
                if !KNOWN.contains(&k) {
                    return Err(format!(
                        "unknown key `{k}` in a host entry (known: host, user, port, deploy-path)"
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Config {
    /// Reads and validates every input.
    pub fn resolve(step: &Step) -> Result<Self, InputError> {
        let i = &step.inputs;
        let rollback = i.bool("rollback")?;
        let rollback_to = i.string("rollback-to");
        if let Some(t) = &rollback_to {
            validate_release_id("rollback-to", t)?;
        }
        let unlock = i.bool("unlock")?;
        let mode = if unlock {
            Mode::Unlock
        } else if rollback || rollback_to.is_some() {
            Mode::Rollback
        } else {
            Mode::Deploy
        };

        let default_user = i.string("user");
        let default_port: u16 = i.number("port")?.unwrap_or(22);
        let deploy_path = validate_deploy_path("deploy-path", &i.required("deploy-path")?)?;

        let mut hosts = Vec::new();
        for h in i.list_comma("hosts") {
            let spec = parse_host(&h).map_err(|r| InputError::invalid("hosts", &h, r))?;
            let user = spec.user.or_else(|| default_user.clone()).ok_or_else(|| {
                InputError::invalid(
                    "hosts",
                    &h,
                    "no user: write `user@host` or set the `user` input",
                )
            })?;
            hosts.push(Host {
                host: spec.host,
                user,
                port: spec.port.unwrap_or(default_port),
                deploy_path: deploy_path.clone(),
            });
        }
        if let Some(file) = i.string("hosts-file") {
            let path = i.resolve_path(&file);
            let text = std::fs::read_to_string(&path).map_err(|source| InputError::File {
                name: "hosts-file".into(),
                path: file.clone(),
                source,
            })?;
            unknown_host_keys(&text).map_err(|r| InputError::invalid("hosts-file", &file, r))?;
            let parsed: HostsFile = serde_yaml::from_str(&text).map_err(|e| {
                InputError::invalid(
                    "hosts-file",
                    &file,
                    format!("not a YAML list of hosts: {e}"),
                )
            })?;
            let list = match parsed {
                HostsFile::List(l) | HostsFile::Wrapped { hosts: l } => l,
            };
            for entry in list {
                let (text, u, p, d) = match entry {
                    FileHost::Text(t) => (t, None, None, None),
                    FileHost::Map {
                        host,
                        user,
                        port,
                        deploy_path,
                    } => (host, user, port, deploy_path),
                };
                let spec =
                    parse_host(&text).map_err(|r| InputError::invalid("hosts-file", &text, r))?;
                let user = u
                    .or(spec.user)
                    .or_else(|| default_user.clone())
                    .ok_or_else(|| {
                        InputError::invalid(
                            "hosts-file",
                            &text,
                            "no user: add `user:` or set the `user` input",
                        )
                    })?;
                let dp = match d {
                    Some(d) => validate_deploy_path("hosts-file", &d)?,
                    None => deploy_path.clone(),
                };
                hosts.push(Host {
                    host: spec.host,
                    user,
                    port: p.or(spec.port).unwrap_or(default_port),
                    deploy_path: dp,
                });
            }
        }
        if hosts.is_empty() {
            return Err(InputError::Required {
                name: "hosts".into(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for h in &hosts {
            if !seen.insert((h.host.clone(), h.port, h.deploy_path.clone())) {
                return Err(InputError::invalid(
                    "hosts",
                    &h.label(),
                    "this host and deploy path are listed twice",
                ));
            }
        }
        let mut jump_hosts = Vec::new();
        for h in i.list_comma("jump-hosts") {
            let spec = parse_host(&h).map_err(|r| InputError::invalid("jump-hosts", &h, r))?;
            jump_hosts.push(Host {
                host: spec.host,
                user: spec
                    .user
                    .or_else(|| default_user.clone())
                    .unwrap_or_else(|| "root".into()),
                port: spec.port.unwrap_or(22),
                deploy_path: String::new(),
            });
        }

        let key = match (i.secret("ssh-key"), i.string("ssh-key-file")) {
            (Some(_), Some(_)) => {
                return Err(InputError::Conflict {
                    first: "ssh-key".into(),
                    second: "ssh-key-file".into(),
                    reason: "give the key inline or as a file, not both".into(),
                });
            }
            (Some(k), None) => k,
            (None, Some(f)) => {
                let text = std::fs::read_to_string(i.resolve_path(&f)).map_err(|source| {
                    InputError::File {
                        name: "ssh-key-file".into(),
                        path: f.clone(),
                        source,
                    }
                })?;
                step.console.add_mask(text.trim());
                Secret::new(text)
            }
            (None, None) => {
                return Err(InputError::Required {
                    name: "ssh-key".into(),
                });
            }
        };
        let k = key.expose().trim();
        if !(k.starts_with("-----BEGIN") && k.contains("PRIVATE KEY-----")) {
            return Err(InputError::invalid(
                "ssh-key",
                "***",
                "not a private key (expected `-----BEGIN OPENSSH PRIVATE KEY-----` or a PEM key); password authentication is not supported",
            ));
        }
        let passphrase = i.secret("passphrase");
        if step.inputs.is_given("password") {
            return Err(InputError::invalid(
                "password",
                "***",
                "password authentication is refused; use a deploy key (`ssh-key`)",
            ));
        }

        let known_hosts = i.text_or_file("known-hosts")?;
        let fingerprints = i.list_comma("fingerprint");
        for f in &fingerprints {
            if !f.starts_with("SHA256:") || f.len() < 20 {
                return Err(InputError::invalid(
                    "fingerprint",
                    f,
                    "expected a SHA256 fingerprint as printed by `ssh-keygen -lf`: `SHA256:…`",
                ));
            }
        }
        if known_hosts.is_none() && fingerprints.is_empty() {
            return Err(InputError::invalid(
                "known-hosts",
                "",
                "host keys must be pinned: give `known-hosts` (lines from `ssh-keyscan -H host` checked out of band) or `fingerprint`; unknown hosts are refused",
            ));
        }

        let artifact_sha256 = i.string("artifact-sha256").map(|s| s.to_ascii_lowercase());
        if let Some(s) = &artifact_sha256
            && (s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(InputError::invalid(
                "artifact-sha256",
                s,
                "expected 64 hex digits",
            ));
        }
        let artifact = if mode == Mode::Deploy {
            let a = i.required("artifact")?;
            Some(if let Some(r) = a.strip_prefix("actions-artifact:") {
                if r.trim().is_empty() {
                    return Err(InputError::invalid(
                        "artifact",
                        &a,
                        "give an artifact id or name after `actions-artifact:`",
                    ));
                }
                ArtifactSource::ActionsArtifact {
                    reference: r.trim().to_string(),
                }
            } else if a.starts_with("https://") || a.starts_with("http://") {
                let u = url::Url::parse(&a)
                    .map_err(|e| InputError::invalid("artifact", &a, format!("not a URL: {e}")))?;
                let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if u.scheme() != "https" && !loopback {
                    return Err(InputError::invalid(
                        "artifact",
                        &a,
                        "only https:// URLs are accepted",
                    ));
                }
                if artifact_sha256.is_none() {
                    return Err(InputError::invalid(
                        "artifact-sha256",
                        "",
                        "required when `artifact` is a URL",
                    ));
                }
                ArtifactSource::Url { url: a }
            } else {
                let path = i.resolve_path(&a);
                if !path.exists() {
                    return Err(InputError::invalid(
                        "artifact",
                        &a,
                        format!("{} does not exist", path.display()),
                    ));
                }
                if path.is_dir() && artifact_sha256.is_some() {
                    return Err(InputError::invalid(
                        "artifact-sha256",
                        artifact_sha256.as_deref().unwrap_or_default(),
                        "a directory has no sha256 to check; give a .tar.gz/.zip file, or drop artifact-sha256",
                    ));
                }
                ArtifactSource::Local { path }
            })
        } else {
            None
        };

        let release_id = match i.string("release-id") {
            Some(id) => {
                validate_release_id("release-id", &id)?;
                id
            }
            None => step.now().format("%Y%m%dT%H%M%SZ").to_string(),
        };
        let keep: u32 = i.number("keep-releases")?.unwrap_or(5);
        if keep < 1 {
            return Err(InputError::invalid(
                "keep-releases",
                &keep.to_string(),
                "must be at least 1 (the current release is always kept)",
            ));
        }
        let mut shared = i.list_comma("shared");
        for s in &shared {
            if s.starts_with('/')
                || s.split('/').any(|c| c == "..")
                || s.trim_matches('/').is_empty()
            {
                return Err(InputError::invalid(
                    "shared",
                    s,
                    "shared entries are paths relative to the release, without `..`",
                ));
            }
        }
        let dotenv = i.secret("dotenv");
        if let Some(d) = &dotenv {
            // Mask each value on its own too: a value echoed alone by an app must not leak.
            for line in d.expose().lines() {
                if let Some((_, v)) = line.split_once('=') {
                    let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                    if v.len() >= 4 {
                        step.console.add_mask(v);
                    }
                }
            }
        }
        let dotenv_path = i
            .string("dotenv-path")
            .unwrap_or_else(|| "shared/.env".into());
        if dotenv_path.split('/').any(|c| c == "..") {
            return Err(InputError::invalid(
                "dotenv-path",
                &dotenv_path,
                "must not contain `..`",
            ));
        }
        if dotenv.is_some()
            && let Some(rel) = dotenv_path.strip_prefix("shared/")
            && !shared.iter().any(|s| s.trim_end_matches('/') == rel)
        {
            shared.push(rel.to_string());
        }
        let health = match (i.string("health-check"), i.string("health-url")) {
            (Some(_), Some(_)) => {
                return Err(InputError::Conflict {
                    first: "health-check".into(),
                    second: "health-url".into(),
                    reason: "give a command or a URL, not both".into(),
                });
            }
            (Some(c), None) => Some(Probe::Command(c)),
            (None, Some(u)) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(InputError::invalid(
                        "health-url",
                        &u,
                        "expected an http:// or https:// URL (fetched from the host)",
                    ));
                }
                Some(Probe::Url(u))
            }
            (None, None) => None,
        };
        let on_failure = match i
            .choice("on-failure", &["rollback-all", "stop", "continue"])?
            .as_deref()
        {
            Some("stop") => OnFailure::Stop,
            Some("continue") => OnFailure::Continue,
            _ => OnFailure::RollbackAll,
        };
        let max_parallel: usize = i.number("max-parallel")?.unwrap_or(10);
        if max_parallel == 0 {
            return Err(InputError::invalid(
                "max-parallel",
                "0",
                "must be at least 1",
            ));
        }
        let min_free = i.size("min-free-space")?;
        let dur = |n: &str, d: u64| -> Result<Duration, InputError> {
            Ok(i.duration(n)?.unwrap_or(Duration::from_secs(d)))
        };
        Ok(Self {
            mode,
            hosts,
            jump_hosts,
            key,
            passphrase,
            known_hosts,
            fingerprints,
            ssh_config: i.string_untrimmed("ssh-config"),
            artifact,
            artifact_sha256,
            github_token: i.token("github-token")?,
            release_id,
            rollback_to,
            keep_releases: keep,
            shared,
            dotenv,
            dotenv_path,
            requirements: i.string("requirements"),
            python: i.string("python").unwrap_or_else(|| "python3".into()),
            pip_args: i.string("pip-args").unwrap_or_default(),
            smoke: i.string("smoke-command"),
            script: i.string("script"),
            post_script: i.string("post-script"),
            restart: i.string("restart-command"),
            health,
            health_timeout: dur("health-timeout", 60)?,
            health_interval: dur("health-interval", 1)?,
            lock_timeout: dur("lock-timeout", 0)?,
            min_free,
            max_parallel,
            batch_size: i.number("batch-size")?.unwrap_or(0),
            on_failure,
            rollback_on_failure: i.opt_bool("rollback-on-failure")?.unwrap_or(true),
            verify_only: i.bool("verify-only")?,
            command_timeout: dur("command-timeout", 600)?,
            timeout: dur("timeout", 1800)?,
            connect_timeout: dur("connect-timeout", 15)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_syntax() {
        let h = parse_host("deploy@app1.example.com:2222").unwrap();
        assert_eq!(
            (h.user.as_deref(), h.host.as_str(), h.port),
            (Some("deploy"), "app1.example.com", Some(2222))
        );
        let h = parse_host("[::1]:22").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", Some(22)));
        let h = parse_host("u@[fe80::1]").unwrap();
        assert_eq!(
            (h.user.as_deref(), h.host.as_str(), h.port),
            (Some("u"), "fe80::1", None)
        );
        assert_eq!(parse_host("::1").unwrap().host, "::1");
        assert_eq!(parse_host("127.0.0.2").unwrap().port, None);
        for bad in [
            "",
            "a b",
            "host:99999",
            "host:0",
            "[::1",
            "[zz]:22",
            "-oProxyCommand=x",
            "u@",
            "@h",
            "h:x",
            "[::1]22",
        ] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deploy_paths() {
        assert!(validate_deploy_path("deploy-path", "/").is_err());
        assert!(validate_deploy_path("deploy-path", "~").is_err());
        assert!(validate_deploy_path("deploy-path", ".").is_err());
        assert!(validate_deploy_path("deploy-path", "~/").is_err());
        assert!(validate_deploy_path("deploy-path", "a/../b").is_err());
        assert_eq!(
            validate_deploy_path("deploy-path", "~/apps/x/").unwrap(),
            "apps/x"
        );
        assert_eq!(
            validate_deploy_path("deploy-path", "/srv/app").unwrap(),
            "/srv/app"
        );
    }

    #[test]
    fn labels() {
        let h = Host {
            host: "::1".into(),
            user: "d".into(),
            port: 2200,
            deploy_path: "x".into(),
        };
        assert_eq!(h.label(), "d@[::1]:2200");
    }
}
