//! Build mode: `docker buildx build` driven like docker/build-push-action (its input names, the
//! digest from `--metadata-file`), or, when buildx is missing, the classic builder for one platform
//! followed by `docker save` and a push with our own client (HEAD/mount/retries).
//!
//! Secrets never go into argv: `secrets` values are written to private temp files that buildx
//! reads with `--secret id=…,src=…`.
//!
//! See: <https://github.com/docker/build-push-action/blob/master/src/context.ts>

use std::path::Path;

use gantry_exec::{Cmd, Exec as _, RealExec};
use gantry_oci::{BlobSource, Client, Descriptor};
use gantry_runtime::Step;

use crate::Error;
use crate::config::Config;
use crate::execute::Prepared;
use crate::report::{PlatformRow, Report, TargetReport};

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
    if let Some(x) = &b.call {
        flag("call", x);
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

fn docker_err(context: &str) -> impl FnOnce(gantry_exec::ExecError) -> Error {
    let context = context.to_string();
    move |e| Error::Docker {
        context,
        source: Box::new(e),
    }
}

/// build-push-action reports the last stderr line of a failed build.
fn last_line(e: &gantry_exec::ExecError) -> Option<String> {
    match e {
        gantry_exec::ExecError::Failed { stderr, .. } => stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string()),
        _ => None,
    }
}

pub(crate) async fn build(step: &mut Step, cfg: &Config, client: &Client) -> Result<(), Error> {
    let exec = RealExec::new(step.console.clone(), step.cancel.clone());
    let buildx = matches!(exec.run_unchecked(&Cmd::new("docker").args(["buildx", "version"])).await, Ok(o) if o.status == 0);
    let work = tempfile::Builder::new()
        .prefix("gantry-build-")
        .tempdir_in(&cfg.temp_dir)
        .or_else(|_| tempfile::tempdir())
        .map_err(|e| Error::Io {
            context: "creating a temp directory".into(),
            source: e,
        })?;
    if buildx {
        return build_buildx(step, cfg, &exec, client, work.path()).await;
    }
    if cfg.platforms.len() > 1 {
        return Err(Error::Environment(format!(
            "a multi-platform build ({}) needs `docker buildx`, which is not available here. Builders created by docker/setup-buildx-action on the host are not visible inside a container action: build each platform in a matrix job and use `mode: merge`, or use `mode: assemble`",
            cfg.platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    if cfg.build.evaluate_only() {
        return Err(Error::Environment(format!(
            "`call: {}` needs `docker buildx`, which is not available here (the classic builder has no build checks)",
            cfg.build.call.as_deref().unwrap_or_default()
        )));
    }
    build_classic(step, cfg, &exec, client, work.path()).await
}

async fn build_buildx(
    step: &mut Step,
    cfg: &Config,
    exec: &RealExec,
    client: &Client,
    work: &Path,
) -> Result<(), Error> {
    let mut secret_files = Vec::new();
    for (id, value) in &cfg.build.secrets {
        let p = work.join(format!("secret-{id}"));
        write_private(&p, value.expose().as_bytes())?;
        secret_files.push((id.clone(), p.display().to_string()));
    }
    let meta = work.join("metadata.json");
    let iid = work.join("iidfile");
    let argv = buildx_argv(
        cfg,
        &meta.display().to_string(),
        &iid.display().to_string(),
        &secret_files,
    );
    step.console.group("docker buildx build");
    let res = exec
        .run(
            &Cmd::new("docker")
                .args(&argv)
                .env("BUILDX_METADATA_WARNINGS", "true")
                .stream(true),
        )
        .await;
    step.console.end_group();
    if let Err(e) = res {
        let msg = last_line(&e).unwrap_or_else(|| e.to_string());
        return Err(match e {
            gantry_exec::ExecError::Failed { .. } => {
                Error::Environment(format!("docker buildx build failed: {msg}"))
            }
            other => Error::Docker {
                context: "docker buildx build".into(),
                source: Box::new(other),
            },
        });
    }
    if cfg.build.evaluate_only() {
        // `--call check` and friends print their result and produce no image: no digest, no
        // registry read-back (buildx's exit status already said whether the checks passed).
        step.console.info(&format!(
            "`call: {}` evaluated the build; no image was produced",
            cfg.build.call.as_deref().unwrap_or_default()
        ));
        return Ok(());
    }
    let metadata: serde_json::Value = std::fs::read(&meta)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let imageid = std::fs::read_to_string(&iid)
        .unwrap_or_default()
        .trim()
        .to_string();
    let digest = metadata["containerimage.digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut report = Report {
        mode: "build".into(),
        digest: digest.clone(),
        config_digest: Some(imageid.clone()).filter(|s| !s.is_empty()),
        ..Default::default()
    };
    report.media_type = metadata["containerimage.descriptor"]["mediaType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    report.size = metadata["containerimage.descriptor"]["size"]
        .as_u64()
        .unwrap_or(0);
    report.platforms = cfg
        .platforms
        .iter()
        .map(|p| PlatformRow {
            platform: p.to_string(),
            ..Default::default()
        })
        .collect();
    if report.platforms.len() > 1 {
        report.config_digest = None;
    }
    // buildx's metadata has no per-platform digests or sizes: read what was pushed (the
    // registry now holds it) for the summary table. Not worth failing a finished build for.
    if cfg.push
        && !digest.is_empty()
        && let Some(t) = cfg.targets.first()
    {
        let rows = async {
            let root = gantry_oci::copy::fetch(client, &t.repo, &digest).await?;
            crate::execute::describe(client, &t.repo, &root).await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), rows).await {
            Ok(Ok(rows)) if !rows.is_empty() => report.platforms = rows,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("could not read the pushed image for the summary: {e}"),
            Err(_) => {
                tracing::warn!("reading the pushed image for the summary took over 10 s; skipped")
            }
        }
    }
    if cfg.push && !digest.is_empty() {
        report.targets = cfg
            .targets
            .iter()
            .map(|t| TargetReport {
                repository: t.repo.to_string(),
                tags: t.tags.clone(),
                reference: Some(format!("{}@{digest}", t.repo)),
                ok: true,
                ..Default::default()
            })
            .collect();
    }
    if digest.is_empty() {
        step.console.notice("no digest", "buildx exported nothing (no `push`, `load` or `outputs`), so there is no digest; `imageid` is set");
    }
    report.publish(step, Some(metadata));
    if !imageid.is_empty() {
        step.outputs.set_always("imageid", imageid);
    }
    if digest.is_empty() {
        step.outputs.set_always("digest", "");
    }
    Ok(())
}

fn write_private(p: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| Error::Io {
            context: format!("writing {}", p.display()),
            source: e,
        })?;
    f.write_all(bytes).map_err(|e| Error::Io {
        context: format!("writing {}", p.display()),
        source: e,
    })
}

async fn build_classic(
    step: &mut Step,
    cfg: &Config,
    exec: &RealExec,
    client: &Client,
    work: &Path,
) -> Result<(), Error> {
    let b = &cfg.build;
    if !b.secrets.is_empty()
        || !b.secret_files.is_empty()
        || !b.secret_envs.is_empty()
        || !b.ssh.is_empty()
    {
        return Err(Error::Environment("build secrets and ssh need `docker buildx` (BuildKit); the classic builder cannot mount them".into()));
    }
    for (name, given) in [
        ("cache-from", !b.cache_from.is_empty()),
        ("cache-to", !b.cache_to.is_empty()),
        ("outputs", !b.outputs.is_empty()),
        ("attests", !b.attests.is_empty()),
        ("build-contexts", !b.build_contexts.is_empty()),
    ] {
        if given {
            step.console.warning(
                "classic builder",
                &format!("`{name}` needs docker buildx and is ignored by the classic builder"),
            );
        }
    }
    step.console.notice("classic builder", "docker buildx is not available; building with the classic builder and pushing with gantry's registry client");
    let iid = work.join("iidfile");
    let argv = classic_argv(cfg, &iid.display().to_string());
    step.console.group("docker build");
    let res = exec
        .run(
            &Cmd::new("docker")
                .args(&argv)
                .env("DOCKER_BUILDKIT", "0")
                .stream(true),
        )
        .await;
    step.console.end_group();
    if let Err(e) = res {
        let msg = last_line(&e).unwrap_or_else(|| e.to_string());
        return Err(match e {
            gantry_exec::ExecError::Failed { .. } => {
                Error::Environment(format!("docker build failed: {msg}"))
            }
            other => Error::Docker {
                context: "docker build".into(),
                source: Box::new(other),
            },
        });
    }
    let imageid = std::fs::read_to_string(&iid)
        .map_err(|e| Error::Io {
            context: "reading the image id".into(),
            source: e,
        })?
        .trim()
        .to_string();
    tracing::info!("built {imageid}");
    let mut report = Report {
        mode: "build".into(),
        config_digest: Some(imageid.clone()),
        ..Default::default()
    };
    if !cfg.push {
        report.publish(
            step,
            Some(serde_json::json!({"containerimage.config.digest": imageid})),
        );
        step.outputs.set_always("imageid", imageid);
        return Ok(());
    }
    if cfg.targets.is_empty() {
        return Err(gantry_runtime::InputError::Required {
            name: "tags".into(),
        }
        .into());
    }
    // docker save → layers and config → our push (HEAD, mount, retries).
    let tar_path = work.join("image.tar");
    step.stage(
        "docker save",
        exec.run(
            &Cmd::new("docker")
                .arg("save")
                .arg("--output")
                .arg(&tar_path)
                .arg(&imageid),
        ),
    )
    .await
    .map_err(docker_err("docker save"))?;
    let dir = work.join("image");
    let prep = tokio::task::spawn_blocking({
        let tar_path = tar_path.clone();
        let dir = dir.clone();
        move || prepare_saved(&tar_path, &dir)
    })
    .await
    .map_err(|e| Error::Io {
        context: "reading docker save output".into(),
        source: std::io::Error::other(e),
    })??;
    let (prep, platform, cfg_digest) = prep;
    let root = prep
        .root
        .clone()
        .ok_or_else(|| Error::Environment("docker save produced no image".into()))?;
    report.digest = root.digest.clone();
    report.media_type = root.media_type.clone();
    report.size = root.bytes.len() as u64;
    report.config_digest = Some(cfg_digest);
    report.platforms = vec![PlatformRow {
        platform,
        digest: root.digest.clone(),
        size: prep.blobs.iter().map(|b| b.0.size).sum(),
    }];
    let targets = cfg.targets.clone();
    report.targets = crate::execute::push_prepared(step, client, &targets, &prep).await?;
    crate::execute::finish_targets(step, cfg, &mut report, None)
}

/// Reads a `docker save` archive: config, layers (gzipped here), one OCI manifest.
fn prepare_saved(tar_path: &Path, dir: &Path) -> Result<(Prepared, String, String), Error> {
    let io = |c: &str| {
        let c = c.to_string();
        move |e: std::io::Error| Error::Io {
            context: c,
            source: e,
        }
    };
    let f = std::fs::File::open(tar_path).map_err(io("opening docker save output"))?;
    tar::Archive::new(f)
        .unpack(dir)
        .map_err(io("unpacking docker save output"))?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        layers: Vec<String>,
    }
    let m: Vec<Entry> = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).map_err(io("reading manifest.json"))?,
    )
    .map_err(|e| {
        Error::Environment(format!(
            "docker save wrote an unexpected manifest.json: {e}"
        ))
    })?;
    let e = m
        .into_iter()
        .next()
        .ok_or_else(|| Error::Environment("docker save wrote no image".into()))?;
    let config = std::fs::read(dir.join(&e.config)).map_err(io("reading the image config"))?;
    let platform = serde_json::from_slice::<gantry_oci::manifest::ConfigView>(&config)
        .map(|c| c.platform().to_string())
        .unwrap_or_else(|_| "-".into());
    let mut prep = Prepared::default();
    let mut layers = Vec::new();
    for (i, l) in e.layers.iter().enumerate() {
        let out = dir.join(format!("layer-{i}.tar.gz"));
        let built = gantry_oci::layer::compress_tar(&dir.join(l), 6, &out)
            .map_err(|e| Error::Environment(e.to_string()))?;
        let d = Descriptor::new(
            gantry_oci::manifest::OCI_LAYER_GZIP,
            &built.digest,
            built.size,
        );
        prep.blobs.push((d.clone(), BlobSource::File(out)));
        layers.push(d);
    }
    let cfg_digest = gantry_oci::digest::sha256(&config);
    let cd = Descriptor::new(
        gantry_oci::manifest::OCI_CONFIG,
        &cfg_digest,
        config.len() as u64,
    );
    prep.blobs
        .push((cd.clone(), BlobSource::Bytes(config.into())));
    let root = gantry_oci::image::image_manifest(&cd, &layers, &Default::default())
        .map_err(|e| Error::Environment(e.to_string()))?;
    prep.root = Some(root);
    Ok((prep, platform, cfg_digest))
}
