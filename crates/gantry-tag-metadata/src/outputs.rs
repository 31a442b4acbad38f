//! The action's results as upstream formats them: the output strings, the `json` output, the
//! bake definition files (written under the workspace so host steps can read the returned
//! path), the `DOCKER_METADATA_OUTPUT_*` exports, our `build-args`, the log groups and the step
//! summary.
//!
//! It must not compute tags or labels: it formats what `meta.rs` and `labels.rs` produced.

use gantry_github::RepoInfo;
use gantry_runtime::Step;
use serde_json::{Map, Value, json};

use crate::config::{Config, CreatedFrom};
use crate::labels::{self, Defaults};
use crate::meta::{self, Computed, MetaContext, MetaError};
use crate::{Error, moment};

/// Everything the run produces, before it is written anywhere.
#[derive(Clone, Debug)]
pub struct Result {
    /// Tags and version.
    pub computed: Computed,
    /// Labels (`key`, `value`), sorted.
    pub labels: Vec<(String, String)>,
    /// Annotations before levels, sorted.
    pub annotations_raw: Vec<(String, String)>,
    /// Annotations with levels.
    pub annotations: Vec<String>,
    /// The `created` value.
    pub created: String,
    /// Full SHA.
    pub sha: String,
    /// Short SHA (for `build-args`), empty when there is no SHA.
    pub short_sha: String,
    /// Annotation levels.
    pub levels: Vec<String>,
}

impl Result {
    /// Computes tags, labels and annotations.
    pub fn compute(
        cfg: &Config,
        ctx: &MetaContext,
        repo: &RepoInfo,
        repo_tags: Option<&[String]>,
    ) -> std::result::Result<Self, MetaError> {
        let computed = meta::compute(ctx, &cfg.images, &cfg.tags, &cfg.flavor, repo_tags)?;
        let created = match cfg.created_from {
            CreatedFrom::Now => moment::iso_string(ctx.now),
            CreatedFrom::Commit => moment::iso_string(ctx.commit_date),
        };
        let version = computed.version.main.clone().unwrap_or_default();
        let defaults = Defaults {
            repo,
            version: &version,
            created: &created,
            revision: &ctx.sha,
        };
        let labels = labels::compute(ctx, &defaults, "labels", &cfg.labels)?;
        let annotations_raw = labels::compute(ctx, &defaults, "annotations", &cfg.annotations)?;
        let annotations = labels::with_levels(&annotations_raw, &cfg.annotation_levels);
        // Upstream fails on a bad DOCKER_METADATA_SHORT_SHA_LENGTH only when a short SHA is
        // rendered; `build-args` is ours, so it falls back to 7 characters instead.
        let short_sha = ctx
            .short_sha()
            .unwrap_or_else(|_| ctx.sha.chars().take(7).collect());
        Ok(Self {
            computed,
            labels,
            annotations_raw,
            annotations,
            created,
            sha: ctx.sha.clone(),
            short_sha,
            levels: cfg.annotation_levels.clone(),
        })
    }

    fn label_lines(&self) -> Vec<String> {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// The `json` output value.
    pub fn json(&self) -> Value {
        json!({
            "tags": self.computed.tags,
            "tag-names": self.computed.tag_names,
            "labels": Value::Object(labels::json_map(&self.labels)),
            "annotations": self.annotations,
        })
    }

    fn bake_args(&self) -> Value {
        let mut args = Map::new();
        args.insert(
            "DOCKER_META_IMAGES".into(),
            Value::String(self.computed.images.join(",")),
        );
        if let Some(v) = &self.computed.version.main {
            args.insert("DOCKER_META_VERSION".into(), Value::String(v.clone()));
        }
        Value::Object(args)
    }

    fn bake(target: &str, body: Value) -> String {
        let mut t = Map::new();
        t.insert(target.to_string(), body);
        serde_json::to_string_pretty(&json!({ "target": Value::Object(t) })).unwrap_or_default()
    }

    /// The bake files: (output name, file name, content).
    pub fn bake_files(&self, target: &str) -> Vec<(&'static str, &'static str, String)> {
        let labels = Value::Object(labels::json_map(&self.labels));
        let levels_annotations: Vec<String> = self
            .levels
            .iter()
            .flat_map(|l| {
                self.annotations_raw
                    .iter()
                    .map(move |(k, v)| format!("{l}:{k}={v}"))
            })
            .collect();
        vec![
            (
                "bake-file-tags",
                "docker-metadata-action-bake-tags.json",
                Self::bake(
                    target,
                    json!({"tags": self.computed.tags, "args": self.bake_args()}),
                ),
            ),
            (
                "bake-file-labels",
                "docker-metadata-action-bake-labels.json",
                Self::bake(target, json!({"labels": labels})),
            ),
            (
                "bake-file-annotations",
                "docker-metadata-action-bake-annotations.json",
                Self::bake(target, json!({"annotations": levels_annotations})),
            ),
            (
                "bake-file",
                "docker-metadata-action-bake.json",
                Self::bake(
                    target,
                    json!({"tags": self.computed.tags, "labels": labels, "args": self.bake_args()}),
                ),
            ),
        ]
    }

    /// The `build-args` output.
    pub fn build_args(&self, cfg: &Config) -> String {
        let values = [
            (
                "version",
                self.computed.version.main.clone().unwrap_or_default(),
            ),
            ("commit", self.sha.clone()),
            ("short-sha", self.short_sha.clone()),
            ("build-date", self.created.clone()),
        ];
        values
            .iter()
            .filter_map(|(arg, v)| cfg.build_arg_name(arg).map(|n| format!("{n}={v}")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The dry-run plan.
    pub fn plan(&self, cfg: &Config) -> Value {
        json!({
            "version": self.computed.version.main,
            "tags": self.computed.tags,
            "tag-names": self.computed.tag_names,
            "labels": self.label_lines(),
            "annotations": self.annotations,
            "build-args": self.build_args(cfg).lines().collect::<Vec<_>>(),
            "files": self.bake_files(&cfg.bake_target).iter().map(|(_, f, _)| *f).collect::<Vec<_>>(),
        })
    }
}

fn env_name(output: &str) -> String {
    let mapped: String = output
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("DOCKER_METADATA_OUTPUT_{}", mapped.to_uppercase())
}

/// Writes the bake files, sets outputs and env exports, logs and fills the summary.
pub fn publish(step: &mut Step, cfg: &Config, r: &Result) -> std::result::Result<(), Error> {
    // Files first: if one cannot be written, no output is set.
    let dir = step.output_dir();
    let mut file_outputs = Vec::new();
    // Keep `.gantry/` out of `git status` and commits of the user's checkout.
    let ignore = dir.parent().map(|p| p.join(".gitignore"));
    if let Some(ignore) = ignore.filter(|p| !p.exists()) {
        step.write_file(&ignore, b"*\n")
            .map_err(|source| Error::Write {
                path: ignore.display().to_string(),
                source,
            })?;
    }
    for (name, file, content) in r.bake_files(&cfg.bake_target) {
        let path = dir.join(file);
        let shown = step
            .write_file(&path, content.as_bytes())
            .map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
        file_outputs.push((name, shown, content));
    }

    let mut outs: Vec<(&str, String)> = Vec::new();
    let version = r.computed.version.main.clone().unwrap_or_default();
    if version.is_empty() {
        step.console.warning(
            "tag-metadata",
            "No Docker image version has been generated. Check tags input.",
        );
    } else {
        step.console.group("Docker image version");
        step.console.info(&version);
        step.console.end_group();
    }
    outs.push(("version", version.clone()));
    if r.computed.tags.is_empty() {
        step.console.warning(
            "tag-metadata",
            "No Docker tag has been generated. Check tags input.",
        );
    } else {
        step.console.group("Docker tags");
        for t in &r.computed.tags {
            step.console.info(t);
        }
        step.console.end_group();
    }
    outs.push(("tags", r.computed.tags.join(&cfg.sep_tags)));
    outs.push(("tag-names", r.computed.tag_names.join(&cfg.sep_tags)));
    let label_lines = r.label_lines();
    step.console.group("Docker labels");
    for l in &label_lines {
        step.console.info(l);
    }
    step.console.end_group();
    outs.push(("labels", label_lines.join(&cfg.sep_labels)));
    step.console.group("Annotations");
    for a in &r.annotations {
        step.console.info(a);
    }
    step.console.end_group();
    outs.push(("annotations", r.annotations.join(&cfg.sep_annotations)));
    let json = r.json();
    step.console.group("JSON output");
    step.console
        .info(&serde_json::to_string_pretty(&json).unwrap_or_default());
    step.console.end_group();
    outs.push(("json", json.to_string()));
    for (name, shown, content) in &file_outputs {
        if *name != "bake-file" {
            step.console.group(&format!(
                "Bake file definition ({})",
                name.trim_start_matches("bake-file-")
            ));
            step.console.info(content);
            step.console.end_group();
        }
        outs.push((name, shown.clone()));
    }

    for (name, value) in &outs {
        step.outputs.set(name, value.clone());
        if cfg.set_output_env {
            step.outputs.export_env(&env_name(name), value.clone());
        }
    }
    let build_args = r.build_args(cfg);
    step.console.group("Build args");
    step.console.info(&build_args);
    step.console.end_group();
    step.outputs.set("build-args", build_args.clone());

    // Step summary.
    step.summary.heading(3, "tag-metadata");
    let mut rows: Vec<Vec<String>> = vec![vec!["version".into(), version]];
    rows.extend(
        r.computed
            .tags
            .iter()
            .map(|t| vec!["tag".into(), t.clone()]),
    );
    step.summary.table(&["", "value"], &rows);
    let label_rows: Vec<Vec<String>> = r
        .labels
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    let mut details = gantry_runtime::Summary::new();
    details.table(&["label", "value"], &label_rows);
    if !r.annotations.is_empty() {
        let ann_rows: Vec<Vec<String>> = r.annotations.iter().map(|a| vec![a.clone()]).collect();
        details.table(&["annotation"], &ann_rows);
    }
    details.code("", &build_args);
    step.summary.details(
        &format!(
            "{} labels, {} annotations, build args",
            r.labels.len(),
            r.annotations.len()
        ),
        details.as_str(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_like_upstream() {
        assert_eq!(
            env_name("bake-file-tags"),
            "DOCKER_METADATA_OUTPUT_BAKE_FILE_TAGS"
        );
        assert_eq!(env_name("tag-names"), "DOCKER_METADATA_OUTPUT_TAG_NAMES");
    }
}
