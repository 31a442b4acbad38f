//! Copying images between repositories and registries with their digests preserved: every blob
//! made present in the target (HEAD, then mount on the same registry, else streamed through),
//! children of an index before the index, each manifest PUT as its exact bytes **by digest**;
//! then signatures and attestations (OCI 1.1 referrers and `sha256-<hex>[.sig|.att|.sbom]` tags).
//! Moving tags is the caller's last step, so no tag ever points at a partial image.
//!
//! See: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests-with-subject>

use futures::{StreamExt, TryStreamExt};

use crate::Error;
use crate::client::{BlobSource, Client};
use crate::manifest::{Descriptor, OCI_INDEX, RawManifest};
use crate::reference::ImageRef;

/// Fetches a manifest that must exist.
pub async fn fetch(client: &Client, r: &ImageRef, reference: &str) -> Result<RawManifest, Error> {
    client
        .get_manifest(r, reference)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "image",
            reference: if reference.starts_with("sha256:") {
                format!("{}@{reference}", r.repo_name())
            } else {
                format!("{}:{reference}", r.repo_name())
            },
        })
}

/// Copies the manifest tree rooted at `root` (read from `src`) into `dst`'s repository, by digest
/// only. The children of an index are fetched side by side, every distinct blob of every
/// platform is made present once (in parallel, the client's `concurrency`), then the image
/// manifests are PUT, then the index: on a real registry each step costs round trips, and a
/// 2-platform buildx index has four children. A blob shared by two platforms is sent or mounted
/// once ([`Client::put_blob`] serialises identical requests: concurrent mounts of the same blob
/// into one repository race in distribution and the manifest PUT then fails with "blob unknown").
pub async fn copy_tree(
    client: &Client,
    src: &ImageRef,
    dst: &ImageRef,
    root: &RawManifest,
) -> Result<(), Error> {
    let width = client.config().concurrency.max(1);
    let children: Vec<RawManifest> = if root.is_index() {
        let view = root.view()?;
        futures::stream::iter(&view.manifests)
            .map(|child| fetch(client, src, &child.digest))
            .buffered(width)
            .try_collect()
            .await?
    } else {
        vec![root.clone()]
    };
    let (nested, images): (Vec<RawManifest>, Vec<RawManifest>) =
        children.into_iter().partition(RawManifest::is_index);
    for index in &nested {
        // Indexes inside an index are rare (nested multi-platform sets): walk them one by one.
        Box::pin(copy_tree(client, src, dst, index)).await?;
    }
    // An image manifest already in the target means every blob is there too: skip them all
    // (one request instead of a mount or a stream per blob, and an exact report).
    let present: Vec<bool> = futures::stream::iter(&images)
        .map(|m| async move {
            if src.same_repository(dst) {
                return Ok(false);
            }
            Ok::<_, Error>(
                client
                    .head_manifest(dst, &m.digest)
                    .await?
                    .is_some_and(|d| d.digest == m.digest),
            )
        })
        .buffered(width)
        .try_collect()
        .await?;
    let stats = client.stats();
    let mut blobs = Vec::new();
    let mut to_put = Vec::new();
    for (m, present) in images.iter().zip(present) {
        if present {
            // The registry only accepted this manifest with all its blobs present.
            for b in m.blobs()? {
                stats
                    .skipped_blobs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                stats
                    .skipped_bytes
                    .fetch_add(b.size, std::sync::atomic::Ordering::Relaxed);
            }
            continue;
        }
        // A blob two platforms share is listed twice; the client makes it present once.
        blobs.extend(m.blobs()?);
        to_put.push(m);
    }
    let source = BlobSource::Remote(src.clone());
    futures::stream::iter(blobs)
        .map(|d| {
            let source = source.clone();
            async move { client.put_blob(dst, &d, &source).await }
        })
        .buffer_unordered(width)
        .try_collect::<Vec<_>>()
        .await?;
    futures::stream::iter(to_put)
        .map(|m| client.put_manifest(dst, &m.digest, m))
        .buffer_unordered(width)
        .try_collect::<Vec<_>>()
        .await?;
    if root.is_index() {
        client.put_manifest(dst, &root.digest, root).await?;
    }
    Ok(())
}

/// Every manifest digest in a tree (the root first).
pub fn tree_digests(root: &RawManifest) -> Result<Vec<String>, Error> {
    let mut out = vec![root.digest.clone()];
    if root.is_index() {
        for c in root.view()?.manifests {
            out.push(c.digest);
        }
    }
    Ok(out)
}

/// What [`copy_referrers`] found and copied.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReferrerCopy {
    /// Referrer manifests copied by digest (found through the referrers API).
    pub referrers: Vec<String>,
    /// `sha256-<hex>*` tags copied (signatures, attestations, SBOMs, the fallback index).
    pub tags: Vec<String>,
}

/// The tag prefix of the referrers tag schema for `digest` (`sha256-<hex>`).
pub fn digest_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Finds what refers to any of `digests` in `src` (referrers API and `sha256-<hex>*` tags),
/// without copying.
pub async fn find_referrers(
    client: &Client,
    src: &ImageRef,
    digests: &[String],
) -> Result<(Vec<(String, Descriptor)>, Vec<String>), Error> {
    let tags = client.list_tags(src).await?;
    let mut by_tag: Vec<String> = tags
        .into_iter()
        .filter(|t| digests.iter().any(|d| t.starts_with(&digest_tag(d))))
        .collect();
    by_tag.sort();
    let mut refs = Vec::new();
    for d in digests {
        if let Some(list) = client.referrers(src, d).await? {
            refs.extend(list.into_iter().map(|desc| (d.clone(), desc)));
        }
    }
    Ok((refs, by_tag))
}

/// Copies signatures, attestations and SBOMs of `digests` from `src` to `dst`: referrers by
/// digest (keeping the fallback tag index up to date when `dst` lacks the referrers API), then
/// each `sha256-<hex>*` tag. Run it after the image itself was copied.
pub async fn copy_referrers(
    client: &Client,
    src: &ImageRef,
    dst: &ImageRef,
    digests: &[String],
) -> Result<ReferrerCopy, Error> {
    let (refs, tags) = find_referrers(client, src, digests).await?;
    copy_found_referrers(client, src, dst, refs, tags).await
}

/// Copies what [`find_referrers`] found (so the lookup can run while the image is copied).
pub async fn copy_found_referrers(
    client: &Client,
    src: &ImageRef,
    dst: &ImageRef,
    refs: Vec<(String, Descriptor)>,
    tags: Vec<String>,
) -> Result<ReferrerCopy, Error> {
    let mut out = ReferrerCopy::default();
    for (subject, desc) in refs {
        let m = fetch(client, src, &desc.digest).await?;
        Box::pin(copy_tree(client, src, dst, &m)).await?;
        let fallback = digest_tag(&subject);
        if client.referrers(dst, &subject).await?.is_none() && !tags.contains(&fallback) {
            add_to_fallback_index(client, dst, &subject, &desc).await?;
        }
        out.referrers.push(desc.digest);
    }
    for tag in tags {
        let m = fetch(client, src, &tag).await?;
        Box::pin(copy_tree(client, src, dst, &m)).await?;
        client.put_manifest(dst, &tag, &m).await?;
        out.tags.push(tag);
    }
    Ok(out)
}

/// Adds `desc` to the `sha256-<hex>` index of `subject` in `dst` (the referrers tag schema for
/// registries without the API): read, de-duplicate, append, push.
pub async fn add_to_fallback_index(
    client: &Client,
    dst: &ImageRef,
    subject: &str,
    desc: &Descriptor,
) -> Result<(), Error> {
    let tag = digest_tag(subject);
    let mut manifests: Vec<Descriptor> = match client.get_manifest(dst, &tag).await? {
        Some(m) => m.view()?.manifests,
        None => Vec::new(),
    };
    if manifests.iter().any(|d| d.digest == desc.digest) {
        return Ok(());
    }
    manifests.push(desc.clone());
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::Invalid {
        what: "referrers index".into(),
        reason: e.to_string(),
    })?;
    let m = RawManifest::new(bytes, OCI_INDEX);
    client.put_manifest(dst, &tag, &m).await?;
    Ok(())
}

/// Pushes an artifact manifest (a signature, an SBOM) that refers to `subject` through its
/// `subject` field, maintaining the fallback tag when the registry lacks the referrers API.
pub async fn push_referrer(
    client: &Client,
    dst: &ImageRef,
    manifest: &RawManifest,
) -> Result<(), Error> {
    let view = manifest.view()?;
    let supported = client.put_manifest(dst, &manifest.digest, manifest).await?;
    if let Some(subject) = view.subject
        && !supported
    {
        let mut desc = manifest.descriptor();
        desc.artifact_type = view
            .artifact_type
            .or_else(|| view.config.map(|c| c.media_type));
        desc.annotations = view.annotations;
        add_to_fallback_index(client, dst, &subject.digest, &desc).await?;
    }
    Ok(())
}
