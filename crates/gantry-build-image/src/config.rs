//! Inputs → [`Config`]: every input read once, validated, and turned into typed values. Every
//! error names the input and the value (never a secret's value). Nothing here touches the network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gantry_oci::image::ConfigEdit;
use gantry_oci::{ClientConfig, Credentials, ImageRef, Platform};
use gantry_runtime::{InputError, Secret, Step};

/// What the action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// docker buildx build (or the classic builder plus our push).
    Build,
    /// Daemonless: base + local layers.
    Assemble,
    /// Per-platform digests into one index.
    Merge,
    /// Copy by digest.
    Promote,
}

impl Mode {
    /// The input value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Assemble => "assemble",
            Self::Merge => "merge",
            Self::Promote => "promote",
        }
    }
}

/// One repository to push to, with its tags (possibly none: by digest only).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// The repository (no tag, no digest).
    #[serde(serialize_with = "ser_display")]
    pub repo: ImageRef,
    /// Tags to point at the result, moved last.
    pub tags: Vec<String>,
}

fn ser_display<S: serde::Serializer>(r: &ImageRef, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.to_string())
}

/// Groups references by repository, keeping first-seen order.
pub fn group_targets(refs: &[ImageRef]) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for r in refs {
        let repo = ImageRef {
            tag: None,
            digest: None,
            ..r.clone()
        };
        let t = match out.iter_mut().find(|t| t.repo == repo) {
            Some(t) => t,
            None => {
                out.push(Target {
                    repo,
                    tags: Vec::new(),
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        if let Some(tag) = &r.tag
            && !t.tags.contains(tag)
        {
            t.tags.push(tag.clone());
        }
    }
    out
}

/// Annotations by level.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Annotations {
    /// On image manifests.
    pub manifest: BTreeMap<String, String>,
    /// On the index.
    pub index: BTreeMap<String, String>,
}

/// One `layers` line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerLine {
    /// The line as given.
    pub line: String,
    /// Local path template (absolute, resolved against the workspace).
    pub src: String,
    /// Path in the image.
    pub dest: String,
}

impl LayerLine {
    /// The local path for `p`.
    pub fn src_for(&self, p: &Platform) -> PathBuf {
        PathBuf::from(
            self.src
                .replace("{os}", &p.os)
                .replace("{arch}", &p.architecture)
                .replace("{variant}", p.variant.as_deref().unwrap_or(""))
                .replace("{platform}", &p.to_string().replace('/', "-")),
        )
    }
}

/// Assemble-mode settings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AssembleConfig {
    /// Base image, `None` for scratch.
    #[serde(serialize_with = "ser_opt_display")]
    pub base: Option<ImageRef>,
    /// Layers, one per line.
    pub layers: Vec<LayerLine>,
    /// Config edits.
    pub edit: ConfigEdit,
    /// File owner.
    pub owner: (u64, u64),
    /// mtime and `created`.
    pub epoch: i64,
}

fn ser_opt_display<S: serde::Serializer>(r: &Option<ImageRef>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_str(&r.to_string()),
        None => s.serialize_str("scratch"),
    }
}

/// Build-mode settings (build-push-action's inputs, as given).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BuildConfig {
    /// Context path.
    pub context: String,
    /// Dockerfile.
    pub file: Option<String>,
    /// `--build-arg`.
    pub build_args: Vec<String>,
    /// `--build-context`.
    pub build_contexts: Vec<String>,
    /// `--target`.
    pub target: Option<String>,
    /// Secret ids (values are kept apart).
    pub secret_ids: Vec<String>,
    /// `secrets` values, never serialised.
    #[serde(skip)]
    pub secrets: Vec<(String, Secret)>,
    /// `--secret id=…,src=…`.
    pub secret_files: Vec<String>,
    /// `--secret id=…,env=…`.
    pub secret_envs: Vec<String>,
    /// `--ssh`.
    pub ssh: Vec<String>,
    /// `--cache-from`.
    pub cache_from: Vec<String>,
    /// `--cache-to`.
    pub cache_to: Vec<String>,
    /// `--load`.
    pub load: bool,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--no-cache-filter`.
    pub no_cache_filters: Vec<String>,
    /// `--pull`.
    pub pull: bool,
    /// `provenance`.
    pub provenance: Option<String>,
    /// `sbom`.
    pub sbom: Option<String>,
    /// `--attest`.
    pub attests: Vec<String>,
    /// `--output`.
    pub outputs: Vec<String>,
    /// `--builder`.
    pub builder: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--add-host`.
    pub add_hosts: Vec<String>,
    /// `--allow`.
    pub allow: Vec<String>,
    /// `--shm-size`.
    pub shm_size: Option<String>,
    /// `--ulimit`.
    pub ulimit: Vec<String>,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// `--call` (`check`, `outline`, `targets`; `build` is the default).
    pub call: Option<String>,
}

impl BuildConfig {
    /// Whether the build is only evaluated (`call: check` and friends): nothing is produced.
    pub fn evaluate_only(&self) -> bool {
        self.call.as_deref().is_some_and(|c| {
            let method = c.split(',').next().unwrap_or("").trim();
            !method.is_empty() && method != "build"
        })
    }
}

/// Everything the run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Mode.
    pub mode: Mode,
    /// Where results go (`tags`, and `targets` in promote mode).
    pub targets: Vec<Target>,
    /// `tags` as given (build mode passes them to docker).
    pub tag_refs: Vec<ImageRef>,
    /// Push.
    pub push: bool,
    /// Platforms.
    pub platforms: Vec<Platform>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `labels` lines as given (build mode).
    pub label_lines: Vec<String>,
    /// `annotations` lines as given (build mode).
    pub annotation_lines: Vec<String>,
    /// Annotations.
    pub annotations: Annotations,
    /// Build mode.
    pub build: BuildConfig,
    /// Assemble mode.
    pub assemble: AssembleConfig,
    /// Merge mode: the per-platform manifests (with digests).
    pub digests: Vec<ImageRef>,
    /// Promote mode: the image to copy.
    pub source: Option<ImageRef>,
    /// Copy referrers.
    pub copy_referrers: bool,
    /// Require a signature.
    pub require_signature: bool,
    /// Fail only when every target failed.
    pub continue_on_registry_error: bool,
    /// Credentials.
    pub creds: Credentials,
    /// Client settings.
    pub client: ClientConfig,
    /// Hosts we have credentials for (for the plan; never the values).
    pub cred_hosts: Vec<String>,
    /// Credential helpers named by the Docker config (run when the client is set up).
    pub docker_helpers: gantry_oci::auth::DockerHelpers,
    /// Scratch space.
    pub temp_dir: PathBuf,
}

fn parse_ref(input: &str, value: &str) -> Result<ImageRef, InputError> {
    ImageRef::parse(value).map_err(|e| match e {
        gantry_oci::Error::InvalidReference { reason, .. } => {
            InputError::invalid(input, value, reason)
        }
        other => InputError::invalid(input, value, other.to_string()),
    })
}

/// Splits `a b "c d"` shell-style (quotes and backslashes only), or parses a JSON array.
pub fn parse_words(input: &str, value: &str) -> Result<Vec<String>, InputError> {
    let v = value.trim();
    if v.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(v).map_err(|e| {
            InputError::invalid(input, value, format!("not a JSON array of strings: {e}"))
        });
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(InputError::invalid(input, value, "unterminated quote"));
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    Ok(out)
}

fn key_values(step: &Step, input: &str) -> Result<BTreeMap<String, String>, InputError> {
    let mut out = BTreeMap::new();
    for line in step.inputs.list(input) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(InputError::invalid(input, &line, "expected `key=value`"));
        };
        if k.trim().is_empty() {
            return Err(InputError::invalid(input, &line, "empty key"));
        }
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

fn opt(step: &Step, name: &str) -> Option<String> {
    step.inputs.string(name).filter(|s| !s.is_empty())
}

impl Config {
    /// Reads and validates the inputs.
    pub fn resolve(step: &Step) -> Result<Self, InputError> {
        let i = &step.inputs;
        let mode = match i.choice("mode", &["build", "assemble", "merge", "promote"])? {
            Some(m) => match m.as_str() {
                "assemble" => Mode::Assemble,
                "merge" => Mode::Merge,
                "promote" => Mode::Promote,
                _ => Mode::Build,
            },
            None if i.is_given("source") && !i.is_given("digests") => Mode::Promote,
            None if i.is_given("digests") => Mode::Merge,
            None if i.is_given("layers") => Mode::Assemble,
            None => Mode::Build,
        };

        let mut tag_refs = Vec::new();
        for t in i.list_comma("tags") {
            let mut r = parse_ref("tags", &t)?;
            if r.tag.is_none() && r.digest.is_none() {
                r.tag = Some("latest".into());
            }
            tag_refs.push(r);
        }
        let mut platforms = Vec::new();
        for p in i.list_comma("platforms") {
            let parsed =
                Platform::parse(&p).map_err(|e| InputError::invalid("platforms", &p, e))?;
            if !platforms.contains(&parsed) {
                platforms.push(parsed);
            }
        }
        let labels = key_values(step, "labels")?;
        let mut annotations = Annotations::default();
        let annotation_lines = i.list("annotations");
        for line in &annotation_lines {
            let (level, kv) = match line.split_once(':') {
                Some((lvl, rest))
                    if matches!(
                        lvl,
                        "index" | "manifest" | "index-descriptor" | "manifest-descriptor"
                    ) || lvl.starts_with("manifest[")
                        || lvl.starts_with("index[") =>
                {
                    (lvl.split('[').next().unwrap_or(lvl), rest)
                }
                _ => ("", line.as_str()),
            };
            let Some((k, v)) = kv.split_once('=') else {
                return Err(InputError::invalid(
                    "annotations",
                    line,
                    "expected `[index:|manifest:]key=value`",
                ));
            };
            match level {
                "index" => {
                    annotations.index.insert(k.into(), v.into());
                }
                "manifest" => {
                    annotations.manifest.insert(k.into(), v.into());
                }
                "" => {
                    annotations.manifest.insert(k.into(), v.into());
                    annotations.index.insert(k.into(), v.into());
                }
                _ => {}
            }
        }

        let source = match opt(step, "source") {
            Some(s) => Some(parse_ref("source", &s)?),
            None => None,
        };
        let mut target_refs = Vec::new();
        if mode == Mode::Promote {
            let Some(src) = &source else {
                return Err(InputError::Required {
                    name: "source".into(),
                });
            };
            for t in i.list_comma("targets") {
                let mut r = parse_ref("targets", &t)?;
                if r.digest.is_some() {
                    return Err(InputError::invalid(
                        "targets",
                        &t,
                        "a target is a repository with an optional tag, not a digest",
                    ));
                }
                if r.tag.is_none() {
                    r.tag = src.tag.clone();
                }
                target_refs.push(r);
            }
            target_refs.extend(tag_refs.iter().cloned());
            if target_refs.is_empty() {
                return Err(InputError::Required {
                    name: "targets".into(),
                });
            }
        } else {
            target_refs = tag_refs.clone();
        }
        let targets = group_targets(&target_refs);

        // merge
        let mut digests = Vec::new();
        if mode == Mode::Merge {
            let home = source.clone().or_else(|| tag_refs.first().cloned());
            for d in i.list_comma("digests") {
                let d = d.trim().to_string();
                let r = if d.contains('@') || d.contains('/') {
                    let r = parse_ref("digests", &d)?;
                    if r.digest.is_none() {
                        return Err(InputError::invalid(
                            "digests",
                            &d,
                            "expected `repo@sha256:…` or `sha256:…`",
                        ));
                    }
                    r
                } else {
                    let d = if d.starts_with("sha256:") {
                        d
                    } else if d.len() == 64 {
                        format!("sha256:{d}")
                    } else {
                        d
                    };
                    gantry_oci::reference::validate_digest(&d)
                        .map_err(|e| InputError::invalid("digests", &d, e))?;
                    let Some(h) = &home else {
                        return Err(InputError::invalid(
                            "digests",
                            &d,
                            "a bare digest needs `source` or `tags` to name its repository",
                        ));
                    };
                    h.with_digest(&d)
                };
                digests.push(r);
            }
            if digests.is_empty() {
                return Err(InputError::Required {
                    name: "digests".into(),
                });
            }
            if targets.is_empty() {
                return Err(InputError::Required {
                    name: "tags".into(),
                });
            }
        }

        // assemble
        let base = match opt(step, "base").as_deref() {
            None | Some("scratch") => None,
            Some(b) => Some(parse_ref("base", b)?),
        };
        let mut layers = Vec::new();
        for line in i.list("layers") {
            let Some(at) = line.find(":/") else {
                return Err(InputError::invalid(
                    "layers",
                    &line,
                    "expected `local-path:/path/in/image`",
                ));
            };
            let (src, dest) = (&line[..at], &line[at + 1..]);
            if src.trim().is_empty() {
                return Err(InputError::invalid("layers", &line, "empty local path"));
            }
            if dest.split('/').any(|c| c == "..") {
                return Err(InputError::invalid(
                    "layers",
                    &line,
                    "the image path must not contain `..`",
                ));
            }
            let resolved = i.resolve_path(src.trim());
            layers.push(LayerLine {
                line: line.clone(),
                src: resolved.display().to_string(),
                dest: dest.trim().to_string(),
            });
        }
        let mut edit = ConfigEdit {
            labels: labels.clone(),
            ..ConfigEdit::default()
        };
        if let Some(e) = opt(step, "entrypoint") {
            edit.entrypoint = Some(parse_words("entrypoint", &e)?);
        }
        if let Some(c) = opt(step, "cmd") {
            edit.cmd = Some(parse_words("cmd", &c)?);
        }
        for line in i.list("env") {
            let Some((k, v)) = line.split_once('=') else {
                return Err(InputError::invalid("env", &line, "expected `NAME=value`"));
            };
            edit.env.push((k.trim().to_string(), v.to_string()));
        }
        edit.user = opt(step, "image-user");
        edit.workdir = opt(step, "workdir");
        for p in i.list_comma("expose") {
            let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            if port.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                return Err(InputError::invalid(
                    "expose",
                    &p,
                    "expected `<port>[/tcp|udp|sctp]`",
                ));
            }
            edit.exposed_ports.push(format!("{port}/{proto}"));
        }
        let owner_s = opt(step, "owner").unwrap_or_else(|| "0:0".into());
        let (u, g) = owner_s
            .split_once(':')
            .unwrap_or((owner_s.as_str(), owner_s.as_str()));
        let owner = match (u.parse::<u64>(), g.parse::<u64>()) {
            (Ok(u), Ok(g)) => (u, g),
            _ => {
                return Err(InputError::invalid(
                    "owner",
                    &owner_s,
                    "expected numeric `uid:gid`",
                ));
            }
        };
        let epoch = match i.number::<i64>("source-date-epoch")? {
            Some(e) => e,
            None => step.env.source_date_epoch().unwrap_or(0),
        };
        if mode == Mode::Assemble {
            if layers.is_empty() && base.is_none() {
                return Err(InputError::Required {
                    name: "layers".into(),
                });
            }
            let plats = if platforms.is_empty() {
                vec![
                    Platform::parse("linux/amd64")
                        .map_err(|e| InputError::invalid("platforms", "linux/amd64", e))?,
                ]
            } else {
                platforms.clone()
            };
            for l in &layers {
                for p in &plats {
                    let path = l.src_for(p);
                    if std::fs::symlink_metadata(&path).is_err() {
                        return Err(InputError::invalid(
                            "layers",
                            &l.line,
                            format!(
                                "local path `{}` does not exist{}",
                                path.display(),
                                if l.src.contains('{') {
                                    format!(" (for {p})")
                                } else {
                                    String::new()
                                }
                            ),
                        ));
                    }
                }
            }
        }

        // build
        let mut secrets = Vec::new();
        if let Some(s) = i.secret("secrets") {
            for line in s.expose().lines().map(str::trim).filter(|l| !l.is_empty()) {
                let Some((id, v)) = line.split_once('=') else {
                    return Err(InputError::invalid(
                        "secrets",
                        "***",
                        "expected `id=value` per line",
                    ));
                };
                step.console.add_mask(v.trim_matches('"'));
                secrets.push((id.trim().to_string(), Secret::new(v.trim_matches('"'))));
            }
        }
        let build = BuildConfig {
            context: opt(step, "context").unwrap_or_else(|| ".".into()),
            file: opt(step, "file"),
            build_args: i.list("build-args"),
            build_contexts: i.list("build-contexts"),
            target: opt(step, "target"),
            secret_ids: secrets.iter().map(|(id, _)| id.clone()).collect(),
            secrets,
            secret_files: i.list("secret-files"),
            secret_envs: i.list_comma("secret-envs"),
            ssh: i.list("ssh"),
            cache_from: i.list("cache-from"),
            cache_to: i.list("cache-to"),
            load: i.bool("load")?,
            no_cache: i.bool("no-cache")?,
            no_cache_filters: i.list_comma("no-cache-filters"),
            pull: i.bool("pull")?,
            provenance: opt(step, "provenance"),
            sbom: opt(step, "sbom"),
            attests: i.list("attests"),
            outputs: i.list("outputs"),
            builder: opt(step, "builder"),
            network: opt(step, "network"),
            add_hosts: i.list_comma("add-hosts"),
            allow: i.list_comma("allow"),
            shm_size: opt(step, "shm-size"),
            ulimit: i.list("ulimit"),
            cgroup_parent: opt(step, "cgroup-parent"),
            call: opt(step, "call"),
        };

        // registries
        let mut creds = Credentials::new();
        let mut cred_hosts = Vec::new();
        if let Some(lines) = i.secret("registry-auth") {
            for line in lines
                .expose()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                let (host, user, pass) = Credentials::parse_line(line)
                    .map_err(|e| InputError::invalid("registry-auth", "***", e))?;
                step.console.add_mask(pass.expose());
                cred_hosts.push(host.clone());
                creds.insert(&host, &user, pass);
            }
        }
        let username = opt(step, "username");
        let password = i.secret("password");
        match (&username, &password) {
            (Some(u), Some(p)) => {
                let host = match opt(step, "registry") {
                    Some(r) => r,
                    None => target_refs
                        .first()
                        .or(source.as_ref())
                        .map(|r| r.registry.clone())
                        .ok_or(InputError::Required {
                            name: "registry".into(),
                        })?,
                };
                cred_hosts.push(host.clone());
                creds.insert(&host, u, p.clone());
            }
            (Some(_), None) => {
                return Err(InputError::Required {
                    name: "password".into(),
                });
            }
            (None, Some(_)) => {
                return Err(InputError::Required {
                    name: "username".into(),
                });
            }
            (None, None) => {}
        }
        if let Some(tok) = i.token("github-token")?.filter(|t| !t.is_empty()) {
            let actor = if step.github.actor.is_empty() {
                "x-access-token".to_string()
            } else {
                step.github.actor.clone()
            };
            if creds.get("ghcr.io").is_none() {
                cred_hosts.push("ghcr.io".into());
            }
            creds.insert_default("ghcr.io", &actor, tok);
        }
        let mut docker_helpers = gantry_oci::auth::DockerHelpers::default();
        let docker_config = step
            .env
            .get("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| {
                step.env
                    .get("HOME")
                    .map(|h| PathBuf::from(h).join(".docker/config.json"))
            });
        if let Some(p) = docker_config
            && let Ok(text) = std::fs::read_to_string(&p)
        {
            match creds.merge_docker_config(&text) {
                Ok(h) => {
                    tracing::debug!("read registry logins from {}", p.display());
                    docker_helpers = h;
                }
                Err(e) => tracing::warn!("ignoring {}: {e}", p.display()),
            }
        }
        let mut client = ClientConfig {
            insecure: i.list_comma("insecure-registries"),
            ..ClientConfig::default()
        };
        if let Some(ca) = opt(step, "registry-ca") {
            let path = i.resolve_path(&ca);
            let pem = std::fs::read(&path).map_err(|e| InputError::File {
                name: "registry-ca".into(),
                path: ca.clone(),
                source: e,
            })?;
            gantry_oci::check_ca_pem(&pem)
                .map_err(|why| InputError::invalid("registry-ca", &ca, why))?;
            client.ca_pem.push(pem);
        }
        if let Some(c) = i.number::<usize>("concurrency")? {
            if c == 0 {
                return Err(InputError::invalid(
                    "concurrency",
                    "0",
                    "must be at least 1",
                ));
            }
            client.concurrency = c;
        }
        if let Some(r) = i.number::<u32>("retries")? {
            client.retries = r;
        }
        if let Some(size) = i.size("upload-chunk-size")? {
            if !(64 * 1024..=1 << 30).contains(&size) {
                return Err(InputError::invalid(
                    "upload-chunk-size",
                    &i.string("upload-chunk-size").unwrap_or_default(),
                    "must be between 64K and 1G",
                ));
            }
            client.chunk_size = usize::try_from(size).unwrap_or(usize::MAX);
            client.chunked_first = true;
        }
        let temp_dir = step
            .github
            .runner_temp
            .clone()
            .or_else(|| step.env.get("TMPDIR").map(PathBuf::from))
            .unwrap_or_else(std::env::temp_dir);

        Ok(Self {
            mode,
            targets,
            tag_refs,
            push: i.bool("push")?,
            platforms,
            labels,
            label_lines: i.list("labels"),
            annotation_lines,
            annotations,
            build,
            assemble: AssembleConfig {
                base,
                layers,
                edit,
                owner,
                epoch,
            },
            digests,
            source,
            copy_referrers: i.bool("copy-referrers")?,
            require_signature: i.bool("require-signature")?,
            continue_on_registry_error: i.bool("continue-on-registry-error")?,
            creds,
            client,
            cred_hosts,
            docker_helpers,
            temp_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            parse_words("cmd", r#"["/app/server","--port","8080"]"#).expect("json"),
            ["/app/server", "--port", "8080"]
        );
        assert_eq!(
            parse_words("cmd", r#"/app/server --name "a b" ''"#).expect("words"),
            ["/app/server", "--name", "a b", ""]
        );
        assert!(parse_words("cmd", "\"open").is_err());
    }

    #[test]
    fn targets_group_by_repository() {
        let refs: Vec<ImageRef> = ["r.io/a:1", "r.io/a:2", "r.io/b:1", "r.io/a:1"]
            .iter()
            .map(|s| ImageRef::parse(s).expect("ref"))
            .collect();
        let t = group_targets(&refs);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].tags, ["1", "2"]);
        assert_eq!(t[1].repo.to_string(), "r.io/b");
    }
}
