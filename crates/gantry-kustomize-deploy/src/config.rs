//! Inputs → [`Config`]: every input of `kustomize-deploy` read once, validated, and named in
//! errors. Image overrides are parsed here ([`ImageOverride`]). It must not touch the cluster or
//! run programs.

use std::path::PathBuf;
use std::time::Duration;

use gantry_runtime::{InputError, Secret, Step};

/// One `images` entry: `name=newName:tag`, `name=newName@sha256:…`, `name:tag` or `name@sha256:…`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageOverride {
    /// The image name as the overlay leaves it (kustomize's `name`).
    pub name: String,
    /// New repository, when changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// New tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    /// New digest (`sha256:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImageOverride {
    /// The full reference this override produces.
    pub fn reference(&self) -> String {
        let repo = self.new_name.as_deref().unwrap_or(&self.name);
        match (&self.digest, &self.new_tag) {
            (Some(d), _) => format!("{repo}@{d}"),
            (None, Some(t)) => format!("{repo}:{t}"),
            (None, None) => repo.to_string(),
        }
    }
}

/// Splits `repo[:tag][@digest]` without confusing a registry port with a tag.
fn split_ref(r: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match r.split_once('@') {
        Some((a, d)) => (a, Some(d.to_string())),
        None => (r, None),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[last_slash..].rfind(':') {
        Some(i) => (
            rest[..last_slash + i].to_string(),
            Some(rest[last_slash + i + 1..].to_string()),
            digest,
        ),
        None => (rest.to_string(), None, digest),
    }
}

fn valid_repo(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.contains("//")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c))
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !t.starts_with(['.', '-'])
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        Some((alg, hex)) => {
            !alg.is_empty() && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

impl ImageOverride {
    /// Parses one `images` line.
    pub fn parse(line: &str) -> Result<Self, InputError> {
        let bad = |reason: &str| InputError::invalid("images", line, reason.to_string());
        let line = line.trim();
        let (name, target) = match line.split_once('=') {
            Some((n, t)) => (n.trim().to_string(), t.trim()),
            None => {
                let (repo, _, _) = split_ref(line);
                (repo, line)
            }
        };
        if !valid_repo(&name) {
            return Err(bad(
                "the image name (left of `=`) is not a valid repository name",
            ));
        }
        let (repo, tag, digest) = split_ref(target);
        if !valid_repo(&repo) {
            return Err(bad(
                "not a valid image reference; expected name=registry/repo:tag or name=registry/repo@sha256:<64 hex>",
            ));
        }
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(
                "the tag is not valid (letters, digits, `.`, `_`, `-`, at most 128)",
            ));
        }
        if let Some(d) = &digest
            && !valid_digest(d)
        {
            return Err(bad(
                "the digest is not valid; expected sha256:<64 lowercase hex>",
            ));
        }
        if tag.is_none() && digest.is_none() && repo == name {
            return Err(bad("nothing to change: give a tag, a digest or a new name"));
        }
        Ok(Self {
            new_name: (repo != name).then_some(repo),
            name,
            new_tag: if digest.is_some() { None } else { tag },
            digest,
        })
    }
}

/// Where the cluster credentials come from.
#[derive(Clone, Debug)]
pub enum KubeSource {
    /// Inline kubeconfig (raw YAML or base64), already decoded and masked.
    Inline(Secret),
    /// A kubeconfig file.
    File(PathBuf),
    /// `KUBECONFIG`, `~/.kube/config`, or the in-cluster service account.
    Default,
}

/// Deployment strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Apply and wait.
    Rolling,
    /// New color next to the live one, then switch Services.
    BlueGreen,
    /// A few new pods behind the same Service, then promote or reject.
    Canary,
}

/// Canary size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CanarySize {
    /// A fixed number of pods.
    Replicas(u32),
    /// A percentage of the stable replicas (at least one pod).
    Percent(u32),
}

impl CanarySize {
    /// Pods for a stable Deployment of `replicas`.
    pub fn pods(self, replicas: i64) -> i64 {
        match self {
            Self::Replicas(n) => i64::from(n.max(1)),
            Self::Percent(p) => ((replicas * i64::from(p)) + 99) / 100,
        }
        .max(1)
    }
}

/// What this run does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Render, apply, wait.
    Deploy,
    /// Restore the revision before the latest one (`None`) or the named one.
    Rollback(Option<u32>),
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The overlay directory (absolute).
    pub overlay: Option<PathBuf>,
    /// The overlay as given (for messages and the history key).
    pub overlay_input: String,
    /// Image overrides.
    pub images: Vec<ImageOverride>,
    /// Namespace for namespaced objects without one.
    pub namespace: Option<String>,
    /// Cluster credentials.
    pub kube: KubeSource,
    /// Context in the kubeconfig.
    pub kube_context: Option<String>,
    /// Strategy.
    pub strategy: Strategy,
    /// One deadline for the whole wait.
    pub timeout: Duration,
    /// Delete objects applied before and no longer rendered.
    pub prune: bool,
    /// Send every apply with `dryRun=All` and stop.
    pub server_dry_run: bool,
    /// Restore the previous state when the rollout fails.
    pub rollback_on_failure: bool,
    /// Deploy or roll back.
    pub mode: Mode,
    /// SSA field manager.
    pub field_manager: String,
    /// Annotate every object with run URL, commit and actor.
    pub annotate: bool,
    /// Revisions kept in the cluster.
    pub history_limit: usize,
    /// Explicit kubectl (or kustomize) binary.
    pub kubectl: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Canary size.
    pub canary_size: CanarySize,
    /// How long the canary must stay healthy.
    pub canary_duration: Duration,
    /// URL checked from inside the cluster by a short-lived Job.
    pub health_check_url: Option<String>,
    /// Image of the health-check Job.
    pub health_check_image: String,
    /// Blue-green: keep the previous color after the switch.
    pub keep_previous: bool,
}

fn decode_kubeconfig(text: &str) -> Result<String, InputError> {
    let t = text.trim();
    if t.contains("apiVersion") || t.contains("clusters:") || t.starts_with('{') {
        return Ok(t.to_string());
    }
    use base64::Engine;
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(compact.trim_end_matches('=').as_bytes())
        })
        .map_err(|_| {
            InputError::invalid(
                "kubeconfig",
                "***",
                "neither kubeconfig YAML nor base64 of it",
            )
        })?;
    let s = String::from_utf8(bytes).map_err(|_| {
        InputError::invalid(
            "kubeconfig",
            "***",
            "base64 decodes to bytes that are not UTF-8 text",
        )
    })?;
    if !(s.contains("clusters") || s.contains("apiVersion")) {
        return Err(InputError::invalid(
            "kubeconfig",
            "***",
            "base64 decodes to something that is not a kubeconfig (no `clusters`)",
        ));
    }
    Ok(s)
}

/// Masks every secret field of a kubeconfig (tokens, keys, passwords, auth-provider secrets).
pub fn mask_kubeconfig(step: &Step, yaml: &str) {
    fn walk(step: &Step, v: &serde_yaml::Value, under_user: bool) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, val) in m {
                    let key = k.as_str().unwrap_or_default();
                    let secret = matches!(
                        key,
                        "token"
                            | "client-key-data"
                            | "client-key"
                            | "password"
                            | "id-token"
                            | "refresh-token"
                            | "client-secret"
                            | "access-token"
                            | "client-certificate-data"
                            | "tokenFile"
                    ) || (under_user && key == "value");
                    if secret && let Some(s) = val.as_str() {
                        step.console.add_mask(s);
                    }
                    walk(step, val, under_user || key == "user" || key == "users");
                }
            }
            serde_yaml::Value::Sequence(s) => s.iter().for_each(|x| walk(step, x, under_user)),
            _ => {}
        }
    }
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        if let Ok(v) = <serde_yaml::Value as serde::Deserialize>::deserialize(doc) {
            walk(step, &v, false);
        }
    }
}

impl Config {
    /// Reads and validates every input.
    pub fn resolve(step: &Step) -> Result<Self, InputError> {
        let i = &step.inputs;
        let rollback = i.bool("rollback")?;
        let rollback_to = i.number::<u32>("rollback-to")?;
        let mode = if rollback || rollback_to.is_some() {
            Mode::Rollback(rollback_to)
        } else {
            Mode::Deploy
        };
        let overlay_input = i.string("overlay").unwrap_or_default();
        let overlay = if overlay_input.is_empty() {
            if mode == Mode::Deploy {
                return Err(InputError::Required {
                    name: "overlay".into(),
                });
            }
            None
        } else {
            let p = i.resolve_path(&overlay_input);
            if !p.is_dir() {
                return Err(InputError::invalid(
                    "overlay",
                    &overlay_input,
                    format!("no such directory ({})", p.display()),
                ));
            }
            if !["kustomization.yaml", "kustomization.yml", "Kustomization"]
                .iter()
                .any(|f| p.join(f).is_file())
            {
                return Err(InputError::invalid(
                    "overlay",
                    &overlay_input,
                    "the directory has no kustomization.yaml",
                ));
            }
            Some(p)
        };
        let images = i
            .list("images")
            .iter()
            .flat_map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|l| ImageOverride::parse(&l))
            .collect::<Result<Vec<_>, _>>()?;
        let namespace = i.string("namespace");
        if let Some(ns) = &namespace
            && (ns.len() > 63
                || !ns
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                || ns.starts_with('-'))
        {
            return Err(InputError::invalid(
                "namespace",
                ns,
                "not a valid namespace name (RFC 1123 label)",
            ));
        }
        let kube = match i.secret_or_file("kubeconfig")? {
            Some(s) => {
                let text = decode_kubeconfig(s.expose())?;
                mask_kubeconfig(step, &text);
                KubeSource::Inline(Secret::new(text))
            }
            None => KubeSource::Default,
        };
        let strategy = match i
            .choice("strategy", &["rolling", "blue-green", "canary"])?
            .as_deref()
        {
            Some("blue-green") => Strategy::BlueGreen,
            Some("canary") => Strategy::Canary,
            _ => Strategy::Rolling,
        };
        let canary_size = match i.string("canary-replicas") {
            None => CanarySize::Replicas(1),
            Some(v) => match v.strip_suffix('%') {
                Some(p) => match p.trim().parse::<u32>() {
                    Ok(p) if (1..=100).contains(&p) => CanarySize::Percent(p),
                    _ => {
                        return Err(InputError::invalid(
                            "canary-replicas",
                            &v,
                            "a percentage must be 1% to 100%",
                        ));
                    }
                },
                None => match v.parse::<u32>() {
                    Ok(n) if n >= 1 => CanarySize::Replicas(n),
                    _ => {
                        return Err(InputError::invalid(
                            "canary-replicas",
                            &v,
                            "expected a number of pods (e.g. 1) or a percentage (e.g. 10%)",
                        ));
                    }
                },
            },
        };
        let health_check_url = i.string("health-check-url");
        if let Some(u) = &health_check_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(InputError::invalid(
                "health-check-url",
                u,
                "expected an http:// or https:// URL reachable from inside the cluster",
            ));
        }
        let timeout = i.duration("timeout")?.unwrap_or(Duration::from_secs(300));
        let field_manager = i.string("field-manager").unwrap_or_else(|| "gantry".into());
        if field_manager.len() > 128 || field_manager.is_empty() {
            return Err(InputError::invalid(
                "field-manager",
                &field_manager,
                "must be 1 to 128 characters",
            ));
        }
        let history_limit = i
            .number::<usize>("history-limit")?
            .unwrap_or(10)
            .clamp(1, 100);
        Ok(Self {
            overlay,
            overlay_input,
            images,
            namespace,
            kube,
            kube_context: i.string("kube-context"),
            strategy,
            timeout,
            prune: i.bool("prune")?,
            server_dry_run: i.bool("server-dry-run")?,
            rollback_on_failure: i.opt_bool("rollback-on-failure")?.unwrap_or(true),
            mode,
            field_manager,
            annotate: i.bool("annotate")?,
            history_limit,
            kubectl: i.string("kubectl"),
            dry_run: step.dry_run,
            canary_size,
            canary_duration: i
                .duration("canary-duration")?
                .unwrap_or(Duration::from_secs(30)),
            health_check_url,
            health_check_image: i
                .string("health-check-image")
                .unwrap_or_else(|| "curlimages/curl:8.11.1".into()),
            keep_previous: i.opt_bool("keep-previous")?.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_with_registry_ports_keep_the_host() {
        let o = ImageOverride::parse("registry.example/web=myreg.local:5000/api:2").expect("ok");
        assert_eq!(o.name, "registry.example/web");
        assert_eq!(o.new_name.as_deref(), Some("myreg.local:5000/api"));
        assert_eq!(o.new_tag.as_deref(), Some("2"));
        let o = ImageOverride::parse("myreg.local:5000/api:3").expect("ok");
        assert_eq!(o.name, "myreg.local:5000/api");
        assert_eq!(o.new_name, None);
        assert_eq!(o.new_tag.as_deref(), Some("3"));
        let d = format!("sha256:{}", "a".repeat(64));
        let o = ImageOverride::parse(&format!("web=ghcr.io/acme/web@{d}")).expect("ok");
        assert_eq!(o.digest.as_deref(), Some(d.as_str()));
        assert_eq!(o.reference(), format!("ghcr.io/acme/web@{d}"));
    }

    #[test]
    fn bad_images_are_rejected_with_the_value() {
        for bad in [
            "web=",
            "web=Ghcr.io/x:1",
            "web=ghcr.io/x:",
            "web=x@sha256:abc",
            "=x:1",
            "web",
        ] {
            let e = ImageOverride::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("images"), "{e}");
        }
    }

    #[test]
    fn kubeconfig_base64_or_raw() {
        use base64::Engine;
        let raw = "apiVersion: v1\nclusters: []\n";
        assert_eq!(decode_kubeconfig(raw).expect("raw"), raw.trim());
        let b = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(decode_kubeconfig(&b).expect("b64"), raw);
        assert!(decode_kubeconfig("!!!notbase64").is_err());
    }
}
