//! Rendered manifests → resolved API objects, applied with server-side apply (force, our field
//! manager) in stages: Namespaces and CRDs first, then config (ServiceAccounts, ConfigMaps,
//! Secrets, RBAC), then everything else. Also reads live objects (the "before" snapshot) and
//! cleans them into re-appliable manifests. It must not decide whether to roll back.
//!
//! See: <https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts>

use std::collections::HashMap;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;

/// One object to apply.
#[derive(Clone, Debug)]
pub struct Obj {
    /// API resource (plural etc).
    pub ar: ApiResource,
    /// Namespaced kind.
    pub namespaced: bool,
    /// Namespace (namespaced kinds only).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The manifest sent.
    pub manifest: Value,
}

impl Obj {
    /// Kind.
    pub fn kind(&self) -> &str {
        &self.ar.kind
    }
    /// `Kind/namespace/name` (namespace `-` for cluster-scoped).
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.ar.kind,
            self.namespace.as_deref().unwrap_or("-"),
            self.name
        )
    }
    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.ar),
            None => Api::all_with(client.clone(), &self.ar),
        }
    }
    /// Apply stage: 0 namespaces/CRDs, 1 config, 2 the rest.
    pub fn stage(&self) -> u8 {
        match self.kind() {
            "Namespace" | "CustomResourceDefinition" => 0,
            "ServiceAccount"
            | "ConfigMap"
            | "Secret"
            | "Role"
            | "ClusterRole"
            | "RoleBinding"
            | "ClusterRoleBinding"
            | "PersistentVolumeClaim"
            | "PriorityClass"
            | "StorageClass" => 1,
            _ => 2,
        }
    }
}

/// Errors applying.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A manifest without kind/apiVersion/name.
    #[error("rendered document {index} is not a Kubernetes object: {reason}")]
    BadManifest {
        /// Position in the render.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The cluster does not serve the kind.
    #[error("the cluster does not serve {kind} in {api_version}: {reason}")]
    UnknownKind {
        /// apiVersion.
        api_version: String,
        /// Kind.
        kind: String,
        /// Discovery's answer.
        reason: String,
    },
    /// The server refused an apply.
    #[error("applying {id} failed: {reason}")]
    Rejected {
        /// Object.
        id: String,
        /// Server message.
        reason: String,
        /// HTTP code.
        code: u16,
    },
}

/// Resolves every rendered document against the cluster's discovery.
pub async fn resolve(
    client: &kube::Client,
    docs: Vec<Value>,
    default_ns: &str,
) -> Result<Vec<Obj>, ApplyError> {
    let mut cache: HashMap<(String, String), (ApiResource, bool)> = HashMap::new();
    let crds: Vec<Value> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (index, mut doc) in docs.into_iter().enumerate() {
        let bad = |reason: &str| ApplyError::BadManifest {
            index,
            reason: reason.to_string(),
        };
        let api_version = doc["apiVersion"]
            .as_str()
            .ok_or_else(|| bad("no apiVersion"))?
            .to_string();
        let kind = doc["kind"]
            .as_str()
            .ok_or_else(|| bad("no kind"))?
            .to_string();
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no metadata.name"))?
            .to_string();
        let key = (api_version.clone(), kind.clone());
        let (ar, namespaced) = match cache.get(&key) {
            Some(x) => x.clone(),
            None => {
                let (g, v) = match api_version.split_once('/') {
                    Some((g, v)) => (g.to_string(), v.to_string()),
                    None => (String::new(), api_version.clone()),
                };
                let gvk = GroupVersionKind::gvk(&g, &v, &kind);
                let x = match kube::discovery::pinned_kind(client, &gvk).await {
                    Ok((ar, caps)) => (ar, caps.scope == Scope::Namespaced),
                    // A custom resource whose CRD is in this same render: the CRD is applied
                    // first (stage 0), so take the resource's shape from the CRD itself.
                    Err(e) => crd_resource(&crds, &gvk).ok_or_else(|| ApplyError::UnknownKind {
                        api_version: api_version.clone(),
                        kind: kind.clone(),
                        reason: e.to_string(),
                    })?,
                };
                cache.insert(key, x.clone());
                x
            }
        };
        let namespace = if namespaced {
            let ns = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(default_ns)
                .to_string();
            doc["metadata"]["namespace"] = Value::String(ns.clone());
            Some(ns)
        } else {
            if let Some(m) = doc["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            None
        };
        out.push(Obj {
            ar,
            namespaced,
            namespace,
            name,
            manifest: doc,
        });
    }
    out.sort_by_key(Obj::stage);
    Ok(out)
}

/// The API resource a CRD in the render defines for `gvk`, if any.
pub fn crd_resource(crds: &[Value], gvk: &GroupVersionKind) -> Option<(ApiResource, bool)> {
    let crd = crds.iter().find(|c| {
        c.pointer("/spec/group").and_then(Value::as_str) == Some(gvk.group.as_str())
            && c.pointer("/spec/names/kind").and_then(Value::as_str) == Some(gvk.kind.as_str())
            && c.pointer("/spec/versions")
                .and_then(Value::as_array)
                .is_some_and(|vs| vs.iter().any(|v| v["name"] == gvk.version.as_str()))
    })?;
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str)?;
    let namespaced = crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster");
    Some((ApiResource::from_gvk_with_plural(gvk, plural), namespaced))
}

/// Waits until every CRD in `objs` reports `Established` (up to `timeout`).
pub async fn wait_crds_established(
    client: &kube::Client,
    objs: &[Obj],
    timeout: std::time::Duration,
) -> Result<(), ApplyError> {
    let deadline = std::time::Instant::now() + timeout;
    for o in objs
        .iter()
        .filter(|o| o.kind() == "CustomResourceDefinition")
    {
        loop {
            let live = get(client, o).await.map_err(|e| rejected(o, e))?;
            let established = live
                .as_ref()
                .and_then(|l| l.pointer("/status/conditions"))
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            if established {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(ApplyError::Rejected {
                    id: o.id(),
                    reason: "the CRD did not become Established".into(),
                    code: 0,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// The live object, if any.
pub async fn get(client: &kube::Client, o: &Obj) -> Result<Option<Value>, kube::Error> {
    Ok(o.api(client)
        .get_opt(&o.name)
        .await?
        .map(|d| serde_json::to_value(&d).unwrap_or(Value::Null)))
}

/// Reads all live objects (8 at a time).
pub async fn snapshot(
    client: &kube::Client,
    objs: &[Obj],
) -> Result<Vec<Option<Value>>, kube::Error> {
    futures::stream::iter(objs.iter().map(|o| get(client, o)))
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A live object turned back into a manifest: server-owned metadata and status removed.
pub fn clean_live(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = c["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "ownerReferences",
            "finalizers",
        ] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("deployment.kubernetes.io/revision");
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if c["kind"] == "Service"
        && let Some(spec) = c["spec"].as_object_mut()
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    c
}

/// Server-side applies one object with force.
pub async fn apply_one(
    client: &kube::Client,
    o: &Obj,
    manager: &str,
    dry_run: bool,
) -> Result<Value, ApplyError> {
    let mut pp = PatchParams::apply(manager).force();
    if dry_run {
        pp = pp.dry_run();
    }
    o.api(client)
        .patch(&o.name, &pp, &Patch::Apply(&o.manifest))
        .await
        .map(|d| serde_json::to_value(&d).unwrap_or(Value::Null))
        .map_err(|e| rejected(o, e))
}

fn rejected(o: &Obj, e: kube::Error) -> ApplyError {
    let (reason, code) = match &e {
        kube::Error::Api(s) => (s.message.clone(), s.code),
        other => (other.to_string(), 0),
    };
    ApplyError::Rejected {
        id: o.id(),
        reason,
        code,
    }
}

/// Applies all objects stage by stage (within a stage, 8 at a time, in order).
pub async fn apply_all(
    client: &kube::Client,
    objs: &[Obj],
    manager: &str,
    dry_run: bool,
) -> Vec<Result<Value, ApplyError>> {
    let mut results = Vec::with_capacity(objs.len());
    for stage in 0..=2u8 {
        let batch: Vec<&Obj> = objs.iter().filter(|o| o.stage() == stage).collect();
        let mut r: Vec<Result<Value, ApplyError>> = futures::stream::iter(
            batch
                .into_iter()
                .map(|o| apply_one(client, o, manager, dry_run)),
        )
        .buffered(8)
        .collect()
        .await;
        let failed = r.iter().any(Result::is_err);
        results.append(&mut r);
        if failed {
            break;
        }
        if stage == 0
            && !dry_run
            && let Err(e) =
                wait_crds_established(client, objs, std::time::Duration::from_secs(60)).await
        {
            results.push(Err(e));
            break;
        }
    }
    results
}

/// Deletes an object (background propagation). Missing objects are fine.
pub async fn delete(client: &kube::Client, o: &Obj, dry_run: bool) -> Result<(), ApplyError> {
    let mut dp = DeleteParams::background();
    if dry_run {
        dp = dp.dry_run();
    }
    match o.api(client).delete(&o.name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(rejected(o, e)),
    }
}

/// Builds an [`Obj`] from a stored manifest without discovery (kinds seen before).
pub fn from_saved(
    api_version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
    manifest: Value,
) -> Obj {
    let (g, v) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural);
    let name = manifest
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Obj {
        ar,
        namespaced: namespace.is_some(),
        namespace: namespace.map(str::to_string),
        name,
        manifest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_resources_resolve_from_a_crd_in_the_same_render() {
        let crd = json!({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
            "metadata":{"name":"widgets.acme.io"},"spec":{"group":"acme.io","scope":"Namespaced",
            "names":{"kind":"Widget","plural":"widgets"},"versions":[{"name":"v1","served":true,"storage":true}]}});
        let (ar, namespaced) = crd_resource(
            std::slice::from_ref(&crd),
            &GroupVersionKind::gvk("acme.io", "v1", "Widget"),
        )
        .expect("found");
        assert_eq!(ar.plural, "widgets");
        assert!(namespaced);
        assert!(crd_resource(&[crd], &GroupVersionKind::gvk("acme.io", "v2", "Widget")).is_none());
    }

    #[test]
    fn clean_live_drops_server_fields() {
        let live = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","uid":"u","resourceVersion":"5",
            "generation":3,"managedFields":[],"annotations":{"deployment.kubernetes.io/revision":"2"}},"spec":{"replicas":2},"status":{"replicas":2}});
        let c = clean_live(&live);
        assert_eq!(
            c,
            json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2}})
        );
    }
}
