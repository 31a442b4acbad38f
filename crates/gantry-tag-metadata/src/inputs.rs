//! The action's table: every input and output of `tag-metadata`, with upstream's names (so a
//! `docker/metadata-action` step keeps working when only `uses:` changes) plus gantry's own.
//!
//! It must not read values: that is `config.rs`.

use gantry_runtime::{ActionSpec, InputKind, InputSpec, OutputSpec};

/// Inputs of `tag-metadata`.
pub static INPUTS: &[InputSpec] = &[
    InputSpec::new(
        "context",
        InputKind::String,
        "Where the git ref and commit come from: `workflow` (the event that started the run) or `git` (the repository checked out in the workspace, read without running git).",
    )
    .default("workflow"),
    InputSpec::new(
        "images",
        InputKind::List,
        "Image names to tag, one per line as `name=<image>,enable=<true|false>` (or a bare name); a single line of comma-separated names is several images. Empty gives bare tags without an image name.",
    ),
    InputSpec::new(
        "tags",
        InputKind::List,
        "Tag rules, one per line: `type=<schedule|semver|pep440|match|edge|ref|raw|sha>,<attribute>=<value>,…`. Empty means `type=schedule`, `type=ref,event=branch`, `type=ref,event=tag` and `type=ref,event=pr`.",
    ),
    InputSpec::new(
        "flavor",
        InputKind::List,
        "Defaults for every tag: `latest=<auto|true|false|highest-semver>`, `prefix=…`, `suffix=…`, and `onlatest=true` after a prefix or suffix to apply it to `latest` too.",
    ),
    InputSpec::new(
        "labels",
        InputKind::List,
        "Extra labels, one `key=value` per line; they override the OCI defaults with the same key. Expressions such as `{{date 'YYYY'}}` are evaluated.",
    ),
    InputSpec::new(
        "annotations",
        InputKind::List,
        "Extra annotations, one `key=value` per line; they override the OCI defaults with the same key. Levels come from `DOCKER_METADATA_ANNOTATIONS_LEVELS`.",
    ),
    InputSpec::new(
        "sep-tags",
        InputKind::String,
        "Separator between tags in the `tags` and `tag-names` outputs (not trimmed). Empty means a newline.",
    ),
    InputSpec::new(
        "sep-labels",
        InputKind::String,
        "Separator between labels in the `labels` output (not trimmed). Empty means a newline.",
    ),
    InputSpec::new(
        "sep-annotations",
        InputKind::String,
        "Separator between annotations in the `annotations` output (not trimmed). Empty means a newline.",
    ),
    InputSpec::new(
        "bake-target",
        InputKind::String,
        "Target name used inside the bake definition files.",
    )
    .default("docker-metadata-action"),
    InputSpec::new(
        "github-token",
        InputKind::String,
        "Token for the GitHub API calls (repository data, commit date, repository tags).",
    )
    .secret()
    .action_default("${{ github.token }}"),
    InputSpec::new(
        "created-from",
        InputKind::String,
        "Source of the `org.opencontainers.image.created` label and `BUILD_DATE`: `now` (the run's time, or `SOURCE_DATE_EPOCH` when set) or `commit` (the commit date, for reproducible images).",
    )
    .default("now"),
    InputSpec::new(
        "build-arg-names",
        InputKind::List,
        "Renames or drops lines of the `build-args` output, one `<arg>=<NAME>` per line, where `<arg>` is `version`, `commit`, `short-sha` or `build-date`; an empty `<NAME>` drops the line.",
    ),
    InputSpec::new(
        "strict",
        InputKind::Bool,
        "Turn what upstream accepts silently into errors: unknown tag attributes, a non-numeric priority, an unknown time zone, a flavor value cut at a second `=`, a semver `match=` that does not match, a duplicate `latest`, and any tag or image name Docker would refuse.",
    )
    .default("false"),
    InputSpec::new(
        "repo-api-fallback",
        InputKind::Bool,
        "When the repository API call fails, warn and use the event payload's `repository` object instead of failing.",
    )
    .default("false"),
    InputSpec::new(
        "ref",
        InputKind::String,
        "CLI/context override: the git ref to tag (`refs/tags/v1.2.3`, `refs/heads/main`, `refs/pull/5/merge`); defaults to `GITHUB_REF`.",
    ),
    InputSpec::new(
        "sha",
        InputKind::String,
        "CLI/context override: the commit SHA; defaults to `GITHUB_SHA`.",
    ),
    InputSpec::new(
        "event-name",
        InputKind::String,
        "CLI/context override: the event name (`push`, `pull_request`, `schedule`…); defaults to `GITHUB_EVENT_NAME`.",
    ),
    InputSpec::new(
        "repository",
        InputKind::String,
        "CLI/context override: `owner/name` of the repository; defaults to `GITHUB_REPOSITORY`. Without it no API call is made and the repository labels are empty.",
    ),
];

/// Outputs of `tag-metadata`.
pub static OUTPUTS: &[OutputSpec] = &[
    OutputSpec::new(
        "version",
        "The main version: the value of the highest-priority rule that produced a tag.",
    ),
    OutputSpec::new(
        "tags",
        "Full image tags (`image:tag`), joined with `sep-tags`.",
    ),
    OutputSpec::new(
        "tag-names",
        "Tag names without the image, joined with `sep-tags`.",
    ),
    OutputSpec::new(
        "labels",
        "Labels as `key=value`, sorted by key, joined with `sep-labels`.",
    ),
    OutputSpec::new(
        "annotations",
        "Annotations as `level:key=value`, joined with `sep-annotations`.",
    ),
    OutputSpec::new(
        "json",
        "Tags, tag names, labels and annotations as one JSON object.",
    ),
    OutputSpec::new(
        "bake-file-tags",
        "Path (relative to the workspace) of a bake definition with the tags.",
    ),
    OutputSpec::new(
        "bake-file-labels",
        "Path (relative to the workspace) of a bake definition with the labels.",
    ),
    OutputSpec::new(
        "bake-file-annotations",
        "Path (relative to the workspace) of a bake definition with the annotations.",
    ),
    OutputSpec::new(
        "bake-file",
        "Path (relative to the workspace) of a bake definition with tags, labels and args together (legacy).",
    ),
    OutputSpec::new(
        "build-args",
        "`KEY=VALUE` lines for a build's `build-args`: `VERSION`, `COMMIT`, `SHORT_SHA` and `BUILD_DATE` (names changed with `build-arg-names`).",
    ),
];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "tag-metadata",
    title: "gantry tag-metadata",
    description: "Compute image tags, OCI labels and annotations, and build args from the git and GitHub context.",
    help: "Examples:\n  gantry tag-metadata --images ghcr.io/acme/api --tags 'type=semver,pattern={{version}}' --ref refs/tags/v1.2.3 --sha 860c1904a1ce19322e91ac35af1ab07466440c37\n  gantry tag-metadata --images ghcr.io/acme/api --ref refs/heads/main --sha 860c190 --tags 'type=raw,value=latest,enable={{is_default_branch}}' --output json",
    inputs: INPUTS,
    outputs: OUTPUTS,
    icon: "tag",
    color: "blue",
};
