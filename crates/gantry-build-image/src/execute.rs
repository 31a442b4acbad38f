//! Executing a plan with the registry client: promote, merge and assemble, and the shared
//! "push prepared content to every target" loop (blobs, then manifests by digest, then tags; a
//! target that fails keeps its old tags). Build mode lives in `build.rs`.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::{FutureExt as _, StreamExt, TryStreamExt};
use gantry_oci::copy::{self, fetch};
use gantry_oci::image::{self, AddedLayer};
use gantry_oci::layer::{self, LayerOptions, LayerSpec};
use gantry_oci::manifest::{self, ConfigView};
use gantry_oci::{BlobSource, Client, Descriptor, ImageRef, Platform, RawManifest};
use gantry_runtime::{InputError, Step};

use crate::Error;
use crate::config::{Config, Mode, Target};
use crate::plan::Plan;
use crate::report::{PlatformRow, Report, TargetReport};

const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

pub(crate) async fn execute(step: &mut Step, cfg: &Config, _plan: &Plan) -> Result<(), Error> {
    let mut creds = cfg.creds.clone();
    if cfg.docker_helpers.default.is_some() || !cfg.docker_helpers.per_host.is_empty() {
        let exec = gantry_exec::RealExec::new(step.console.clone(), step.cancel.clone());
        crate::credhelper::fill(
            &exec,
            &step.console,
            &cfg.docker_helpers,
            &cfg.cred_hosts,
            &registries(cfg),
            &mut creds,
        )
        .await;
    }
    let client = Client::new(cfg.client.clone(), creds)
        .map_err(Error::registry("setting up the registry client"))?;
    // The targets' connections, pings and push tokens are fetched while the source is read or
    // the layers are built: on a remote registry that is TLS, `GET /v2/` and a token round trip
    // off the critical path. Failures are left for the real requests to report.
    let pushes = match cfg.mode {
        Mode::Promote | Mode::Merge => true,
        Mode::Assemble => cfg.push,
        Mode::Build => false,
    };
    if pushes {
        for t in &cfg.targets {
            let (c, repo) = (client.clone(), t.repo.clone());
            tokio::spawn(async move {
                if let Err(e) = c.warm_up(&repo, true).await {
                    tracing::debug!("warming up {repo}: {e}");
                }
            });
        }
    }
    match cfg.mode {
        Mode::Promote => promote(step, cfg, &client).await,
        Mode::Merge => merge(step, cfg, &client).await,
        Mode::Assemble => assemble(step, cfg, &client).await,
        Mode::Build => crate::build::build(step, cfg, &client).await,
    }
}

/// Every registry this run talks to (targets, source, base image, merged digests).
fn registries(cfg: &Config) -> std::collections::BTreeSet<String> {
    cfg.targets
        .iter()
        .map(|t| &t.repo)
        .chain(&cfg.tag_refs)
        .chain(&cfg.digests)
        .chain(cfg.source.iter())
        .chain(cfg.assemble.base.iter())
        .map(|r| r.registry.clone())
        .collect()
}

/// Content ready to push: blobs, new manifests, and the root.
#[derive(Default)]
pub(crate) struct Prepared {
    pub blobs: Vec<(Descriptor, BlobSource)>,
    pub manifests: Vec<RawManifest>,
    pub root: Option<RawManifest>,
}

/// Platform rows for a manifest tree in `repo`.
pub(crate) async fn describe(
    client: &Client,
    repo: &ImageRef,
    root: &RawManifest,
) -> Result<Vec<PlatformRow>, gantry_oci::Error> {
    let mut rows = Vec::new();
    if root.is_index() {
        // Side by side, in the index's order.
        rows = futures::stream::iter(root.view()?.manifests)
            .map(|child| async move {
                let m = fetch(client, repo, &child.digest).await?;
                let size = m
                    .blobs()
                    .map(|b| b.iter().map(|d| d.size).sum())
                    .unwrap_or(0);
                Ok::<_, gantry_oci::Error>(PlatformRow {
                    platform: child.platform.map_or("-".into(), |p| p.to_string()),
                    digest: child.digest,
                    size,
                })
            })
            .buffered(client.config().concurrency.max(1))
            .try_collect()
            .await?;
    } else {
        let v = root.view()?;
        let platform = match &v.config {
            Some(c)
                if c.media_type == manifest::OCI_CONFIG
                    || c.media_type == manifest::DOCKER_CONFIG =>
            {
                let b = client.get_blob_bytes(repo, &c.digest, 8 << 20).await?;
                serde_json::from_slice::<ConfigView>(&b)
                    .map(|c| c.platform().to_string())
                    .unwrap_or_else(|_| "-".into())
            }
            _ => "-".into(),
        };
        rows.push(PlatformRow {
            platform,
            digest: root.digest.clone(),
            size: root.blobs()?.iter().map(|d| d.size).sum(),
        });
    }
    Ok(rows)
}

pub(crate) fn finish_targets(
    step: &mut Step,
    cfg: &Config,
    report: &mut Report,
    metadata: Option<serde_json::Value>,
) -> Result<(), Error> {
    let mut totals = gantry_oci::StatsSnapshot::default();
    for t in &report.targets {
        totals.uploaded_bytes += t.stats.uploaded_bytes;
        totals.uploaded_blobs += t.stats.uploaded_blobs;
        totals.mounted_bytes += t.stats.mounted_bytes;
        totals.mounted_blobs += t.stats.mounted_blobs;
        totals.skipped_bytes += t.stats.skipped_bytes;
        totals.skipped_blobs += t.stats.skipped_blobs;
        totals.retries += t.stats.retries;
    }
    report.totals = totals;
    report.publish(step, metadata);
    let failed: Vec<&TargetReport> = report.targets.iter().filter(|t| !t.ok).collect();
    for t in &failed {
        step.console.error(
            "push failed",
            &format!("{}: {}", t.repository, t.error.clone().unwrap_or_default()),
        );
    }
    if failed.is_empty() || (cfg.continue_on_registry_error && failed.len() < report.targets.len())
    {
        if !failed.is_empty() {
            step.console.warning(
                "some registries failed",
                &format!(
                    "{} of {} targets failed (continue-on-registry-error)",
                    failed.len(),
                    report.targets.len()
                ),
            );
        }
        return Ok(());
    }
    if failed.len() == 1 && report.targets.len() == 1 {
        // One target: surface its error as it is (auth, not found…), keeping the class.
        return Err(Error::Targets {
            failed: 1,
            total: 1,
            details: failed[0].error.clone().unwrap_or_default(),
        });
    }
    Err(Error::Targets {
        failed: failed.len(),
        total: report.targets.len(),
        details: failed
            .iter()
            .map(|t| format!("{}: {}", t.repository, t.error.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Runs `f` for every target at once (each with its own transfer counters and timing): pushing
/// to three registries takes as long as the slowest, not the sum. Each target's result is
/// reported on its own; tags move inside `f`, after that target's content is complete.
async fn each_target<F>(
    step: &mut Step,
    client: &Client,
    targets: &[Target],
    digest: &str,
    f: F,
) -> Result<Vec<TargetReport>, Error>
where
    F: AsyncFn(&Target, &Client) -> Result<Vec<String>, gantry_oci::Error>,
{
    if step.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    step.console.group(&format!(
        "push {}",
        targets
            .iter()
            .map(|t| t.repo.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let f = &f;
    let runs = futures::future::join_all(targets.iter().map(|t| async move {
        let c = client.with_own_stats();
        let start = Instant::now();
        let res = f(t, &c).await;
        (res, c.stats().snapshot(), start.elapsed().as_secs_f64())
    }));
    let cancel = step.cancel.clone();
    let results = tokio::select! {
        r = runs => r,
        () = cancel.token().cancelled() => {
            step.console.end_group();
            // Tags move last, so a cancelled push leaves every tag where it was.
            return Err(Error::Cancelled);
        }
    };
    let mut out = Vec::new();
    for (t, (res, stats, seconds)) in targets.iter().zip(results) {
        let mut r = TargetReport {
            repository: t.repo.to_string(),
            tags: t.tags.clone(),
            stats,
            seconds,
            ..Default::default()
        };
        match res {
            Ok(refs) => {
                tracing::info!(
                    "{}@{digest}: {} uploaded, {} mounted, {} already present ({:.2}s)",
                    t.repo,
                    crate::report::human(stats.uploaded_bytes),
                    crate::report::human(stats.mounted_bytes),
                    crate::report::human(stats.skipped_bytes),
                    seconds
                );
                r.ok = true;
                r.reference = Some(format!("{}@{digest}", t.repo));
                r.referrers = refs;
            }
            Err(e) => {
                tracing::error!("{}: {e}", t.repo);
                r.error = Some(e.to_string());
            }
        }
        out.push(r);
    }
    step.console.end_group();
    Ok(out)
}

// ------------------------------------------------------------------ promote

fn is_signature(d: &Descriptor) -> bool {
    let t = d
        .artifact_type
        .as_deref()
        .unwrap_or(&d.media_type)
        .to_ascii_lowercase();
    t.contains("signature") || t.contains("cosign") || t.contains("sigstore")
}

async fn promote(step: &mut Step, cfg: &Config, client: &Client) -> Result<(), Error> {
    let src = cfg.source.clone().ok_or(InputError::Required {
        name: "source".into(),
    })?;
    let reference = src.api_reference().to_string();
    let root = step
        .stage("resolve source", fetch(client, &src, &reference))
        .await
        .map_err(Error::registry(format!("reading {src}")))?;
    tracing::info!("{src} is {} ({})", root.digest, root.media_type);
    let digests =
        copy::tree_digests(&root).map_err(Error::registry("reading the source manifest"))?;
    if cfg.require_signature {
        let (refs, tags) = copy::find_referrers(client, &src, &digests[..1])
            .await
            .map_err(Error::registry(format!("looking for signatures of {src}")))?;
        let sig_tag = format!("{}.sig", copy::digest_tag(&root.digest));
        if !tags.contains(&sig_tag) && !refs.iter().any(|(_, d)| is_signature(d)) {
            return Err(Error::Unsigned {
                image: format!("{}@{}", src.repo_name(), root.digest),
                tag: sig_tag,
            });
        }
    }
    let mut report = Report {
        mode: "promote".into(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        size: root.bytes.len() as u64,
        ..Default::default()
    };
    let copy_referrers = cfg.copy_referrers;
    let targets = cfg.targets.clone();
    let digest = root.digest.clone();
    // What refers to the source (tag list + referrers API) and the config for the summary are
    // read while the first target's blobs are mounted, not before: they do not depend on it.
    // A failed lookup is retried in the copy itself, which then reports the real error.
    let found = async {
        if copy_referrers {
            copy::find_referrers(client, &src, &digests).await.ok()
        } else {
            None
        }
    }
    .shared();
    let copying = each_target(
        step,
        client,
        &targets,
        &digest,
        async |t: &Target, client: &Client| {
            let (tree, found) =
                futures::join!(copy::copy_tree(client, &src, &t.repo, &root), found.clone());
            tree?;
            let mut refs = Vec::new();
            if copy_referrers {
                let r = match found {
                    Some((r, tags)) => {
                        copy::copy_found_referrers(client, &src, &t.repo, r, tags).await?
                    }
                    None => copy::copy_referrers(client, &src, &t.repo, &digests).await?,
                };
                refs.extend(r.referrers);
                refs.extend(r.tags);
            }
            for tag in &t.tags {
                client.put_manifest(&t.repo, tag, &root).await?;
            }
            Ok(refs)
        },
    );
    let (platforms, copied) = futures::join!(describe(client, &src, &root), copying);
    // The summary's platform rows are not worth failing a finished promotion for.
    report.platforms = platforms.unwrap_or_else(|e| {
        tracing::warn!("could not describe the platforms of {src}: {e}");
        Vec::new()
    });
    if report.platforms.len() == 1 && !root.is_index() {
        report.config_digest = root.view().ok().and_then(|v| v.config).map(|c| c.digest);
    }
    report.targets = copied?;
    finish_targets(step, cfg, &mut report, None)
}

// ------------------------------------------------------------------ merge

async fn merge(step: &mut Step, cfg: &Config, client: &Client) -> Result<(), Error> {
    let mut entries: Vec<(ImageRef, Descriptor)> = Vec::new();
    for r in &cfg.digests {
        let d = r.digest.clone().unwrap_or_default();
        let m = fetch(client, r, &d)
            .await
            .map_err(Error::registry(format!("reading {r}")))?;
        if m.is_index() {
            for child in m
                .view()
                .map_err(Error::registry(format!("reading {r}")))?
                .manifests
            {
                entries.push((r.clone(), child));
            }
        } else {
            let v = m.view().map_err(Error::registry(format!("reading {r}")))?;
            let mut desc = m.descriptor();
            if let Some(c) = v.config {
                let b = client
                    .get_blob_bytes(r, &c.digest, 8 << 20)
                    .await
                    .map_err(Error::registry(format!("reading the config of {r}")))?;
                desc.platform = serde_json::from_slice::<ConfigView>(&b)
                    .ok()
                    .map(|c| c.platform());
            }
            entries.push((r.clone(), desc));
        }
    }
    // De-duplicate; two different images for one platform is a mistake in the matrix.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut unique: Vec<(ImageRef, Descriptor)> = Vec::new();
    for (r, d) in entries {
        if unique.iter().any(|(_, u)| u.digest == d.digest) {
            continue;
        }
        if let Some(p) = &d.platform
            && p.os != "unknown"
        {
            let key = p.to_string();
            if let Some(other) = seen.get(&key) {
                return Err(InputError::invalid(
                    "digests",
                    &r.to_string(),
                    format!("two images for {key}: {other} and {}", d.digest),
                )
                .into());
            }
            seen.insert(key, d.digest.clone());
        }
        unique.push((r, d));
    }
    let descs: Vec<Descriptor> = unique.iter().map(|(_, d)| d.clone()).collect();
    let index = image::image_index(&descs, &cfg.annotations.index)
        .map_err(Error::registry("creating the index"))?;
    let mut report = Report {
        mode: "merge".into(),
        digest: index.digest.clone(),
        media_type: index.media_type.clone(),
        size: index.bytes.len() as u64,
        ..Default::default()
    };
    for (r, d) in &unique {
        let m = fetch(client, r, &d.digest)
            .await
            .map_err(Error::registry(format!("reading {r}")))?;
        report.platforms.push(PlatformRow {
            platform: d.platform.as_ref().map_or("-".into(), ToString::to_string),
            digest: d.digest.clone(),
            size: m
                .blobs()
                .map(|b| b.iter().map(|x| x.size).sum())
                .unwrap_or(0),
        });
    }
    let targets = cfg.targets.clone();
    let digest = index.digest.clone();
    report.targets = each_target(
        step,
        client,
        &targets,
        &digest,
        async |t: &Target, client: &Client| {
            // The platforms side by side; a blob two of them share is made present once (the client
            // serialises identical blob requests).
            futures::stream::iter(&unique)
                .map(|(r, d)| async move {
                    let m = fetch(client, r, &d.digest).await?;
                    copy::copy_tree(client, r, &t.repo, &m).await
                })
                .buffer_unordered(client.config().concurrency.max(1))
                .try_collect::<Vec<_>>()
                .await?;
            client.put_manifest(&t.repo, &index.digest, &index).await?;
            for tag in &t.tags {
                client.put_manifest(&t.repo, tag, &index).await?;
            }
            Ok(Vec::new())
        },
    )
    .await?;
    finish_targets(step, cfg, &mut report, None)
}

// ------------------------------------------------------------------ assemble

struct BaseImage {
    manifest: RawManifest,
    config: bytes::Bytes,
    layers: Vec<Descriptor>,
}

async fn base_for(
    client: &Client,
    base: &ImageRef,
    root: &RawManifest,
    p: &Platform,
) -> Result<BaseImage, Error> {
    let ctx = format!("reading base image {base}");
    let manifest = if root.is_index() {
        let v = root.view().map_err(Error::registry(ctx.clone()))?;
        let available: Vec<String> = v
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
            .collect();
        let Some(d) = v
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|dp| p.matches(dp)))
        else {
            return Err(Error::Registry {
                context: ctx,
                source: Box::new(gantry_oci::Error::UnknownPlatform {
                    platform: p.to_string(),
                    reference: base.to_string(),
                    available: available.join(", "),
                }),
            });
        };
        fetch(client, base, &d.digest)
            .await
            .map_err(Error::registry(ctx.clone()))?
    } else {
        root.clone()
    };
    let v = manifest.view().map_err(Error::registry(ctx.clone()))?;
    let Some(cfg) = v.config else {
        return Err(Error::Registry {
            context: ctx,
            source: Box::new(gantry_oci::Error::Invalid {
                what: "base manifest".into(),
                reason: "no config".into(),
            }),
        });
    };
    let config = client
        .get_blob_bytes(base, &cfg.digest, 8 << 20)
        .await
        .map_err(Error::registry(ctx.clone()))?;
    if !root.is_index() {
        let have = serde_json::from_slice::<ConfigView>(&config)
            .map(|c| c.platform())
            .ok();
        if let Some(h) = have
            && !p.matches(&h)
        {
            return Err(Error::Registry {
                context: ctx,
                source: Box::new(gantry_oci::Error::UnknownPlatform {
                    platform: p.to_string(),
                    reference: base.to_string(),
                    available: h.to_string(),
                }),
            });
        }
    }
    Ok(BaseImage {
        manifest,
        config,
        layers: v.layers,
    })
}

async fn assemble(step: &mut Step, cfg: &Config, client: &Client) -> Result<(), Error> {
    let a = &cfg.assemble;
    let platforms = if cfg.platforms.is_empty() {
        vec![
            Platform::parse("linux/amd64")
                .map_err(|e| InputError::invalid("platforms", "linux/amd64", e))?,
        ]
    } else {
        cfg.platforms.clone()
    };
    if cfg.push && cfg.targets.is_empty() {
        return Err(InputError::Required {
            name: "tags".into(),
        }
        .into());
    }
    let base_root = match &a.base {
        Some(b) => Some(
            step.stage("resolve base", fetch(client, b, b.api_reference()))
                .await
                .map_err(Error::registry(format!("reading base image {b}")))?,
        ),
        None => None,
    };
    let work = tempfile::Builder::new()
        .prefix("gantry-assemble-")
        .tempdir_in(&cfg.temp_dir)
        .or_else(|_| tempfile::tempdir())
        .map_err(|e| Error::Io {
            context: "creating a temp directory".into(),
            source: e,
        })?;
    let mut prep = Prepared::default();
    let mut children: Vec<Descriptor> = Vec::new();
    let mut rows = Vec::new();
    let mut config_digest = None;
    let start = Instant::now();
    for (pi, p) in platforms.iter().enumerate() {
        let base = match (&a.base, &base_root) {
            (Some(b), Some(root)) => Some((b, base_for(client, b, root, p).await?)),
            _ => None,
        };
        let mut layers: Vec<Descriptor> = Vec::new();
        let mut added = Vec::new();
        if let Some((b, img)) = &base {
            for l in &img.layers {
                prep.blobs
                    .push((l.clone(), BlobSource::Remote((*b).clone())));
                layers.push(l.clone());
            }
        }
        for (li, line) in a.layers.iter().enumerate() {
            let spec = LayerSpec {
                src: line.src_for(p),
                dest: line.dest.clone(),
            };
            let out = work.path().join(format!("layer-{pi}-{li}.tar.gz"));
            let opts = LayerOptions {
                uid: a.owner.0,
                gid: a.owner.1,
                mtime: u64::try_from(a.epoch).unwrap_or(0),
                ..Default::default()
            };
            let built =
                tokio::task::spawn_blocking(move || layer::build_layer(&[spec], &opts, &out))
                    .await
                    .map_err(|e| Error::Io {
                        context: "building a layer".into(),
                        source: std::io::Error::other(e),
                    })?
                    .map_err(|e| match e {
                        gantry_oci::Error::Io { path, source } => Error::Input(
                            InputError::invalid("layers", &line.line, format!("{path}: {source}")),
                        ),
                        other => Error::Input(InputError::invalid(
                            "layers",
                            &line.line,
                            other.to_string(),
                        )),
                    })?;
            tracing::info!(
                "{p}: layer {} from {} ({} entries, {} bytes)",
                built.digest,
                line.line,
                built.entries,
                built.size
            );
            let d = Descriptor::new(manifest::OCI_LAYER_GZIP, &built.digest, built.size);
            prep.blobs
                .push((d.clone(), BlobSource::File(built.path.clone())));
            added.push(AddedLayer {
                diff_id: built.diff_id,
                created_by: format!("gantry build-image: layer {}", line.line),
            });
            layers.push(d);
        }
        let config = image::build_config(
            base.as_ref().map(|(_, i)| i.config.as_ref()),
            p,
            &a.edit,
            &added,
            &image::rfc3339(a.epoch),
        )
        .map_err(Error::registry("building the image config"))?;
        let cd = Descriptor::new(
            manifest::OCI_CONFIG,
            &gantry_oci::digest::sha256(&config),
            config.len() as u64,
        );
        prep.blobs
            .push((cd.clone(), BlobSource::Bytes(config.into())));
        let mut ann = cfg.annotations.manifest.clone();
        if let Some((b, img)) = &base {
            ann.insert(BASE_NAME.into(), b.to_string());
            ann.insert(BASE_DIGEST.into(), img.manifest.digest.clone());
        }
        let m = image::image_manifest(&cd, &layers, &ann)
            .map_err(Error::registry("building the manifest"))?;
        rows.push(PlatformRow {
            platform: p.to_string(),
            digest: m.digest.clone(),
            size: cd.size + layers.iter().map(|l| l.size).sum::<u64>(),
        });
        let mut desc = m.descriptor();
        desc.platform = Some(p.clone());
        children.push(desc);
        config_digest = Some(cd.digest);
        prep.manifests.push(m);
    }
    let root = if prep.manifests.len() == 1 {
        prep.manifests.remove(0)
    } else {
        let mut ann = cfg.annotations.index.clone();
        if let (Some(b), Some(r)) = (&a.base, &base_root) {
            ann.insert(BASE_NAME.into(), b.to_string());
            ann.insert(BASE_DIGEST.into(), r.digest.clone());
        }
        config_digest = None;
        image::image_index(&children, &ann).map_err(Error::registry("building the index"))?
    };
    step.timings.record("assemble", start.elapsed());
    tracing::info!("assembled {} ({})", root.digest, root.media_type);
    let mut report = Report {
        mode: "assemble".into(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        size: root.bytes.len() as u64,
        config_digest,
        platforms: rows,
        ..Default::default()
    };
    if !cfg.push {
        step.console.notice(
            "not pushed",
            &format!(
                "assembled {} locally; set `push: true` to push it",
                root.digest
            ),
        );
        return finish_targets(step, cfg, &mut report, None);
    }
    prep.root = Some(root);
    let targets = cfg.targets.clone();
    report.targets = push_prepared(step, client, &targets, &prep).await?;
    finish_targets(step, cfg, &mut report, None)
}

/// Pushes prepared content to each target: blobs in parallel, then manifests by digest, then
/// the root by digest, then the tags.
pub(crate) async fn push_prepared(
    step: &mut Step,
    client: &Client,
    targets: &[Target],
    prep: &Prepared,
) -> Result<Vec<TargetReport>, Error> {
    let Some(root) = &prep.root else {
        return Ok(Vec::new());
    };
    // Platforms that share a layer list it twice; the client uploads it once.
    let digest = root.digest.clone();
    each_target(
        step,
        client,
        targets,
        &digest,
        async |t: &Target, client: &Client| {
            futures::stream::iter(&prep.blobs)
                .map(|(d, s)| client.put_blob(&t.repo, d, s))
                .buffer_unordered(client.config().concurrency.max(1))
                .try_collect::<Vec<_>>()
                .await?;
            // The platforms' manifests side by side (their blobs are all there now), then the index.
            futures::stream::iter(&prep.manifests)
                .map(|m| client.put_manifest(&t.repo, &m.digest, m))
                .buffer_unordered(client.config().concurrency.max(1))
                .try_collect::<Vec<_>>()
                .await?;
            client.put_manifest(&t.repo, &root.digest, root).await?;
            for tag in &t.tags {
                client.put_manifest(&t.repo, tag, root).await?;
            }
            Ok(Vec::new())
        },
    )
    .await
}
