//! `kustomize-deploy`: Render a kustomize overlay with new images, apply it server-side, wait for the rollout, roll back on failure.
//!
//! This crate owns the action's input/output table ([`ACTION`]), input resolution and the run.

use gantry_runtime::{
    ActionSpec, ErrorClass, Failure, InputError, InputKind, InputSpec, OutputSpec, Step,
};

/// Inputs of `kustomize-deploy`.
pub static INPUTS: &[InputSpec] = &[];

/// Outputs of `kustomize-deploy`.
pub static OUTPUTS: &[OutputSpec] = &[];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "kustomize-deploy",
    title: "gantry kustomize-deploy",
    description: "Render a kustomize overlay with new images, apply it server-side, wait for the rollout, roll back on failure.",
    help: "",
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
    /// Not built yet.
    #[error("`kustomize-deploy` is not implemented yet; only --dry-run works")]
    NotImplemented,
}

impl Failure for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) => ErrorClass::Input,
            Self::NotImplemented => ErrorClass::Environment,
        }
    }
}

/// Runs the action.
pub async fn run(step: &mut Step) -> Result<(), Error> {
    let _ = (
        InputKind::String,
        InputSpec::new("x", InputKind::String, ""),
        OutputSpec::new("x", ""),
    );
    if step.dry_run {
        let plan = step.resolved_inputs();
        step.print_plan("Resolved inputs", &plan);
        return Ok(());
    }
    Err(Error::NotImplemented)
}
