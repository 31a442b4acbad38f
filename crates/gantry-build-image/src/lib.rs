//! `build-image`: build, assemble, merge and promote container images by digest.
//!
//! This crate owns the action's input/output table ([`ACTION`]), turning inputs into a
//! [`config::Config`] and a serialisable [`plan::Plan`], and executing it with `gantry-oci`
//! (assemble, merge, promote, and the push of classic `docker build` results) or `docker buildx`
//! (build). It must not print to stdout except through `step.console`, put a credential in argv or
//! a message, or move a tag before the content it points to is complete.

mod build;
pub mod config;
mod credhelper;
mod execute;
pub mod plan;
pub mod report;

use gantry_runtime::{
    ActionSpec, ErrorClass, Failure, InputError, InputKind, InputSpec, OutputSpec, Step,
};

const LIST: InputKind = InputKind::List;
const STR: InputKind = InputKind::String;
const BOOL: InputKind = InputKind::Bool;

/// Inputs of `build-image`. Build mode uses docker/build-push-action's names and defaults.
pub static INPUTS: &[InputSpec] = &[
    InputSpec::new("mode", STR, "What to do: `build` (docker buildx, or the classic builder plus our push), `assemble` (daemonless: base image + local layers), `merge` (per-platform digests into one index) or `promote` (copy an image by digest with its signatures). Empty: `promote` if `source` is set, `merge` if `digests` is set, `assemble` if `layers` is set, else `build`."),
    InputSpec::new("tags", LIST, "Image references to push, one per line or comma-separated (e.g. `ghcr.io/acme/api:1.2.3`; pass tag-metadata's `tags` output). In promote mode, extra targets."),
    InputSpec::new("push", BOOL, "Push the result to the registries in `tags`. Without it, build and assemble still compute the digest.").default("false"),
    InputSpec::new("platforms", LIST, "Target platforms, e.g. `linux/amd64,linux/arm64`."),
    InputSpec::new("labels", LIST, "Image config labels, `key=value` per line (pass tag-metadata's `labels` output)."),
    InputSpec::new("annotations", LIST, "Annotations, `key=value` per line; prefix with `index:` or `manifest:` to choose the level (default: manifest; an index also gets unprefixed ones in assemble/merge)."),
    // build (docker/build-push-action names)
    InputSpec::new("context", STR, "Build context path (build mode).").default("."),
    InputSpec::new("file", STR, "Path to the Dockerfile (default: `<context>/Dockerfile`)."),
    InputSpec::new("build-args", LIST, "Build-time variables, `NAME=value` per line (pass tag-metadata's `build-args` output)."),
    InputSpec::new("build-contexts", LIST, "Additional build contexts (`name=path`), buildx only."),
    InputSpec::new("target", STR, "Build stage to build (`--target`)."),
    InputSpec::new("secrets", LIST, "Build secrets, `id=value` per line (written to private temp files, never in argv).").secret(),
    InputSpec::new("secret-files", LIST, "Build secrets from files, `id=path` per line."),
    InputSpec::new("secret-envs", LIST, "Build secrets from environment variables, `id=ENV` per line."),
    InputSpec::new("ssh", LIST, "SSH agent sockets or keys to expose (`default|<id>[=<socket>|<key>]`)."),
    InputSpec::new("cache-from", LIST, "External cache sources (`type=registry,ref=…`, `type=gha`), buildx only."),
    InputSpec::new("cache-to", LIST, "Cache export destinations (`type=gha,mode=max`), buildx only."),
    InputSpec::new("load", BOOL, "Load the single-platform result into the local Docker engine (`--load`).").default("false"),
    InputSpec::new("no-cache", BOOL, "Do not use the build cache.").default("false"),
    InputSpec::new("no-cache-filters", LIST, "Stages to build without cache (buildx only)."),
    InputSpec::new("pull", BOOL, "Always try to pull newer base images.").default("false"),
    InputSpec::new("provenance", STR, "Provenance attestation (`true`, `false`, `mode=max`); off unless set, so indexes get no `unknown/unknown` entries."),
    InputSpec::new("sbom", STR, "SBOM attestation (`true`, `false`, or generator options); off unless set."),
    InputSpec::new("attests", LIST, "Attestation parameters (`type=sbom,generator=…`), buildx only."),
    InputSpec::new("outputs", LIST, "Output destinations (`type=image,push-by-digest=true,name-canonical=true,push=true`), buildx only."),
    InputSpec::new("builder", STR, "buildx builder instance (`--builder`)."),
    InputSpec::new("network", STR, "Network mode for RUN instructions (`--network`)."),
    InputSpec::new("add-hosts", LIST, "Custom host-to-IP mappings (`host:ip`)."),
    InputSpec::new("allow", LIST, "Extra privileged entitlements (`network.host,security.insecure`), buildx only."),
    InputSpec::new("shm-size", STR, "Size of /dev/shm for RUN (`2g`)."),
    InputSpec::new("ulimit", LIST, "Ulimit options (`nofile=1024:1024`)."),
    InputSpec::new("cgroup-parent", STR, "Optional parent cgroup for the build container."),
    InputSpec::new("call", STR, "Build mode: what buildx evaluates (`build`, `check`, `outline`, `targets`); `check` runs the Dockerfile's build checks without building and fails on a warning. Needs docker buildx."),
    // assemble
    InputSpec::new("base", STR, "Base image for assemble mode: a reference (`gcr.io/distroless/static:nonroot`, pinned by digest is best) or `scratch`.").default("scratch"),
    InputSpec::new("layers", LIST, "Layers for assemble mode, `local-path:/path/in/image` per line (one layer per line). `{os}`, `{arch}`, `{variant}` and `{platform}` in the local path pick per-platform files (`./dist/{arch}:/app`)."),
    InputSpec::new("entrypoint", STR, "Entrypoint: a JSON array (`[\"/app/server\"]`) or words (`/app/server --port 8080`)."),
    InputSpec::new("cmd", STR, "Default arguments: a JSON array or words."),
    InputSpec::new("env", LIST, "Environment variables for the image, `NAME=value` per line."),
    InputSpec::new("image-user", STR, "User the assembled image runs as (`65532:65532`, `app`)."),
    InputSpec::new("workdir", STR, "Working directory in the image."),
    InputSpec::new("expose", LIST, "Ports to declare (`8080`, `53/udp`)."),
    InputSpec::new("owner", STR, "Owner of the files in assembled layers, `uid:gid`.").default("0:0"),
    InputSpec::new("source-date-epoch", InputKind::Number, "Timestamp (seconds) for layer mtimes and `created`; default `SOURCE_DATE_EPOCH`, else 0. Same inputs and epoch give the same digest."),
    // merge
    InputSpec::new("digests", LIST, "Merge mode: per-platform digests from matrix jobs (`sha256:…`, resolved in the repository of `source` or the first of `tags`), or `repo@sha256:…` references, one per line."),
    // promote
    InputSpec::new("source", STR, "Promote mode: the image to copy (`registry/repo:tag` or `registry/repo@sha256:…`). Merge mode: the repository bare digests live in."),
    InputSpec::new("targets", LIST, "Promote mode: where to copy it (`registry/repo:tag` per line; a reference without a tag keeps the source tag, or copies by digest only when the source has none)."),
    InputSpec::new("copy-referrers", BOOL, "Promote mode: also copy signatures, attestations and SBOMs (OCI referrers and `sha256-<digest>.sig/.att/.sbom` tags).").default("true"),
    InputSpec::new("require-signature", BOOL, "Promote mode: refuse to promote an image without a signature (a referrer or a `sha256-<digest>.sig` tag).").default("false"),
    // registries
    InputSpec::new("registry", STR, "Registry `username`/`password` log in to (default: the registry of the first reference in `tags`, `targets` or `source`)."),
    InputSpec::new("username", STR, "User name for `registry`."),
    InputSpec::new("password", STR, "Password or token for `registry`.").secret(),
    InputSpec::new("registry-auth", LIST, "Credentials for several registries, `registry=username:token` per line.").secret(),
    InputSpec::new("github-token", STR, "Token used for ghcr.io when no other credential is given for it.").action_default("${{ github.token }}").secret(),
    InputSpec::new("insecure-registries", LIST, "Registries that may be reached over plain HTTP (loopback registries always may)."),
    InputSpec::new("registry-ca", InputKind::Path, "PEM file with extra CA certificates to trust for registries (self-hosted registries with a private CA)."),
    InputSpec::new("continue-on-registry-error", BOOL, "When pushing to several registries, succeed if at least one push worked (the failures are still reported).").default("false"),
    InputSpec::new("concurrency", InputKind::Number, "Parallel blob transfers per image.").default("6"),
    InputSpec::new("upload-chunk-size", STR, "Upload blobs in PATCH chunks of this size (`16M`, `64MiB`) instead of one PUT each: for registries behind a proxy that limits request size. A failed chunk resumes where the registry stopped. Empty: one PUT per blob, switching to 8 MiB chunks when the registry refuses it (413/411/405)."),
    InputSpec::new("retries", InputKind::Number, "Retries of a request on 408/429/5xx or a dropped connection (with back-off, honouring Retry-After).").default("4"),
];

/// Outputs of `build-image`.
pub static OUTPUTS: &[OutputSpec] = &[
    OutputSpec::new(
        "digest",
        "Digest of the image or index (set even without push when computed locally).",
    ),
    OutputSpec::new(
        "imageid",
        "Image ID: the config digest of a single-platform image, else the index digest.",
    ),
    OutputSpec::new(
        "metadata",
        "Build result metadata JSON (buildx's in build mode; the same keys where they apply otherwise).",
    ),
    OutputSpec::new(
        "image-refs",
        "`repo@sha256:…` per pushed repository, one per line.",
    ),
    OutputSpec::new(
        "report",
        "JSON report: per-target refs and result, platforms, sizes, bytes uploaded/mounted/skipped.",
    ),
];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "build-image",
    title: "gantry build-image",
    description: "Build, push, merge and promote container images by digest.",
    help: "Examples:\n  gantry build-image --mode promote --source ghcr.io/acme/api@sha256:… --targets ghcr.io/acme/api:prod\n  gantry build-image --mode assemble --base gcr.io/distroless/static --layers ./dist:/app --entrypoint /app/server --tags ghcr.io/acme/api:1.2.3 --push\n  gantry build-image --mode merge --digests sha256:aaa… --digests sha256:bbb… --tags ghcr.io/acme/api:1.2.3\n  gantry build-image --tags ghcr.io/acme/api:dev --push   # docker buildx build",
    inputs: INPUTS,
    outputs: OUTPUTS,
    icon: "package",
    color: "blue",
};

/// Errors of `build-image`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A registry operation failed.
    #[error("{context}: {source}")]
    Registry {
        /// What we were doing.
        context: String,
        /// The client error.
        source: Box<gantry_oci::Error>,
    },
    /// Some targets failed.
    #[error("pushing to {failed} of {total} targets failed: {details}")]
    Targets {
        /// Failed count.
        failed: usize,
        /// Total.
        total: usize,
        /// `target: error` lines.
        details: String,
    },
    /// The image has no signature and `require-signature` is on.
    #[error(
        "{image} has no signature (no referrer and no `{tag}` tag); not promoting (require-signature)"
    )]
    Unsigned {
        /// Image.
        image: String,
        /// The tag looked for.
        tag: String,
    },
    /// docker / buildx failed or is missing.
    #[error("{context}: {source}")]
    Docker {
        /// What we ran.
        context: String,
        /// The exec error.
        source: Box<gantry_exec::ExecError>,
    },
    /// Something the environment cannot do (e.g. multi-platform without buildx).
    #[error("{0}")]
    Environment(String),
    /// Local files.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn registry(context: impl Into<String>) -> impl FnOnce(gantry_oci::Error) -> Self {
        let context = context.into();
        move |source| Self::Registry {
            context,
            source: Box::new(source),
        }
    }
}

impl Failure for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) => ErrorClass::Input,
            Self::Registry { source, .. } => match source.as_ref() {
                gantry_oci::Error::InvalidReference { .. }
                | gantry_oci::Error::UnknownPlatform { .. } => ErrorClass::Input,
                gantry_oci::Error::Io { .. } => ErrorClass::Input,
                gantry_oci::Error::Auth { .. }
                | gantry_oci::Error::Denied { .. }
                | gantry_oci::Error::Transport { .. } => ErrorClass::Environment,
                _ => ErrorClass::Failed,
            },
            Self::Targets { .. } | Self::Unsigned { .. } => ErrorClass::Failed,
            Self::Docker { source, .. } => match source.as_ref() {
                gantry_exec::ExecError::NotFound { .. } => ErrorClass::Environment,
                gantry_exec::ExecError::Cancelled { .. } => ErrorClass::Cancelled,
                _ => ErrorClass::Failed,
            },
            Self::Environment(_) => ErrorClass::Environment,
            Self::Io { .. } => ErrorClass::Environment,
            Self::Cancelled => ErrorClass::Cancelled,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            Self::Registry { source, .. } if source.is_auth() => vec![
                "give credentials with `username`/`password` (and `registry`) or `registry-auth: registry=user:token`; for ghcr.io grant `packages: write` to the job's GITHUB_TOKEN".into(),
            ],
            Self::Registry { source, .. } if matches!(source.as_ref(), gantry_oci::Error::Transport { .. }) => vec![
                "a registry served over plain HTTP must be on loopback or listed in `insecure-registries`; a private CA goes in `registry-ca`".into(),
            ],
            _ => Vec::new(),
        }
    }
}

/// Runs the action.
pub async fn run(step: &mut Step) -> Result<(), Error> {
    let cfg = config::Config::resolve(step)?;
    let plan = plan::Plan::from_config(&cfg);
    if step.dry_run {
        let v = serde_json::to_value(&plan).unwrap_or_default();
        step.print_plan("build-image plan", &v);
        return Ok(());
    }
    execute::execute(step, &cfg, &plan).await
}
