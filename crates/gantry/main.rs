//! The `gantry` binary: parse the command line, build a [`Step`], dispatch to one action crate, and
//! make the one exit decision.
//!
//! Exit codes: 0 success; 1 bad input, environment problem or failed operation (always with an
//! `::error::` annotation naming the cause); 130 cancelled; 70 a bug in gantry. Nothing here knows
//! how an action works; this file must not grow action logic.

mod cli;

use std::process::ExitCode;

use gantry_runtime::mask::Masker;
use gantry_runtime::{
    ActionSpec, Annotation, AnnotationLevel, Cancel, Console, Env, ErrorClass, Failure,
    OutputFormat, Step,
};

use gantry::ACTIONS;

fn main() -> ExitCode {
    gantry_runtime::init::unblock_signals();
    let env = Env::from_process();
    if let Some(code) = gantry_runtime::init::run_if_pid1(&env) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Several TLS stacks are linked (reqwest, kube, octocrab); one process-wide provider keeps
    // rustls from refusing to choose between ring and aws-lc-rs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let masker = Masker::default();
    let console = Console::stdout(masker.clone(), env.is_debug(), env.is_actions());
    gantry_runtime::log::init(&env, &masker);

    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = cli::command(ACTIONS);
    let matches = match command.try_get_matches_from_mut(&args) {
        Ok(m) => m,
        Err(e) => return clap_error(&console, &args, e),
    };
    let Some((name, sub)) = matches.subcommand() else {
        return ExitCode::from(1);
    };
    if name == "completions" {
        if let Some(shell) = sub.get_one::<clap_complete::Shell>("shell") {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut command, "gantry", &mut buf);
            console.info(String::from_utf8_lossy(&buf).trim_end());
        }
        return ExitCode::SUCCESS;
    }
    let Some(spec) = ACTIONS.iter().copied().find(|s| s.name == name) else {
        return ExitCode::from(1);
    };
    let mut flags = cli::flag_values(spec, sub);
    if sub.get_flag("dry_run") {
        flags.insert("dry-run".into(), vec!["true".into()]);
    }
    let format = match sub.get_one::<cli::Format>("output").copied() {
        Some(cli::Format::Json) => OutputFormat::Json,
        Some(cli::Format::Table) => OutputFormat::Table,
        None if env.get("GITHUB_OUTPUT").is_some() => OutputFormat::Runner,
        None => OutputFormat::Table,
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            console.error("gantry", &format!("cannot start the async runtime: {e}"));
            return ExitCode::from(70);
        }
    };
    let code = runtime.block_on(run(spec, env, flags, console, format));
    // Do not wait for stuck blocking tasks (a hung DNS lookup) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

async fn run(
    spec: &'static ActionSpec,
    env: Env,
    flags: std::collections::BTreeMap<String, Vec<String>>,
    console: Console,
    format: OutputFormat,
) -> ExitCode {
    let cancel = Cancel::new();
    if let Err(e) = cancel.install_signal_handlers() {
        tracing::warn!("cannot install signal handlers: {e}");
    }
    let mut step = match Step::new(spec, env, flags, console.clone(), cancel.clone(), format) {
        Ok(s) => s,
        Err(e) => {
            let class = match e {
                gantry_runtime::step::StepError::Input(_) => ErrorClass::Input,
                gantry_runtime::step::StepError::Context(_) => ErrorClass::Environment,
            };
            return report(&console, spec.name, &e, class, Vec::new(), None);
        }
    };
    let result: Result<(), Box<dyn Failure>> = match spec.name {
        "tag-metadata" => gantry_tag_metadata::run(&mut step)
            .await
            .map_err(|e| Box::new(e) as Box<dyn Failure>),
        "build-image" => gantry_build_image::run(&mut step)
            .await
            .map_err(|e| Box::new(e) as Box<dyn Failure>),
        "kustomize-deploy" => gantry_kustomize_deploy::run(&mut step)
            .await
            .map_err(|e| Box::new(e) as Box<dyn Failure>),
        "ssh-release" => gantry_ssh_release::run(&mut step)
            .await
            .map_err(|e| Box::new(e) as Box<dyn Failure>),
        "notify-slack" => gantry_notify_slack::run(&mut step)
            .await
            .map_err(|e| Box::new(e) as Box<dyn Failure>),
        _ => Ok(()),
    };
    let success = result.is_ok();
    if let Err(e) = step.finish(success) {
        console.error(spec.name, &format!("cannot write the step's outputs: {e}"));
        return ExitCode::from(1);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let class = if cancel.is_cancelled() && e.class() != ErrorClass::Input {
                ErrorClass::Cancelled
            } else {
                e.class()
            };
            report(&console, spec.name, &*e, class, e.hints(), e.location())
        }
    }
}

/// Prints the one-line `::error::`, the cause chain and hints, and picks the exit code.
fn report(
    console: &Console,
    action: &str,
    err: &(dyn std::error::Error + 'static),
    class: ErrorClass,
    hints: Vec<String>,
    location: Option<Annotation>,
) -> ExitCode {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    let message = message.replace('\n', " ");
    let mut ann = location.unwrap_or_default();
    ann.title = Some(format!("gantry {action}"));
    let message = match class {
        ErrorClass::Bug => {
            format!("{message} (this is a bug in gantry; please report it with the log)")
        }
        ErrorClass::Cancelled => format!("cancelled: {message}"),
        _ => message,
    };
    console.annotate(AnnotationLevel::Error, &ann, &message);
    for h in hints {
        console.info(&format!("hint: {h}"));
    }
    ExitCode::from(class.exit_code())
}

/// Help and version go to stdout with exit 0; every other parse error is one `::error::` line
/// naming the flag, the usage on the log, and exit 1.
fn clap_error(console: &Console, args: &[std::ffi::OsString], e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            console.info(e.render().to_string().trim_end());
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            let action = args
                .get(1)
                .and_then(|a| a.to_str())
                .filter(|a| !a.starts_with('-'))
                .unwrap_or("gantry");
            console.error(&format!("gantry {action}"), &first);
            console.info(
                &format!(
                    "hint: run `gantry {} --help` for the list of inputs",
                    if action == "gantry" { "" } else { action }
                )
                .replace("  ", " "),
            );
            ExitCode::from(1)
        }
    }
}
