//! `kustomize-deploy`: render a kustomize overlay with new images, server-side apply it, wait for
//! every workload under one deadline with kubectl's rules, and on failure print diagnostics and
//! restore the exact previous state from a revision history kept in the cluster.
//!
//! This crate owns the action's input/output table ([`ACTION`]), input resolution
//! ([`config`]), rendering ([`render`]), the cluster connection ([`cluster`]), applying
//! ([`apply`]), waiting and diagnostics ([`rollout`]) and the revision history ([`history`]).
//! The binary only dispatches to [`run`]; nothing here prints to stdout except through
//! `step.console`.

pub mod apply;
pub mod cluster;
pub mod config;
pub mod history;
pub mod render;
pub mod rollout;
mod run;
pub mod strategy;

use gantry_runtime::{
    ActionSpec, Annotation, ErrorClass, Failure, InputError, InputKind, InputSpec, OutputSpec, Step,
};

pub use run::run_deploy;

/// Inputs of `kustomize-deploy`.
pub static INPUTS: &[InputSpec] = &[
    InputSpec::new("overlay", InputKind::Path, "The kustomize overlay directory to deploy (e.g. `k8s/overlays/staging`). Also the key of the revision history used by `rollback`."),
    InputSpec::new("images", InputKind::List, "Image overrides, one per line (commas also split): `name=newName:tag`, `name=newName@sha256:…`, or `name:tag`. `name` is the image as the overlay leaves it. Applied through a generated wrapper kustomization, so registries with ports work and your files are not edited."),
    InputSpec::new("namespace", InputKind::String, "Namespace for namespaced objects that the overlay leaves without one (like `kubectl -n`); never overrides the overlay. Also where the revision history is kept (default: the kubeconfig context's namespace)."),
    InputSpec::new("kubeconfig", InputKind::String, "Kubeconfig as raw YAML or base64 (as usually stored in a secret). Every credential in it is masked. Default: `KUBECONFIG`, `~/.kube/config` or the in-cluster service account.").secret(),
    InputSpec::new("kubeconfig-file", InputKind::Path, "Path to a kubeconfig file (instead of `kubeconfig`)."),
    InputSpec::new("kube-context", InputKind::String, "Kubeconfig context to use (default: the current context)."),
    InputSpec::new("strategy", InputKind::String, "`rolling` (apply and wait), `blue-green` (deploy `<name>-blue`/`<name>-green` next to the live color, check, switch the Services' selectors, keep the old color for instant rollback) or `canary` (run `canary-replicas` new pods behind the same Service for `canary-duration`, then promote or reject).").default("rolling"),
    InputSpec::new("canary-replicas", InputKind::String, "Canary size: a number of pods (`1`) or a percentage of the stable replicas (`10%`).").default("1"),
    InputSpec::new("canary-duration", InputKind::Duration, "How long the canary must stay healthy before it is promoted.").default("30s"),
    InputSpec::new("health-check-url", InputKind::String, "blue-green/canary: a URL checked from inside the cluster by a short-lived Job before traffic moves (default: readiness only)."),
    InputSpec::new("health-check-image", InputKind::String, "Image of the health-check Job (runs `curl -fsS <url>`).").default("curlimages/curl:8.11.1"),
    InputSpec::new("keep-previous", InputKind::Bool, "blue-green: keep the previous color's Deployments after the switch, for an instant `rollback` (switches back).").default("true"),
    InputSpec::new("timeout", InputKind::Duration, "One deadline for all workloads of the overlay (`90s`, `5m`, or seconds).").default("5m"),
    InputSpec::new("prune", InputKind::Bool, "Delete objects that the previous revision of this overlay applied and that no longer render (only objects carrying this overlay's inventory label).").default("false"),
    InputSpec::new("server-dry-run", InputKind::Bool, "Send every apply with `dryRun=All` so the server validates it; nothing is changed or waited for.").default("false"),
    InputSpec::new("rollback-on-failure", InputKind::Bool, "When a workload fails or the deadline passes, re-apply the exact state from before this deploy, wait for it, and exit 1.").default("true"),
    InputSpec::new("rollback", InputKind::Bool, "Roll back instead of deploying: restore the revision before the latest one from the in-cluster history.").default("false"),
    InputSpec::new("rollback-to", InputKind::String, "Roll back to this revision number (see the `revision` output of earlier runs)."),
    InputSpec::new("field-manager", InputKind::String, "Server-side apply field manager name.").default("gantry"),
    InputSpec::new("annotate", InputKind::Bool, "Annotate every object with the run URL, commit and actor (`gantry.dev/run-url`, `gantry.dev/commit`, `gantry.dev/actor`).").default("false"),
    InputSpec::new("history-limit", InputKind::Number, "How many revisions to keep in the cluster.").default("10"),
    InputSpec::new("kubectl", InputKind::Path, "kubectl (or kustomize) binary used to render. Default: `GANTRY_KUBECTL`, then `kubectl` or `kustomize` on PATH."),
];

/// Outputs of `kustomize-deploy`.
pub static OUTPUTS: &[OutputSpec] = &[
    OutputSpec::new(
        "applied",
        "JSON list of `{kind, namespace, name, result}` (`created`, `configured`, `unchanged`, `pruned`, `restored`, `deleted`).",
    ),
    OutputSpec::new(
        "images",
        "Container images of the deployed workloads, one per line.",
    ),
    OutputSpec::new(
        "rolled-back",
        "`true` when the run ended by restoring an earlier state.",
    ),
    OutputSpec::new(
        "revision",
        "The revision number recorded in the in-cluster history for this run.",
    ),
    OutputSpec::new(
        "color",
        "blue-green: the color now receiving traffic (`blue` or `green`).",
    ),
];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "kustomize-deploy",
    title: "gantry kustomize-deploy",
    description: "Render a kustomize overlay with new images, apply it server-side, wait for the rollout, roll back on failure.",
    help: "Examples:\n  gantry kustomize-deploy --overlay k8s/overlays/staging --images registry.example/web=ghcr.io/acme/web:1.4.2\n  gantry kustomize-deploy --overlay k8s/overlays/production --dry-run\n  gantry kustomize-deploy --overlay k8s/overlays/production --rollback\n  gantry kustomize-deploy --overlay k8s/overlays/production --rollback-to 7",
    inputs: INPUTS,
    outputs: OUTPUTS,
    icon: "cloud",
    color: "blue",
};

/// Errors of `kustomize-deploy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// No kubectl/kustomize.
    #[error(
        "no kubectl or kustomize found to render the overlay (looked at the `kubectl` input, GANTRY_KUBECTL, PATH)"
    )]
    NoRenderer,
    /// Cluster connection.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// An apply failed.
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    /// A cluster call failed.
    #[error("{what} failed: {source}")]
    Api {
        /// What we were doing.
        what: String,
        /// The error.
        source: kube::Error,
    },
    /// The rollout failed.
    #[error("rollout failed: {summary}{}", if *.rolled_back { "; the previous state was restored" } else { "" })]
    RolloutFailed {
        /// What failed.
        summary: String,
        /// Whether the previous state was restored.
        rolled_back: bool,
    },
    /// Rollback not possible.
    #[error("cannot roll back: {0}")]
    NoRollback(String),
    /// The overlay does not fit the strategy.
    #[error("{0}")]
    Strategy(String),
    /// Cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl Failure for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) => ErrorClass::Input,
            Self::Render(render::RenderError::Kustomize(_)) => ErrorClass::Input,
            Self::Render(_) | Self::NoRenderer | Self::Cluster(_) | Self::Api { .. } => {
                ErrorClass::Environment
            }
            Self::Apply(_)
            | Self::RolloutFailed { .. }
            | Self::NoRollback(_)
            | Self::Strategy(_) => ErrorClass::Failed,
            Self::Cancelled => ErrorClass::Cancelled,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            Self::Cluster(cluster::ClusterError::Unauthorized { .. }) => vec!["refresh the kubeconfig secret: short-lived tokens (e.g. `kubectl create token`) expire".into()],
            Self::Cluster(cluster::ClusterError::ExecPluginMissing { command, .. }) => vec![format!("use a kubeconfig with a static token or client certificate, or a runner image that has `{command}`")],
            Self::NoRenderer => vec!["install kubectl (it embeds kustomize) or set the `kubectl` input".into()],
            Self::Apply(apply::ApplyError::UnknownKind { .. }) => vec!["install the CRD first, or check the apiVersion".into()],
            Self::RolloutFailed { .. } => vec!["see the diagnostics group above and the step summary".into()],
            _ => Vec::new(),
        }
    }

    fn location(&self) -> Option<Annotation> {
        match self {
            Self::Render(render::RenderError::Kustomize(f)) => Some(Annotation {
                title: Some("kustomize".into()),
                file: f.file.clone(),
                line: f.line,
                ..Annotation::default()
            }),
            _ => None,
        }
    }
}

/// Runs the action.
pub async fn run(step: &mut Step) -> Result<(), Error> {
    let cfg = config::Config::resolve(step)?;
    run::run_deploy(step, cfg).await
}
