//! Manifest, index and descriptor shapes, media types, and platforms.
//!
//! Manifests travel as **raw bytes** ([`RawManifest`]): the digest is the sha256 of exactly the
//! bytes the registry stored, so we parse them to find children and blobs but never re-serialise
//! something we copy. Only manifests we create are serialised here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::Error;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI empty descriptor (artifacts).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Every manifest type we accept when reading.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The size limit for a manifest we read or write (the spec asks registries to take 4 MB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Whether a media type is an index / manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Artifact type (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor without platform or annotations.
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest: digest.into(),
            size,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// A platform: `os/architecture[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// Architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// OS (`linux`).
    pub os: String,
    /// Variant (`v7`, `v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version (Windows).
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "android",
    "ios",
    "plan9",
    "wasip1",
    "js",
    "dragonfly",
];
const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64",
    "mipsle", "mips", "loong64", "wasm",
];

impl Platform {
    /// Parses `linux/amd64`, `linux/arm/v7`, `linux/arm64/v8`. Unknown OS or architecture names
    /// are rejected (a typo would otherwise produce an image no machine can run).
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "platform `{s}` is not `os/arch` or `os/arch/variant` (e.g. linux/amd64)"
            ));
        }
        let os = parts[0].to_ascii_lowercase();
        let mut arch = parts[1].to_ascii_lowercase();
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(format!("unknown OS `{os}` in platform `{s}`"));
        }
        arch = match arch.as_str() {
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            "i386" => "386".into(),
            _ => arch,
        };
        if !KNOWN_ARCH.contains(&arch.as_str()) {
            return Err(format!(
                "unknown architecture `{}` in platform `{s}` (known: {})",
                parts[1],
                KNOWN_ARCH.join(", ")
            ));
        }
        Ok(Self {
            architecture: arch,
            os,
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
            os_version: None,
        })
    }

    /// Whether `self` (asked for) matches `other` (in an image). A missing variant matches any.
    pub fn matches(&self, other: &Self) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant || {
                // arm64 images often omit v8.
                self.architecture == "arm64"
                    && matches!(
                        (self.variant.as_deref(), other.variant.as_deref()),
                        (Some("v8"), None)
                    )
            })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest as stored: exact bytes, media type and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    /// The exact bytes.
    pub bytes: bytes::Bytes,
    /// `Content-Type` / `mediaType`.
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: String,
}

/// The parts of any manifest or index we need to walk it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    /// Declared media type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Config blob (images and artifacts).
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Layers (images and artifacts).
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Blobs (old OCI artifact manifests).
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    /// Children (indexes).
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Subject (referrers).
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Artifact type.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl RawManifest {
    /// Wraps bytes we created.
    pub fn new(bytes: impl Into<bytes::Bytes>, media_type: &str) -> Self {
        let bytes = bytes.into();
        let digest = crate::digest::sha256(&bytes);
        Self {
            bytes,
            media_type: media_type.to_string(),
            digest,
        }
    }

    /// Parses the walkable parts.
    pub fn view(&self) -> Result<ManifestView, Error> {
        serde_json::from_slice(&self.bytes).map_err(|e| Error::Invalid {
            what: format!("manifest {}", self.digest),
            reason: e.to_string(),
        })
    }

    /// Whether it is an index.
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }

    /// A descriptor pointing at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, &self.digest, self.bytes.len() as u64)
    }

    /// The blobs an image or artifact manifest references (config first).
    pub fn blobs(&self) -> Result<Vec<Descriptor>, Error> {
        let v = self.view()?;
        let mut out: Vec<Descriptor> = v.config.into_iter().collect();
        out.extend(v.layers);
        out.extend(v.blobs);
        Ok(out)
    }
}

/// The media type a manifest claims in its body (or guessed from its shape).
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    let v: ManifestView = serde_json::from_slice(bytes).ok()?;
    if let Some(m) = v.media_type {
        return Some(m);
    }
    if !v.manifests.is_empty() {
        Some(OCI_INDEX.into())
    } else if v.config.is_some() {
        Some(OCI_MANIFEST.into())
    } else {
        None
    }
}

/// Image config (the parts we read; assembly edits the JSON directly to keep unknown keys).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConfigView {
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// OS.
    #[serde(default)]
    pub os: String,
    /// Variant.
    #[serde(default)]
    pub variant: Option<String>,
}

impl ConfigView {
    /// The platform the config declares.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            os_version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/amd64").expect("ok").to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").expect("ok").to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").expect("ok").architecture,
            "amd64"
        );
        assert!(Platform::parse("linux/amd46").is_err());
        assert!(Platform::parse("lunix/amd64").is_err());
        assert!(Platform::parse("amd64").is_err());
        let want = Platform::parse("linux/arm64/v8").expect("ok");
        let have = Platform::parse("linux/arm64").expect("ok");
        assert!(want.matches(&have));
        assert!(have.matches(&want));
    }

    #[test]
    fn raw_manifest_walks_blobs() {
        let m = RawManifest::new(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:00","size":1},"layers":[{"mediaType":"b","digest":"sha256:01","size":2}]}"#.as_bytes().to_vec(),
            OCI_MANIFEST,
        );
        let b = m.blobs().expect("blobs");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].size, 2);
        assert!(!m.is_index());
    }
}
