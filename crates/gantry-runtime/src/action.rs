//! How an action describes itself: its inputs, outputs and branding ([`ActionSpec`]), and how its
//! errors are classified for the one exit decision in `main` ([`Failure`]).
//!
//! The tables here are the single source for `action.yml`, the root dispatcher, the README tables
//! and the CLI flags (see [`metadata`](crate::metadata)). Nothing here reads the environment.

/// What kind of value an input takes. Decides the CLI flag shape and the parsing helper to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A single string.
    String,
    /// A YAML 1.2 boolean (`true|True|TRUE|false|False|FALSE`). As a flag: `--x` or `--x=false`.
    Bool,
    /// A list: newline-separated (the flag may be repeated).
    List,
    /// A duration: `90s`, `5m`, `1h30m` or plain seconds.
    Duration,
    /// A non-negative integer.
    Number,
    /// A path to a file or directory.
    Path,
}

/// One input of an action.
#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    /// Name as in `action.yml` (kebab-case). Also the long flag and `INPUT_<NAME>`.
    pub name: &'static str,
    /// One-paragraph description (action.yml, README, `--help`).
    pub description: &'static str,
    /// Whether the input must be given.
    pub required: bool,
    /// Default applied when absent (in action.yml and on the CLI alike).
    pub default: Option<&'static str>,
    /// A default only written to `action.yml` (a `${{ }}` expression such as `${{ github.token }}`).
    pub action_default: Option<&'static str>,
    /// Secret: masked as soon as read, never echoed.
    pub secret: bool,
    /// Value shape.
    pub kind: InputKind,
    /// Deprecated alias names accepted too (e.g. slackapi's spellings).
    pub aliases: &'static [&'static str],
}

impl InputSpec {
    /// A new optional input.
    pub const fn new(name: &'static str, kind: InputKind, description: &'static str) -> Self {
        Self {
            name,
            description,
            required: false,
            default: None,
            action_default: None,
            secret: false,
            kind,
            aliases: &[],
        }
    }
    /// Marks the input required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Sets the default.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    /// Sets an action.yml-only default expression.
    pub const fn action_default(mut self, value: &'static str) -> Self {
        self.action_default = Some(value);
        self
    }
    /// Marks the input secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    /// Accepted alias names.
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
}

/// One output of an action.
#[derive(Clone, Copy, Debug)]
pub struct OutputSpec {
    /// Name as in `action.yml`.
    pub name: &'static str,
    /// Description.
    pub description: &'static str,
}

impl OutputSpec {
    /// A new output.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        Self { name, description }
    }
}

/// An action: the subcommand name and its tables.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    /// Subcommand and directory name (`ssh-release`).
    pub name: &'static str,
    /// Marketplace name.
    pub title: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Longer help for `gantry <name> --help` (examples).
    pub help: &'static str,
    /// Inputs, in display order.
    pub inputs: &'static [InputSpec],
    /// Outputs, in display order.
    pub outputs: &'static [OutputSpec],
    /// Feather icon name for branding.
    pub icon: &'static str,
    /// Branding colour.
    pub color: &'static str,
}

impl ActionSpec {
    /// The input named `name` (or aliased so).
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs
            .iter()
            .chain(COMMON_INPUTS)
            .find(|i| i.name == name || i.aliases.contains(&name))
    }

    /// All inputs, including the common ones every action has.
    pub fn all_inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs.iter().chain(COMMON_INPUTS.iter())
    }
}

/// Inputs every action takes.
pub const COMMON_INPUTS: &[InputSpec] = &[InputSpec::new(
    "dry-run",
    InputKind::Bool,
    "Resolve the inputs and print the plan; change nothing (no pushes, no remote writes, no messages).",
)
.default("false")];

/// How an error ends the step; decides the exit code and the wording in `main`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// An input is missing or invalid. Exit 1; the message names the input and the value.
    Input,
    /// The environment is wrong: a tool is missing, a host unreachable, credentials refused. Exit 1.
    Environment,
    /// The operation ran and failed (rollout failed, health check failed). Exit 1.
    Failed,
    /// The job was cancelled (SIGTERM/SIGINT). Exit 130.
    Cancelled,
    /// A bug in gantry. Exit 70 (EX_SOFTWARE) with a request to report it.
    Bug,
}

impl ErrorClass {
    /// The process exit code for this class.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Input | Self::Environment | Self::Failed => 1,
            Self::Cancelled => 130,
            Self::Bug => 70,
        }
    }
}

/// Implemented by every action crate's error type so `main` can make one exit decision.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// The class of this error.
    fn class(&self) -> ErrorClass;
    /// `hint:` lines for the usual mistakes.
    fn hints(&self) -> Vec<String> {
        Vec::new()
    }
    /// A file/line location for the `::error::` annotation (e.g. a kustomize error).
    fn location(&self) -> Option<crate::Annotation> {
        None
    }
}

impl Failure for crate::InputError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Input
    }
}
