//! Revision history kept in the cluster: one Secret per overlay and namespace
//! (`gantry-history-<hash>`), holding a bounded list of revisions. Each revision records what was
//! applied and the live state of every object just before (so a later job on another runner can
//! restore it). A Secret, not a ConfigMap, because the saved state can include Secrets. It must
//! not apply workloads.

use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One saved object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    /// apiVersion.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace (None: cluster-scoped).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Live state before the deploy (cleaned), or None when the deploy created it.
    pub before: Option<Value>,
    /// What the deploy applied.
    pub applied: Value,
}

/// One revision.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Revision {
    /// Increasing number.
    pub number: u32,
    /// When.
    pub time: String,
    /// `deploying`, `deployed`, `failed`, `rolled-back`, `rollback`.
    pub status: String,
    /// Image references set.
    pub images: Vec<String>,
    /// Commit SHA.
    pub commit: Option<String>,
    /// Run URL.
    pub run_url: Option<String>,
    /// Objects.
    pub objects: Vec<Saved>,
}

/// The history object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// Oldest first.
    pub revisions: Vec<Revision>,
}

/// Where the history lives.
#[derive(Clone, Debug)]
pub struct Location {
    /// Namespace.
    pub namespace: String,
    /// Secret name.
    pub name: String,
    /// Overlay as given.
    pub overlay: String,
}

/// History location for an overlay (by path as given) in a namespace.
pub fn location(overlay: &str, namespace: &str) -> Location {
    let key = overlay.trim_start_matches("./").trim_end_matches('/');
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Location {
        namespace: namespace.to_string(),
        name: format!("gantry-history-{:012x}", h & 0xffff_ffff_ffff),
        overlay: key.to_string(),
    }
}

const KEY: &str = "history.json";

/// Reads the history (empty when absent).
pub async fn load(client: &kube::Client, loc: &Location) -> Result<History, kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &loc.namespace);
    let Some(s) = api.get_opt(&loc.name).await? else {
        return Ok(History::default());
    };
    Ok(s.data
        .and_then(|d| d.get(KEY).and_then(|b| serde_json::from_slice(&b.0).ok()))
        .unwrap_or_default())
}

/// Writes the history, keeping the newest `limit` revisions.
pub async fn save(
    client: &kube::Client,
    loc: &Location,
    h: &mut History,
    limit: usize,
    manager: &str,
) -> Result<(), kube::Error> {
    let excess = h.revisions.len().saturating_sub(limit);
    h.revisions.drain(..excess);
    use base64::Engine;
    let data =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(h).unwrap_or_default());
    let body = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": loc.name, "namespace": loc.namespace,
            "labels": {"app.kubernetes.io/managed-by": "gantry", "gantry.dev/history": "true"},
            "annotations": {"gantry.dev/overlay": loc.overlay}},
        "type": "gantry.dev/deploy-history",
        "data": {KEY: data},
    });
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &loc.namespace);
    api.patch(
        &loc.name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

impl History {
    /// The next revision number.
    pub fn next_number(&self) -> u32 {
        self.revisions.iter().map(|r| r.number).max().unwrap_or(0) + 1
    }
}
