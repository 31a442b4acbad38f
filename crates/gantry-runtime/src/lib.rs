//! The GitHub Actions runner protocol, owned in one place.
//!
//! `gantry-runtime` is our equivalent of `@actions/core`: it reads inputs (`INPUT_<NAME>`), writes
//! outputs and environment files with the heredoc form, emits workflow commands with the runner's
//! escaping, masks secrets, parses the GitHub context and event payload, turns SIGTERM/SIGINT into a
//! cancellation token, reaps children when we are PID 1, and gives written files back to the
//! workspace owner. It is the only crate that reads the process environment or prints to stdout.
//!
//! It must not know about any particular action: actions describe themselves with an
//! [`ActionSpec`] and receive a [`Step`].
//!
//! See: <https://github.com/actions/toolkit/blob/main/packages/core/src/core.ts>

pub mod action;
pub mod cancel;
pub mod command;
pub mod context;
pub mod csvlist;
pub mod duration;
pub mod env;
pub mod event;
pub mod files;
pub mod init;
pub mod inputs;
pub mod log;
pub mod mask;
pub mod metadata;
pub mod outputs;
pub mod ownership;
pub mod secret;
pub mod size;
pub mod step;
pub mod summary;

pub use action::{ActionSpec, ErrorClass, Failure, InputKind, InputSpec, OutputSpec};
pub use cancel::Cancel;
pub use command::{Annotation, AnnotationLevel, Console};
pub use context::GitHubContext;
pub use env::Env;
pub use event::Event;
pub use inputs::{InputError, Inputs};
pub use outputs::{OutputFormat, Outputs};
pub use secret::Secret;
pub use step::Step;
pub use summary::Summary;
