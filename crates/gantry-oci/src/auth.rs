//! Registry credentials and auth challenges: `username`/`password` for one registry,
//! `registry=user:token` lines for several, Docker's `config.json` `auths`, `WWW-Authenticate`
//! parsing, and token requests carrying **several scopes** (push on the target and pull on the
//! mount source in one token, which cross-repository mounts need on token registries).
//!
//! Credentials live only in [`Secret`]s; nothing here formats one into a message.
//!
//! See: <https://distribution.github.io/distribution/spec/auth/token/> and
//! <https://github.com/oras-project/rust-oci-client/issues/235> (single-scope tokens break mounts).

use std::collections::BTreeMap;

use base64::Engine as _;
use gantry_runtime::Secret;

use crate::reference::{DOCKER_HUB, DOCKER_HUB_API};

/// The user name Docker stores with an identity (OAuth2 refresh) token, in `config.json` and in
/// credential helpers' answers.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// A username and password (or token) for one registry.
#[derive(Clone, Debug)]
pub struct Login {
    /// User name (not secret; GitHub uses the actor).
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

/// Credentials by registry host.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, Login>,
}

/// Docker Hub has three names; credentials for any of them apply to all.
fn canonical_host(host: &str) -> String {
    let h = host.trim().trim_end_matches('/').to_ascii_lowercase();
    let h = h
        .strip_prefix("https://")
        .or_else(|| h.strip_prefix("http://"))
        .map(str::to_string)
        .unwrap_or(h);
    let h = h.split('/').next().unwrap_or_default().to_string();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.into(),
        _ => h,
    }
}

impl Credentials {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the login for `host`.
    pub fn insert(&mut self, host: &str, username: &str, password: Secret) {
        self.by_host.insert(
            canonical_host(host),
            Login {
                username: username.to_string(),
                password,
            },
        );
    }

    /// Adds a login only when none is known for `host` yet.
    pub fn insert_default(&mut self, host: &str, username: &str, password: Secret) {
        self.by_host
            .entry(canonical_host(host))
            .or_insert_with(|| Login {
                username: username.to_string(),
                password,
            });
    }

    /// The login for `host` (`registry-1.docker.io` finds `docker.io`'s).
    pub fn get(&self, host: &str) -> Option<&Login> {
        let h = canonical_host(host);
        let h = if h == DOCKER_HUB_API {
            DOCKER_HUB.into()
        } else {
            h
        };
        self.by_host.get(&h)
    }

    /// The hosts we have logins for.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.by_host.keys().map(String::as_str)
    }

    /// Parses one `registry=user:token` line (the `registry-auth` input). The error never
    /// contains the token.
    pub fn parse_line(line: &str) -> Result<(String, String, Secret), String> {
        let Some((host, rest)) = line.split_once('=') else {
            return Err("expected `registry=username:token`".into());
        };
        let Some((user, pass)) = rest.split_once(':') else {
            return Err(format!(
                "expected `{}=username:token` (no `:` after the user name)",
                host.trim()
            ));
        };
        if host.trim().is_empty() || user.trim().is_empty() || pass.is_empty() {
            return Err("registry, user name and token must all be non-empty".into());
        }
        Ok((
            canonical_host(host),
            user.trim().to_string(),
            Secret::new(pass.trim()),
        ))
    }

    /// Reads the `auths` section of a Docker `config.json` (base64 `user:password` entries).
    /// Returns the hosts that name a credential helper instead (`credsStore`/`credHelpers`), which
    /// the caller may resolve with `docker-credential-<helper> get`.
    pub fn merge_docker_config(&mut self, json: &str) -> Result<DockerHelpers, String> {
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Config {
            #[serde(default)]
            auths: BTreeMap<String, Entry>,
            #[serde(default)]
            creds_store: Option<String>,
            #[serde(default)]
            cred_helpers: BTreeMap<String, String>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Entry {
            #[serde(default)]
            auth: Option<String>,
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            password: Option<String>,
            #[serde(default)]
            identitytoken: Option<String>,
        }
        let cfg: Config =
            serde_json::from_str(json).map_err(|e| format!("not a Docker config.json: {e}"))?;
        for (host, e) in cfg.auths {
            let login = match (e.auth, e.username, e.password) {
                (Some(a), _, _) if !a.is_empty() => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .map_err(|_| format!("`auths.{host}.auth` is not base64"))?;
                    let s = String::from_utf8(raw)
                        .map_err(|_| format!("`auths.{host}.auth` is not UTF-8"))?;
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                }
                (_, Some(u), Some(p)) => Some((u, p)),
                _ => None,
            };
            if let Some((u, p)) = login {
                self.insert_default(&host, &u, Secret::new(p));
            } else if let Some(t) = e.identitytoken {
                self.insert_default(&host, IDENTITY_TOKEN_USER, Secret::new(t));
            }
        }
        Ok(DockerHelpers {
            default: cfg.creds_store,
            per_host: cfg
                .cred_helpers
                .into_iter()
                .map(|(h, v)| (canonical_host(&h), v))
                .collect(),
        })
    }
}

/// Credential helpers named by a Docker config.
#[derive(Clone, Debug, Default)]
pub struct DockerHelpers {
    /// `credsStore`: the helper for every host without an entry.
    pub default: Option<String>,
    /// `credHelpers`: helper by host.
    pub per_host: BTreeMap<String, String>,
}

impl DockerHelpers {
    /// The helper that holds `host`'s login: `credHelpers[host]`, else `credsStore` (the Docker
    /// CLI's order; both win over `auths`).
    pub fn helper_for(&self, host: &str) -> Option<&str> {
        self.per_host
            .get(&canonical_host(host))
            .or(self.default.as_ref())
            .map(String::as_str)
            .filter(|h| !h.is_empty())
    }

    /// The server URL the Docker CLI asks a helper for: Docker Hub's legacy index URL, else the
    /// host name.
    pub fn server_url(host: &str) -> String {
        let h = canonical_host(host);
        if h == DOCKER_HUB || h == DOCKER_HUB_API {
            "https://index.docker.io/v1/".into()
        } else {
            h
        }
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// No auth needed.
    None,
    /// HTTP Basic on every request.
    Basic,
    /// Bearer tokens from `realm`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(value: &str) -> Option<(Challenge, BTreeMap<String, String>)> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some((Challenge::Basic, params)),
        "bearer" => {
            let realm = params.get("realm")?.clone();
            let service = params.get("service").cloned();
            Some((Challenge::Bearer { realm, service }, params))
        }
        _ => None,
    }
}

fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(stripped) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = stripped.char_indices();
            let mut end = stripped.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            value = v;
            rest = &stripped[end.min(stripped.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.insert(key, value);
    }
    out
}

/// `Authorization: Basic …` for a login.
pub(crate) fn basic_header(login: &Login) -> String {
    let raw = format!("{}:{}", login.username, login.password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A token scope: `repository:<name>:<actions>`.
pub fn repo_scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (c, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        )
        .expect("bearer");
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        assert_eq!(
            p.get("scope").map(String::as_str),
            Some("repository:a/b:pull")
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#).map(|x| x.0),
            Some(Challenge::Basic)
        );
        let (_, p) = parse_challenge(
            r#"Bearer realm="r",error="insufficient_scope",scope="repository:x:push""#,
        )
        .expect("ok");
        assert_eq!(
            p.get("error").map(String::as_str),
            Some("insufficient_scope")
        );
    }

    #[test]
    fn registry_auth_lines_never_echo_the_token() {
        let (h, u, p) = Credentials::parse_line("ghcr.io=octo:ghp_x").expect("ok");
        assert_eq!(
            (h.as_str(), u.as_str(), p.expose()),
            ("ghcr.io", "octo", "ghp_x")
        );
        let err = Credentials::parse_line("ghcr.io=ghp_secretvalue").expect_err("bad");
        assert!(!err.contains("ghp_secretvalue"), "{err}");
    }

    #[test]
    fn docker_config_auths() {
        let mut c = Credentials::new();
        let helpers = c
            .merge_docker_config(
                r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}},"credHelpers":{"gcr.io":"gcloud"}}"#,
            )
            .expect("ok");
        let l = c.get("registry-1.docker.io").expect("hub login");
        assert_eq!((l.username.as_str(), l.password.expose()), ("user", "pass"));
        assert_eq!(
            helpers.per_host.get("gcr.io").map(String::as_str),
            Some("gcloud")
        );
    }
}
