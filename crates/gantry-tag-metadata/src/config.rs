//! `Config::resolve`: read every input once, parse the entry grammars and the environment
//! switches, and refuse bad values with the input name and the value, before any API call.
//!
//! It must not call the API or compute tags.

use gantry_runtime::{Env, InputError, Inputs, Secret};

use crate::csv;
use crate::tags::{self, Flavor, Image, TagEntry};

/// Where the ref and SHA come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextSource {
    /// The workflow event.
    Workflow,
    /// The checkout in the workspace.
    Git,
}

/// Source of `created` / `BUILD_DATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatedFrom {
    /// The run's time (`SOURCE_DATE_EPOCH` when set).
    Now,
    /// The commit date.
    Commit,
}

/// Resolved configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Config {
    /// `context`.
    pub context: ContextSource,
    /// `images`.
    pub images: Vec<Image>,
    /// `tags`, parsed and sorted by priority.
    pub tags: Vec<TagEntry>,
    /// `flavor`.
    pub flavor: Flavor,
    /// `labels` lines.
    pub labels: Vec<String>,
    /// `annotations` lines.
    pub annotations: Vec<String>,
    /// `sep-tags`.
    pub sep_tags: String,
    /// `sep-labels`.
    pub sep_labels: String,
    /// `sep-annotations`.
    pub sep_annotations: String,
    /// `bake-target`.
    pub bake_target: String,
    /// `github-token`.
    #[serde(skip)]
    pub token: Option<Secret>,
    /// `created-from`.
    pub created_from: CreatedFrom,
    /// `build-arg-names`: (arg, name) overrides.
    pub build_arg_names: Vec<(String, String)>,
    /// `strict`.
    pub strict: bool,
    /// `repo-api-fallback`.
    pub repo_api_fallback: bool,
    /// `ref` override.
    pub git_ref: Option<String>,
    /// `sha` override.
    pub sha: Option<String>,
    /// `event-name` override.
    pub event_name: Option<String>,
    /// `repository` override.
    pub repository: Option<String>,
    /// `DOCKER_METADATA_ANNOTATIONS_LEVELS` split at commas.
    pub annotation_levels: Vec<String>,
    /// `DOCKER_METADATA_SET_OUTPUT_ENV`.
    pub set_output_env: bool,
    /// `DOCKER_METADATA_PR_HEAD_SHA`.
    pub pr_head_sha: bool,
    /// `DOCKER_METADATA_SHORT_SHA_LENGTH` as given.
    pub short_sha_length: Option<String>,
}

/// The build-arg keys `build-arg-names` may rename.
pub const BUILD_ARGS: &[(&str, &str)] = &[
    ("version", "VERSION"),
    ("commit", "COMMIT"),
    ("short-sha", "SHORT_SHA"),
    ("build-date", "BUILD_DATE"),
];

fn list(inputs: &Inputs, name: &str) -> Result<Vec<String>, InputError> {
    let raw = inputs.string(name).unwrap_or_default();
    csv::input_list(&raw).map_err(|e| InputError::invalid(name, &raw, e.to_string()))
}

fn entry_err(e: tags::EntryError) -> InputError {
    InputError::invalid(e.input(), e.entry(), e.to_string())
}

/// `Util.parseBool` of the actions toolkit.
fn toolkit_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Reads and validates everything.
    pub fn resolve(inputs: &Inputs, env: &Env) -> Result<Config, InputError> {
        let context = match inputs.string("context").as_deref() {
            None | Some("workflow") => ContextSource::Workflow,
            Some("git") => ContextSource::Git,
            Some(other) => {
                return Err(InputError::invalid(
                    "context",
                    other,
                    "Invalid context source; expected workflow or git",
                ));
            }
        };
        let strict = inputs.bool("strict")?;
        let images = tags::parse_images(&list(inputs, "images")?).map_err(entry_err)?;
        let tags = tags::parse_tags(&list(inputs, "tags")?, strict).map_err(entry_err)?;
        let flavor_lines = list(inputs, "flavor")?;
        if strict && let Some(f) = tags::flavor_truncations(&flavor_lines).first() {
            return Err(InputError::invalid(
                "flavor",
                f,
                "upstream cuts this value at its second `=`; quote-free values only, or drop strict to keep upstream's behaviour (strict)",
            ));
        }
        let flavor = tags::parse_flavor(&flavor_lines, strict).map_err(entry_err)?;
        // `core.getInput(name, {trimWhitespace: false}) || "\n"`: a whitespace-only separator
        // is kept; only an empty one falls back to a newline.
        let sep = |name: &str| {
            inputs
                .string_untrimmed(name)
                .or_else(|| {
                    env.raw(&gantry_runtime::inputs::env_name(name))
                        .map(str::to_string)
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "\n".to_string())
        };
        let created_from = match inputs
            .choice("created-from", &["now", "commit"])?
            .as_deref()
        {
            Some("commit") => CreatedFrom::Commit,
            _ => CreatedFrom::Now,
        };
        let mut build_arg_names = Vec::new();
        for line in inputs.list("build-arg-names") {
            let Some((k, v)) = line.split_once('=') else {
                return Err(InputError::invalid(
                    "build-arg-names",
                    &line,
                    "expected <arg>=<NAME> with <arg> one of version, commit, short-sha, build-date",
                ));
            };
            let key = k.trim().to_lowercase().replace('_', "-");
            if !BUILD_ARGS.iter().any(|(a, _)| *a == key) {
                return Err(InputError::invalid(
                    "build-arg-names",
                    &line,
                    "unknown build arg; expected one of version, commit, short-sha, build-date",
                ));
            }
            let name = v.trim();
            if !name.is_empty() && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(InputError::invalid(
                    "build-arg-names",
                    &line,
                    "a build arg name may contain only letters, digits and _",
                ));
            }
            build_arg_names.push((key, name.to_string()));
        }
        let opt = |n: &str| inputs.string(n).filter(|s| !s.is_empty());
        let set_output_env = match env.get("DOCKER_METADATA_SET_OUTPUT_ENV") {
            None => true,
            Some(v) => toolkit_bool(v).ok_or_else(|| {
                InputError::invalid(
                    "DOCKER_METADATA_SET_OUTPUT_ENV",
                    v,
                    "parseBool syntax error; expected true or false",
                )
            })?,
        };
        let annotation_levels: Vec<String> = env
            .get("DOCKER_METADATA_ANNOTATIONS_LEVELS")
            .unwrap_or("manifest")
            .split(',')
            .map(str::to_string)
            .collect();
        if strict
            && let Some(bad) = annotation_levels.iter().find(|l| {
                !matches!(
                    l.as_str(),
                    "manifest" | "index" | "manifest-descriptor" | "index-descriptor"
                )
            })
        {
            return Err(InputError::invalid(
                "DOCKER_METADATA_ANNOTATIONS_LEVELS",
                bad,
                "unknown annotation level; expected manifest, index, manifest-descriptor or index-descriptor, comma-separated without spaces (strict)",
            ));
        }
        Ok(Config {
            context,
            images,
            tags,
            flavor,
            labels: list(inputs, "labels")?,
            annotations: list(inputs, "annotations")?,
            sep_tags: sep("sep-tags"),
            sep_labels: sep("sep-labels"),
            sep_annotations: sep("sep-annotations"),
            bake_target: inputs
                .string("bake-target")
                .unwrap_or_else(|| "docker-metadata-action".into()),
            token: inputs.token("github-token")?.filter(|s| !s.is_empty()),
            created_from,
            build_arg_names,
            strict,
            repo_api_fallback: inputs.bool("repo-api-fallback")?,
            git_ref: opt("ref"),
            sha: opt("sha"),
            event_name: opt("event-name"),
            repository: opt("repository"),
            annotation_levels,
            set_output_env,
            pr_head_sha: env
                .get("DOCKER_METADATA_PR_HEAD_SHA")
                .is_some_and(|v| v.to_lowercase().contains("true")),
            short_sha_length: env
                .get("DOCKER_METADATA_SHORT_SHA_LENGTH")
                .map(str::to_string),
        })
    }

    /// Whether any text the run evaluates mentions `commit_date` (the commit lookup is lazy).
    pub fn uses_commit_date(&self) -> bool {
        self.created_from == CreatedFrom::Commit
            || self
                .labels
                .iter()
                .chain(&self.annotations)
                .any(|l| l.contains("commit_date"))
            || self
                .tags
                .iter()
                .any(|t| t.attrs.iter().any(|(_, v)| v.contains("commit_date")))
            || self.flavor.prefix.contains("commit_date")
            || self.flavor.suffix.contains("commit_date")
    }

    /// The name of a build arg after `build-arg-names` (`None` when dropped).
    pub fn build_arg_name(&self, arg: &str) -> Option<String> {
        let default = BUILD_ARGS
            .iter()
            .find(|(a, _)| *a == arg)
            .map(|(_, n)| *n)?;
        match self.build_arg_names.iter().rev().find(|(a, _)| a == arg) {
            Some((_, n)) if n.is_empty() => None,
            Some((_, n)) => Some(n.clone()),
            None => Some(default.to_string()),
        }
    }
}
