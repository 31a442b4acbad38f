//! The plan: plain, serialisable data describing what a run will do (`--dry-run` prints it, tests
//! assert it). Built from a [`Config`] without touching the network.

use gantry_oci::client::is_loopback;

use crate::config::{Annotations, Config, Mode, Target};

/// How a registry will be reached.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RegistryPlan {
    /// Host.
    pub host: String,
    /// Whether we have a credential for it (never the value).
    pub credentials: bool,
    /// `https`, or `https, then http` for loopback/insecure registries.
    pub transport: String,
}

/// Promote details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PromotePlan {
    /// The image.
    pub source: String,
    /// Copy referrers and `sha256-*` tags.
    pub copy_referrers: bool,
    /// Refuse unsigned images.
    pub require_signature: bool,
    /// Order of operations per target.
    pub steps: Vec<&'static str>,
}

/// Merge details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MergePlan {
    /// Per-platform manifests or indexes.
    pub sources: Vec<String>,
    /// Index annotations.
    pub annotations: Annotations,
}

/// Assemble details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AssemblePlan {
    /// Settings.
    #[serde(flatten)]
    pub config: crate::config::AssembleConfig,
    /// Platforms.
    pub platforms: Vec<String>,
    /// Annotations.
    pub annotations: Annotations,
}

/// Build details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BuildPlan {
    /// The `docker buildx build` argv (secrets appear only as ids and temp file paths).
    pub buildx_argv: Vec<String>,
    /// The classic-builder fallback when `docker buildx` is missing.
    pub classic_argv: Vec<String>,
}

/// What a run will do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Mode.
    pub mode: Mode,
    /// Push.
    pub push: bool,
    /// Targets and tags (tags move last).
    pub targets: Vec<Target>,
    /// Registries involved.
    pub registries: Vec<RegistryPlan>,
    /// Promote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote: Option<PromotePlan>,
    /// Merge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergePlan>,
    /// Assemble.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assemble: Option<AssemblePlan>,
    /// Build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildPlan>,
}

impl Plan {
    /// Builds the plan.
    pub fn from_config(cfg: &Config) -> Self {
        let mut hosts: Vec<String> = cfg
            .targets
            .iter()
            .map(|t| t.repo.registry.clone())
            .collect();
        if let Some(s) = &cfg.source {
            hosts.push(s.registry.clone());
        }
        if let Some(b) = &cfg.assemble.base
            && cfg.mode == Mode::Assemble
        {
            hosts.push(b.registry.clone());
        }
        hosts.extend(cfg.digests.iter().map(|d| d.registry.clone()));
        let mut seen = Vec::new();
        let registries = hosts
            .into_iter()
            .filter(|h| {
                let new = !seen.contains(h);
                seen.push(h.clone());
                new
            })
            .map(|host| RegistryPlan {
                credentials: cfg.creds.get(&host).is_some(),
                transport: if is_loopback(&host) {
                    "http, then https (loopback)".into()
                } else if cfg
                    .client
                    .insecure
                    .iter()
                    .any(|i| i.eq_ignore_ascii_case(&host))
                {
                    "https, then http (insecure-registries)".into()
                } else {
                    "https".into()
                },
                host,
            })
            .collect();
        let mut plan = Self {
            mode: cfg.mode,
            push: cfg.push,
            targets: cfg.targets.clone(),
            registries,
            promote: None,
            merge: None,
            assemble: None,
            build: None,
        };
        match cfg.mode {
            Mode::Promote => {
                plan.promote = Some(PromotePlan {
                    source: cfg
                        .source
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    copy_referrers: cfg.copy_referrers,
                    require_signature: cfg.require_signature,
                    steps: vec![
                        "resolve the source manifest (exact bytes)",
                        "per target: HEAD each blob; mount when on the same registry, else stream",
                        "per target: PUT child manifests, then the root, by digest",
                        "per target: copy referrers and sha256-* tags",
                        "per target: move the tags",
                    ],
                });
            }
            Mode::Merge => {
                plan.merge = Some(MergePlan {
                    sources: cfg.digests.iter().map(ToString::to_string).collect(),
                    annotations: cfg.annotations.clone(),
                });
            }
            Mode::Assemble => {
                let platforms = if cfg.platforms.is_empty() {
                    vec!["linux/amd64".to_string()]
                } else {
                    cfg.platforms.iter().map(ToString::to_string).collect()
                };
                plan.assemble = Some(AssemblePlan {
                    config: cfg.assemble.clone(),
                    platforms,
                    annotations: cfg.annotations.clone(),
                });
            }
            Mode::Build => {
                let secret_paths: Vec<(String, String)> = cfg
                    .build
                    .secret_ids
                    .iter()
                    .map(|id| (id.clone(), format!("<temp>/secret-{id}")))
                    .collect();
                plan.build = Some(BuildPlan {
                    buildx_argv: crate::build::buildx_argv(
                        cfg,
                        "<metadata-file>",
                        "<iidfile>",
                        &secret_paths,
                    ),
                    classic_argv: crate::build::classic_argv(cfg, "<iidfile>"),
                });
            }
        }
        plan
    }
}
