//! The run's report: the `report` JSON output, the other outputs (`digest`, `imageid`,
//! `metadata`, `image-refs`) and the step summary table. Outputs are set with `set_always` so a
//! partial failure still tells the user what was pushed where.

use gantry_oci::StatsSnapshot;
use gantry_runtime::Step;

/// One platform of the result.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PlatformRow {
    /// `linux/amd64`, or `-` when unknown.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Config + layers, compressed.
    pub size: u64,
}

/// One target's outcome.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TargetReport {
    /// `registry/repo`.
    pub repository: String,
    /// Tags moved.
    pub tags: Vec<String>,
    /// `repo@digest` when it worked.
    pub reference: Option<String>,
    /// Whether it worked.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Transfer counters for this target.
    #[serde(flatten)]
    pub stats: StatsSnapshot,
    /// Referrers and `sha256-*` tags copied (promote).
    pub referrers: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// The whole report.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Mode.
    pub mode: String,
    /// Root digest.
    pub digest: String,
    /// Root media type.
    pub media_type: String,
    /// Root manifest size.
    pub size: u64,
    /// Config digest (single-platform images).
    pub config_digest: Option<String>,
    /// Platforms.
    pub platforms: Vec<PlatformRow>,
    /// Targets.
    pub targets: Vec<TargetReport>,
    /// Totals over all targets.
    pub totals: StatsSnapshot,
}

pub(crate) fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn short(d: &str) -> String {
    d.strip_prefix("sha256:").map_or(d.to_string(), |h| {
        format!("sha256:{}", &h[..h.len().min(12)])
    })
}

impl Report {
    /// Sets the outputs and writes the summary.
    pub fn publish(&self, step: &mut Step, metadata_override: Option<serde_json::Value>) {
        if !self.digest.is_empty() {
            step.outputs.set_always("digest", &self.digest);
            let imageid = if self.platforms.len() <= 1 {
                self.config_digest
                    .clone()
                    .unwrap_or_else(|| self.digest.clone())
            } else {
                self.digest.clone()
            };
            step.outputs.set_always("imageid", imageid);
        }
        let refs: Vec<String> = self
            .targets
            .iter()
            .filter_map(|t| t.reference.clone())
            .collect();
        step.outputs.set_always("image-refs", refs.join("\n"));
        let metadata = metadata_override.unwrap_or_else(|| {
            let names: Vec<String> = self
                .targets
                .iter()
                .filter(|t| t.ok)
                .flat_map(|t| {
                    t.tags
                        .iter()
                        .map(move |tag| format!("{}:{tag}", t.repository))
                })
                .collect();
            let mut m = serde_json::json!({
                "containerimage.digest": self.digest,
                "containerimage.descriptor": {
                    "mediaType": self.media_type,
                    "digest": self.digest,
                    "size": self.size,
                },
            });
            if let Some(c) = &self.config_digest {
                m["containerimage.config.digest"] = serde_json::json!(c);
            }
            if !names.is_empty() {
                m["image.name"] = serde_json::json!(names.join(","));
            }
            m
        });
        step.outputs.set_always("metadata", metadata.to_string());
        step.outputs
            .set_always("report", serde_json::to_string(self).unwrap_or_default());

        step.summary
            .heading(3, &format!("build-image ({})", self.mode));
        if !self.digest.is_empty() {
            step.summary.raw(&format!(
                "Digest: `{}` ({})\n\n",
                self.digest, self.media_type
            ));
        }
        if !self.platforms.is_empty() {
            let rows: Vec<Vec<String>> = self
                .platforms
                .iter()
                .map(|p| {
                    vec![
                        p.platform.clone(),
                        format!("`{}`", short(&p.digest)),
                        human(p.size),
                    ]
                })
                .collect();
            step.summary.table(&["Platform", "Digest", "Size"], &rows);
        }
        if !self.targets.is_empty() {
            let rows: Vec<Vec<String>> = self
                .targets
                .iter()
                .map(|t| {
                    vec![
                        format!(
                            "{}{}",
                            t.repository,
                            if t.tags.is_empty() {
                                String::new()
                            } else {
                                format!(":{}", t.tags.join(", :"))
                            }
                        ),
                        if t.ok {
                            "✅ pushed".into()
                        } else {
                            format!("❌ {}", t.error.clone().unwrap_or_default())
                        },
                        format!(
                            "{} ({} blobs)",
                            human(t.stats.uploaded_bytes),
                            t.stats.uploaded_blobs
                        ),
                        format!(
                            "{} ({} blobs)",
                            human(t.stats.mounted_bytes),
                            t.stats.mounted_blobs
                        ),
                        format!(
                            "{} ({} blobs)",
                            human(t.stats.skipped_bytes),
                            t.stats.skipped_blobs
                        ),
                        format!("{:.2}s", t.seconds),
                    ]
                })
                .collect();
            step.summary.table(
                &[
                    "Target",
                    "Result",
                    "Uploaded",
                    "Mounted",
                    "Skipped (present)",
                    "Time",
                ],
                &rows,
            );
        }
    }
}
