//! `build-image`: Build, push, merge and promote container images by digest.
//!
//! This crate owns the action's input/output table ([`ACTION`]), input resolution and the run.

use gantry_runtime::{
    ActionSpec, ErrorClass, Failure, InputError, InputKind, InputSpec, OutputSpec, Step,
};

/// Inputs of `build-image`.
pub static INPUTS: &[InputSpec] = &[];

/// Outputs of `build-image`.
pub static OUTPUTS: &[OutputSpec] = &[];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "build-image",
    title: "gantry build-image",
    description: "Build, push, merge and promote container images by digest.",
    help: "",
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
    /// Not built yet.
    #[error("`build-image` is not implemented yet; only --dry-run works")]
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
