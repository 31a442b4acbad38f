//! Build mode: `docker buildx build` driven like docker/build-push-action (its input names, the
//! digest from `--metadata-file`), or, when buildx is missing, the classic builder for one platform
//! followed by `docker save` and a push with our own client (HEAD/mount/retries).
//!
//! Secrets never go into argv: `secrets` values are written to private temp files that buildx
//! reads with `--secret id=…,src=…`.
//!
//! See: <https://github.com/docker/build-push-action/blob/master/src/context.ts>

use crate::Error;
use crate::config::Config;
use gantry_oci::Client;
use gantry_runtime::Step;

/// The `docker buildx build` argv (after `docker`).
pub(crate) fn buildx_argv(
    cfg: &Config,
    metadata_file: &str,
    iidfile: &str,
    secret_files: &[(String, String)],
) -> Vec<String> {
    let b = &cfg.build;
    let mut a: Vec<String> = vec!["buildx".into(), "build".into()];
    let mut flag = |name: &str, v: &str| {
        a.push(format!("--{name}"));
        a.push(v.to_string());
    };
    for h in &b.add_hosts {
        flag("add-host", h);
    }
    if !b.allow.is_empty() {
        flag("allow", &b.allow.join(","));
    }
    for x in &cfg.annotation_lines {
        flag("annotation", x);
    }
    for x in &b.attests {
        flag("attest", x);
    }
    for x in &b.build_args {
        flag("build-arg", x);
    }
    for x in &b.build_contexts {
        flag("build-context", x);
    }
    if let Some(x) = &b.builder {
        flag("builder", x);
    }
    for x in &b.cache_from {
        flag("cache-from", x);
    }
    for x in &b.cache_to {
        flag("cache-to", x);
    }
    if let Some(x) = &b.cgroup_parent {
        flag("cgroup-parent", x);
    }
    if let Some(f) = &b.file {
        flag("file", f);
    }
    for x in &cfg.label_lines {
        flag("label", x);
    }
    for x in &b.no_cache_filters {
        flag("no-cache-filter", x);
    }
    if let Some(x) = &b.network {
        flag("network", x);
    }
    for x in &b.outputs {
        flag("output", x);
    }
    if !cfg.platforms.is_empty() {
        flag(
            "platform",
            &cfg.platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    // Attestations are opt-in (no `unknown/unknown` entries unless asked for).
    match b.provenance.as_deref() {
        None => {}
        Some("false") => flag("provenance", "false"),
        Some("true") => flag("attest", "type=provenance,mode=min"),
        Some(v) => flag("attest", &format!("type=provenance,{v}")),
    }
    match b.sbom.as_deref() {
        None => {}
        Some("false") => flag("sbom", "false"),
        Some("true") => flag("attest", "type=sbom"),
        Some(v) => flag("attest", &format!("type=sbom,{v}")),
    }
    for (id, path) in secret_files {
        flag("secret", &format!("id={id},src={path}"));
    }
    for x in &b.secret_files {
        match x.split_once('=') {
            Some((id, p)) => flag("secret", &format!("id={id},src={p}")),
            None => flag("secret", x),
        }
    }
    for x in &b.secret_envs {
        match x.split_once('=') {
            Some((id, e)) => flag("secret", &format!("id={id},env={e}")),
            None => flag("secret", &format!("id={x},env={x}")),
        }
    }
    if let Some(x) = &b.shm_size {
        flag("shm-size", x);
    }
    for x in &b.ssh {
        flag("ssh", x);
    }
    for t in &cfg.tag_refs {
        flag("tag", &t.to_string());
    }
    if let Some(x) = &b.target {
        flag("target", x);
    }
    for x in &b.ulimit {
        flag("ulimit", x);
    }
    flag("iidfile", iidfile);
    flag("metadata-file", metadata_file);
    if b.load {
        a.push("--load".into());
    }
    if b.no_cache {
        a.push("--no-cache".into());
    }
    if b.pull {
        a.push("--pull".into());
    }
    if cfg.push {
        a.push("--push".into());
    }
    a.push(b.context.clone());
    a
}

/// The classic `docker build` argv (after `docker`), single platform.
pub(crate) fn classic_argv(cfg: &Config, iidfile: &str) -> Vec<String> {
    let b = &cfg.build;
    let mut a: Vec<String> = vec!["build".into()];
    let mut flag = |name: &str, v: &str| {
        a.push(format!("--{name}"));
        a.push(v.to_string());
    };
    for h in &b.add_hosts {
        flag("add-host", h);
    }
    for x in &b.build_args {
        flag("build-arg", x);
    }
    if let Some(x) = &b.cgroup_parent {
        flag("cgroup-parent", x);
    }
    if let Some(f) = &b.file {
        flag("file", f);
    }
    for x in &cfg.label_lines {
        flag("label", x);
    }
    if let Some(x) = &b.network {
        flag("network", x);
    }
    if let Some(p) = cfg.platforms.first() {
        flag("platform", &p.to_string());
    }
    if let Some(x) = &b.shm_size {
        flag("shm-size", x);
    }
    for t in &cfg.tag_refs {
        flag("tag", &t.to_string());
    }
    if let Some(x) = &b.target {
        flag("target", x);
    }
    for x in &b.ulimit {
        flag("ulimit", x);
    }
    flag("iidfile", iidfile);
    if b.no_cache {
        a.push("--no-cache".into());
    }
    if b.pull {
        a.push("--pull".into());
    }
    a.push(b.context.clone());
    a
}

pub(crate) async fn build(step: &mut Step, cfg: &Config, client: &Client) -> Result<(), Error> {
    let _ = (cfg, client);
    step.console
        .warning("build mode", "not available in this build yet");
    Err(Error::Environment("build mode is not available yet".into()))
}
