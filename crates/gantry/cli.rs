//! The command line: `gantry <action> [--input value …]`, built from the actions' input tables.
//!
//! Global flags are a clap-derive struct ([`Global`]); each action's flags are generated from its
//! [`ActionSpec`] so that every input is a long flag with the same name as in `action.yml`, and a
//! new input can never be forgotten on the CLI. A flag wins over `INPUT_<NAME>`; the merge itself
//! happens in `gantry_runtime::Inputs`. This module only parses; it runs nothing.

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, ValueEnum};
use gantry_runtime::{ActionSpec, InputKind};

/// Output format outside a runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned name/value table.
    Table,
    /// One JSON object.
    Json,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Resolve inputs and print the plan; change nothing. Same as `INPUT_DRY-RUN=true`.
    #[arg(long, global = true)]
    pub(crate) dry_run: bool,
    /// How to print outputs when not running in GitHub Actions (`GITHUB_OUTPUT` unset).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub(crate) output: Option<Format>,
}

/// The version line: crate version and the commit it was built from.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GANTRY_COMMIT"),
    ")"
);

const ABOUT: &str = "Build, tag, ship and promote container images and releases.\n\n\
Each command is also a GitHub Action (actions/<command>/action.yml). Every input is a long flag and\n\
an INPUT_<NAME> environment variable (hyphens kept: INPUT_DRY-RUN); the flag wins.";

const AFTER: &str = "Examples:\n  \
gantry tag-metadata --images ghcr.io/acme/api --tags 'type=semver,pattern={{version}}' --ref refs/tags/v1.2.3 --sha 860c1904a1ce19322e91ac35af1ab07466440c37\n  \
gantry ssh-release --hosts app1.example.com --artifact dist/app.tar.gz --rollback\n  \
gantry notify-slack --channel C0123456 --status success --dry-run\n  \
gantry completions bash > /etc/bash_completion.d/gantry";

/// Builds the whole command tree.
pub(crate) fn command(specs: &[&'static ActionSpec]) -> Command {
    let mut cmd = Command::new("gantry")
        .version(VERSION)
        .about(ABOUT)
        .after_help(AFTER)
        .subcommand_required(true)
        .arg_required_else_help(true);
    cmd = Global::augment_args(cmd);
    for spec in specs {
        cmd = cmd.subcommand(action_command(spec));
    }
    cmd.subcommand(
        Command::new("completions")
            .about("Print a shell completion script")
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(clap::value_parser!(clap_complete::Shell))
                    .help("bash, zsh, fish, elvish or powershell"),
            ),
    )
}

fn action_command(spec: &'static ActionSpec) -> Command {
    let mut c = Command::new(spec.name)
        .about(spec.description)
        .after_help(spec.help);
    for input in spec.inputs {
        let mut help = input.description.to_string();
        if let Some(d) = input.default {
            help.push_str(&format!(" [default: {d}]"));
        }
        if input.secret {
            help.push_str(
                " Secret: prefer the INPUT_ variable or a -file input on shared machines (argv is visible to other users).",
            );
        }
        help.push_str(&format!(
            " [env: {}]",
            gantry_runtime::inputs::env_name(input.name)
        ));
        let mut arg = Arg::new(input.name)
            .long(input.name)
            .help(help)
            .required(false);
        for alias in input.aliases {
            arg = arg.alias(*alias);
        }
        arg = match input.kind {
            InputKind::Bool => arg
                .num_args(0..=1)
                .default_missing_value("true")
                .value_name("BOOL")
                .action(ArgAction::Set),
            InputKind::List => arg.action(ArgAction::Append).value_name("VALUE"),
            InputKind::Duration => arg.value_name("DURATION").action(ArgAction::Set),
            InputKind::Number => arg.value_name("N").action(ArgAction::Set),
            InputKind::Path => arg
                .value_name("PATH")
                .value_hint(clap::ValueHint::AnyPath)
                .action(ArgAction::Set),
            InputKind::String => arg.value_name("VALUE").action(ArgAction::Set),
        };
        c = c.arg(arg);
    }
    c
}

/// The input values given as flags, by input name.
pub(crate) fn flag_values(spec: &ActionSpec, m: &ArgMatches) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for input in spec.inputs {
        if let Some(values) = m.get_many::<String>(input.name) {
            out.insert(input.name.to_string(), values.cloned().collect());
        }
    }
    out
}
