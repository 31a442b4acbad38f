//! Creating image configs, manifests and indexes (assemble and merge modes): the base config is
//! edited as JSON so unknown keys survive, keys keep their order, `created` and history come from
//! the given epoch, and the serialisation is stable — the same inputs give the same digests.
//!
//! It must not re-serialise manifests it did not create (copies keep their exact bytes).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::Error;
use crate::manifest::{Descriptor, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Platform, RawManifest};

/// Settings applied on top of the base config (`None` keeps the base's value).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConfigEdit {
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Env` entries to set (replacing the same names).
    pub env: Vec<(String, String)>,
    /// `User`.
    pub user: Option<String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `ExposedPorts` to add (`8080/tcp`).
    pub exposed_ports: Vec<String>,
    /// `Labels` to set.
    pub labels: BTreeMap<String, String>,
}

/// A layer added on top of the base, for the config's `rootfs` and `history`.
#[derive(Clone, Debug)]
pub struct AddedLayer {
    /// Uncompressed digest.
    pub diff_id: String,
    /// History `created_by`.
    pub created_by: String,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid {
        what: "base image config".into(),
        reason: reason.into(),
    }
}

/// Builds the new config JSON bytes. `base` is the base image's config (`None` for `scratch`).
/// `created` is an RFC 3339 time (from `SOURCE_DATE_EPOCH` for reproducibility).
pub fn build_config(
    base: Option<&[u8]>,
    platform: &Platform,
    edit: &ConfigEdit,
    added: &[AddedLayer],
    created: &str,
) -> Result<Vec<u8>, Error> {
    let mut root: Map<String, Value> = match base {
        Some(b) => match serde_json::from_slice(b).map_err(|e| invalid(e.to_string()))? {
            Value::Object(m) => m,
            _ => return Err(invalid("not a JSON object")),
        },
        None => {
            let mut m = Map::new();
            m.insert("architecture".into(), json!(platform.architecture));
            m.insert("os".into(), json!(platform.os));
            if let Some(v) = &platform.variant {
                m.insert("variant".into(), json!(v));
            }
            m
        }
    };
    root.insert("created".into(), json!(created));
    let cfg = root
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(cfg) = cfg else {
        return Err(invalid("`config` is not an object"));
    };
    if let Some(e) = &edit.entrypoint {
        cfg.insert("Entrypoint".into(), json!(e));
        // Like Docker: a new entrypoint resets an inherited CMD unless one is given.
        if edit.cmd.is_none() {
            cfg.remove("Cmd");
        }
    }
    if let Some(c) = &edit.cmd {
        cfg.insert("Cmd".into(), json!(c));
    }
    if !edit.env.is_empty() {
        let mut env: Vec<String> = cfg
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in &edit.env {
            let line = format!("{k}={v}");
            match env
                .iter_mut()
                .find(|e| e.split('=').next() == Some(k.as_str()))
            {
                Some(slot) => *slot = line,
                None => env.push(line),
            }
        }
        cfg.insert("Env".into(), json!(env));
    }
    if let Some(u) = &edit.user {
        cfg.insert("User".into(), json!(u));
    }
    if let Some(w) = &edit.workdir {
        cfg.insert("WorkingDir".into(), json!(w));
    }
    if !edit.exposed_ports.is_empty() {
        let ports = cfg
            .entry("ExposedPorts")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(p) = ports {
            for port in &edit.exposed_ports {
                p.insert(port.clone(), json!({}));
            }
        }
    }
    if !edit.labels.is_empty() {
        let labels = cfg
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if labels.is_null() {
            *labels = Value::Object(Map::new());
        }
        if let Value::Object(l) = labels {
            for (k, v) in &edit.labels {
                l.insert(k.clone(), json!(v));
            }
        }
    }
    let rootfs = root
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let diff_ids = rootfs
        .as_object_mut()
        .ok_or_else(|| invalid("`rootfs` is not an object"))?
        .entry("diff_ids")
        .or_insert_with(|| json!([]));
    let Value::Array(ids) = diff_ids else {
        return Err(invalid("`rootfs.diff_ids` is not a list"));
    };
    for l in added {
        ids.push(json!(l.diff_id));
    }
    let history = root.entry("history").or_insert_with(|| json!([]));
    if let Value::Array(h) = history {
        for l in added {
            h.push(json!({"created": created, "created_by": l.created_by, "comment": "gantry build-image"}));
        }
    }
    serde_json::to_vec(&Value::Object(root)).map_err(|e| invalid(e.to_string()))
}

/// An OCI image manifest over `config` and `layers`.
pub fn image_manifest(
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<RawManifest, Error> {
    let mut cfg = config.clone();
    cfg.media_type = OCI_CONFIG.into();
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": cfg,
        "layers": layers,
    });
    if !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    let bytes = serde_json::to_vec(&m).map_err(|e| invalid(e.to_string()))?;
    Ok(RawManifest::new(bytes, OCI_MANIFEST))
}

/// An OCI image index over `manifests` (each with its platform).
pub fn image_index(
    manifests: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<RawManifest, Error> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    if !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    let bytes = serde_json::to_vec(&m).map_err(|e| invalid(e.to_string()))?;
    Ok(RawManifest::new(bytes, OCI_INDEX))
}

/// RFC 3339 for seconds since the epoch (`1970-01-01T00:00:00Z` for 0).
pub fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_edit_keeps_unknown_keys_and_order() {
        let base = br#"{"architecture":"amd64","os":"linux","x-custom":1,"config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"base"}]}"#;
        let p = Platform::parse("linux/amd64").expect("p");
        let edit = ConfigEdit {
            entrypoint: Some(vec!["/app/server".into()]),
            env: vec![("A".into(), "2".into()), ("B".into(), "3".into())],
            user: Some("65532:65532".into()),
            labels: [(
                "org.opencontainers.image.version".to_string(),
                "1.0".to_string(),
            )]
            .into(),
            exposed_ports: vec!["8080/tcp".into()],
            ..Default::default()
        };
        let added = [AddedLayer {
            diff_id: "sha256:bb".into(),
            created_by: "COPY dist /app".into(),
        }];
        let a = build_config(Some(base), &p, &edit, &added, &rfc3339(0)).expect("cfg");
        let b = build_config(Some(base), &p, &edit, &added, &rfc3339(0)).expect("cfg");
        assert_eq!(a, b);
        let v: Value = serde_json::from_slice(&a).expect("json");
        assert_eq!(v["x-custom"], 1);
        assert_eq!(v["config"]["Env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert!(
            v["config"].get("Cmd").is_none(),
            "entrypoint resets inherited CMD"
        );
        assert_eq!(v["rootfs"]["diff_ids"], json!(["sha256:aa", "sha256:bb"]));
        assert_eq!(v["created"], "1970-01-01T00:00:00Z");
        let keys: Vec<&String> = v.as_object().expect("obj").keys().collect();
        assert_eq!(keys[..3], ["architecture", "os", "x-custom"]);
    }

    #[test]
    fn scratch_config_has_platform() {
        let p = Platform::parse("linux/arm64/v8").expect("p");
        let c = build_config(
            None,
            &p,
            &ConfigEdit::default(),
            &[],
            &rfc3339(1_700_000_000),
        )
        .expect("c");
        let v: Value = serde_json::from_slice(&c).expect("json");
        assert_eq!(
            (
                v["os"].as_str(),
                v["architecture"].as_str(),
                v["variant"].as_str()
            ),
            (Some("linux"), Some("arm64"), Some("v8"))
        );
        assert_eq!(v["created"], "2023-11-14T22:13:20Z");
    }
}
