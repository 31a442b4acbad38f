//! `tag-metadata`: Compute image tags, OCI labels and annotations, and build args from the git and GitHub context.
//!
//! This crate owns the action's input/output table ([`ACTION`]), input resolution and the run.

use gantry_runtime::{
    ActionSpec, ErrorClass, Failure, InputError, InputKind, InputSpec, OutputSpec, Step,
};

/// Inputs of `tag-metadata`.
pub static INPUTS: &[InputSpec] = &[];

/// Outputs of `tag-metadata`.
pub static OUTPUTS: &[OutputSpec] = &[];

/// The action's table.
pub static ACTION: ActionSpec = ActionSpec {
    name: "tag-metadata",
    title: "gantry tag-metadata",
    description: "Compute image tags, OCI labels and annotations, and build args from the git and GitHub context.",
    help: "",
    inputs: INPUTS,
    outputs: OUTPUTS,
    icon: "tag",
    color: "blue",
};

/// Errors of `tag-metadata`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Not built yet.
    #[error("`tag-metadata` is not implemented yet; only --dry-run works")]
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
