//! The command line and the runner contract every action shares: `--help`, `--version`, unknown
//! flags, bad booleans, missing required inputs, dry runs, exit codes, and outputs written in the
//! runner's heredoc form.

use gantry_test::TestContext;

fn names() -> Vec<&'static str> {
    gantry::ACTIONS.iter().map(|s| s.name).collect()
}

#[test]
fn version_names_version_and_commit() {
    let r = TestContext::laptop().run("--version");
    r.assert_success();
    assert!(r.stdout.starts_with("gantry "), "{}", r.stdout);
    assert!(r.stdout.contains("(commit "), "{}", r.stdout);
}

#[test]
fn help_lists_every_action_and_examples() {
    let r = TestContext::laptop().run("--help");
    r.assert_success();
    for a in names() {
        assert!(
            r.stdout.contains(a),
            "--help does not list {a}:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("Examples:"));
}

#[test]
fn every_action_has_help_and_dry_run() {
    for a in names() {
        let mut c = TestContext::laptop();
        c.arg("--help");
        let r = c.run(a);
        r.assert_success();
        assert!(r.stdout.contains("--dry-run"), "{a} --help lacks --dry-run");
        assert!(
            r.stdout.contains("INPUT_"),
            "{a} --help does not name the INPUT_ variables"
        );
    }
}

#[test]
fn unknown_flag_is_one_error_line_exit_1() {
    let mut c = TestContext::new();
    c.arg("--no-such-flag");
    let r = c.run("notify-slack");
    r.assert_exit(1);
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{}", r.stdout);
    assert!(
        errors[0].starts_with("::error title=gantry notify-slack::"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("--no-such-flag"));
    assert!(!r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"));
}

#[test]
fn non_boolean_boolean_names_input_and_value() {
    for a in names() {
        let mut c = TestContext::new();
        c.input("dry-run", "yes");
        let r = c.run(a);
        r.assert_exit(1);
        let errors = r.error_lines();
        assert_eq!(errors.len(), 1, "{a}: {}", r.stdout);
        assert!(
            errors[0].contains("`dry-run`") && errors[0].contains("`yes`"),
            "{a}: {}",
            errors[0]
        );
        assert!(
            r.output_file.is_empty(),
            "{a}: a failed step wrote outputs: {}",
            r.output_file
        );
    }
}

#[test]
fn unknown_subcommand_exits_1() {
    let r = TestContext::new().run("deploy-everything");
    r.assert_exit(1);
    assert_eq!(r.error_lines().len(), 1, "{}", r.stdout);
}

#[test]
fn completions_are_printed() {
    let mut c = TestContext::laptop();
    c.arg("bash");
    let r = c.run("completions");
    r.assert_success();
    assert!(
        r.stdout.contains("_gantry"),
        "{}",
        &r.stdout[..r.stdout.len().min(200)]
    );
}

#[test]
fn tag_metadata_dry_run_without_runner_env_is_readable() {
    let mut c = TestContext::laptop();
    c.arg("--dry-run");
    let r = c.run("tag-metadata");
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.status == 0 || r.status == 1, "{}", r.status);
    if r.status == 1 {
        // Allowed only as a clear input error (e.g. images are required), never a crash.
        assert!(r.stdout.contains("error"), "{}", r.stdout);
    }
}
