//! The runner's container contract, replayed: make sure a Docker daemon answers, build the local
//! gantry image (`docker/build-local.sh --bin <binary under test>`), and run it with the exact
//! `docker run` flags, environment passing and mounts the runner uses for a container action
//! (reference/runtime-and-slack.md A1.2–A1.4, Appendix B), in a runner-like directory layout owned
//! by a non-root user.
//!
//! Test-only: spawns `docker` and the repository's scripts directly. It never pulls an image and
//! never talks to a registry; containers only reach loopback (the daemon runs with
//! `--bridge=none`; `--network host` is opt-in per run).
//!
//! See: <https://github.com/actions/runner/blob/main/src/Runner.Worker/Container/DockerCommandManager.cs> (`DockerRun`)

#![allow(clippy::disallowed_methods)] // test harness: spawns docker and reads PATH directly

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gantry_runtime::files::parse_runner_file;

/// The runner user's uid:gid on GitHub-hosted Ubuntu runners (`runner`, group `docker`): the
/// owner of the workspace and of the file-command files.
pub const RUNNER_OWNER: (u32, u32) = (1001, 121);

/// Where the container sees the workspace.
pub const CONTAINER_WORKSPACE: &str = "/github/workspace";

/// The repository root (this crate lives in `crates/gantry-test`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Why the container tests cannot run here, or `Ok` when a daemon answers (starting `dockerd`
/// with `docker/ensure-dockerd.sh` when needed). `GANTRY_REQUIRE_DOCKER=1` turns "cannot start"
/// into a panic, for CI gates that must not skip.
pub fn ensure_daemon() -> Result<(), String> {
    static DAEMON: OnceLock<Result<(), String>> = OnceLock::new();
    let res = DAEMON
        .get_or_init(|| {
            if !crate::have_program("docker") {
                return Err("the docker CLI is not installed (apt-get install docker.io)".into());
            }
            let out = Command::new(repo_root().join("docker/ensure-dockerd.sh"))
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run docker/ensure-dockerd.sh: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "no Docker daemon and dockerd cannot start: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        })
        .clone();
    if let Err(reason) = &res
        && std::env::var("GANTRY_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
    {
        panic!("GANTRY_REQUIRE_DOCKER=1 but {reason}");
    }
    res
}

/// Builds (or finds up to date) the local image holding `bin`, once per test process; returns the
/// image name. Panics with the script's log when the build fails: a daemon that runs but cannot
/// build our image is a bug to see, not a reason to skip. Call [`ensure_daemon`] first.
pub fn local_image(bin: &Path) -> String {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let res = IMAGE.get_or_init(|| {
        let start = Instant::now();
        let out = Command::new(repo_root().join("docker/build-local.sh"))
            .arg("--bin")
            .arg(bin)
            .arg("--tag")
            .arg("gantry:test")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run docker/build-local.sh: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(format!("docker/build-local.sh failed:\n{stderr}"));
        }
        let tag = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("gantry:test")
            .trim()
            .to_string();
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "image {tag} ready in {:.1}s: {}",
                start.elapsed().as_secs_f64(),
                stderr.lines().last().unwrap_or("")
            );
        }
        Ok(tag)
    });
    match res {
        Ok(tag) => tag.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `docker <args>` and returns (success, stdout, stderr).
pub fn docker(args: &[&str]) -> (bool, String, String) {
    match Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), e.to_string()),
    }
}

/// One container-action step as the runner would run it: a runner-like temp layout
/// (`_temp/{_github_home,_github_workflow,_runner_file_commands}`, a workspace) owned by
/// [`RUNNER_OWNER`], fresh file-command files, inputs and `GITHUB_*`/`RUNNER_*` variables.
#[derive(Debug)]
pub struct ContainerStep {
    dir: tempfile::TempDir,
    image: String,
    owner: (u32, u32),
    env: BTreeMap<String, String>,
    docker_args: Vec<String>,
    files: BTreeMap<&'static str, String>,
    name: String,
}

/// What a finished container step left behind.
#[derive(Clone, Debug)]
pub struct ContainerResult {
    /// The arguments after the image (the action and its flags).
    pub args: Vec<String>,
    /// Exit code of `docker run` (the container's exit code; 125+ for docker's own errors).
    pub status: i32,
    /// The container's stdout (what the runner scans for workflow commands).
    pub stdout: String,
    /// The container's stderr (also scanned by the runner).
    pub stderr: String,
    /// Raw content of the `set_output_*` file.
    pub output_file: String,
    /// Outputs as the runner's parser reads them.
    pub outputs: BTreeMap<String, String>,
    /// Raw content of the `set_env_*` file.
    pub env_file: String,
    /// The step summary file.
    pub summary: String,
    /// How long `docker run` took.
    pub elapsed: Duration,
}

impl ContainerResult {
    /// The `::error…::` lines on stdout.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("::error"))
            .collect()
    }

    /// Everything the step produced, for "never appears" checks.
    pub fn all_output(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.stdout, self.stderr, self.output_file, self.env_file, self.summary
        )
    }

    /// A readable dump for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "`{}`: exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- set_output\n{}",
            self.args.join(" "),
            self.status,
            self.elapsed,
            self.stdout,
            self.stderr,
            self.output_file
        )
    }
}

/// A running container step (for signal tests).
#[derive(Debug)]
pub struct RunningStep {
    /// The `docker run` client process.
    pub child: Child,
    /// The container's name.
    pub name: String,
    /// When `docker run` was started.
    pub started: Instant,
}

impl RunningStep {
    /// Sends SIGINT to the `docker run` client, which proxies it to the container's PID 1: what
    /// the runner does first when a job is cancelled (SIGTERM follows after 7.5 s).
    pub fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    }
}

/// 32 random hex characters (unique names and secret values in tests).
pub fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl ContainerStep {
    /// A step of `image` in a fresh runner-like layout owned by [`RUNNER_OWNER`].
    pub fn new(image: &str) -> Self {
        Self::with_owner(image, RUNNER_OWNER)
    }

    /// As [`ContainerStep::new`], with another workspace owner.
    pub fn with_owner(image: &str, owner: (u32, u32)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gantry-container-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        for d in [
            "_temp/_github_home",
            "_temp/_github_workflow",
            "_temp/_runner_file_commands",
            "workspace",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let guid = uuid::Uuid::new_v4().to_string();
        let mut files = BTreeMap::new();
        for (var, prefix) in [
            ("GITHUB_OUTPUT", "set_output_"),
            ("GITHUB_ENV", "set_env_"),
            ("GITHUB_STATE", "save_state_"),
            ("GITHUB_PATH", "add_path_"),
            ("GITHUB_STEP_SUMMARY", "step_summary_"),
        ] {
            let name = format!("{prefix}{guid}");
            std::fs::write(root.join("_temp/_runner_file_commands").join(&name), b"")
                .expect("file command");
            files.insert(var, name);
        }
        let hex = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let mut step = Self {
            dir,
            image: image.to_string(),
            owner,
            env: BTreeMap::new(),
            docker_args: Vec::new(),
            files,
            name: format!("{}_{hex}", image.replace([':', '/', '.'], "")),
        };
        step.default_env();
        chown_tree(step.dir.path(), owner);
        step
    }

    fn default_env(&mut self) {
        let ws = self.workspace().display().to_string();
        let pairs = [
            // What the runner sets for every step (translated to container paths).
            ("HOME", "/github/home".to_string()),
            ("GITHUB_WORKSPACE", CONTAINER_WORKSPACE.to_string()),
            ("GITHUB_EVENT_PATH", "/github/workflow/event.json".into()),
            ("GITHUB_EVENT_NAME", "push".into()),
            ("GITHUB_REPOSITORY", "octo-org/octo-repo".into()),
            ("GITHUB_REPOSITORY_OWNER", "octo-org".into()),
            ("GITHUB_REPOSITORY_ID", "123456".into()),
            (
                "GITHUB_SHA",
                "860c1904a1ce19322e91ac35af1ab07466440c37".into(),
            ),
            ("GITHUB_REF", "refs/heads/main".into()),
            ("GITHUB_REF_NAME", "main".into()),
            ("GITHUB_REF_TYPE", "branch".into()),
            ("GITHUB_REF_PROTECTED", "false".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            // Tests reach loopback only: the GitHub API is a closed loopback port unless a test
            // points it at a fake (`.env("GITHUB_API_URL", …)` with `--network host`).
            ("GITHUB_API_URL", "http://127.0.0.1:9".into()),
            ("GITHUB_GRAPHQL_URL", "http://127.0.0.1:9/graphql".into()),
            ("GITHUB_RUN_ID", "1234567890".into()),
            ("GITHUB_RUN_NUMBER", "42".into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_ACTOR", "octocat".into()),
            ("GITHUB_ACTOR_ID", "583231".into()),
            ("GITHUB_TRIGGERING_ACTOR", "octocat".into()),
            ("GITHUB_WORKFLOW", "release".into()),
            (
                "GITHUB_WORKFLOW_REF",
                "octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main".into(),
            ),
            ("GITHUB_JOB", "deploy".into()),
            ("GITHUB_ACTION", "__gantry".into()),
            ("GITHUB_ACTION_PATH", format!("{ws}/../_actions/gantry")),
            ("GITHUB_RETENTION_DAYS", "90".into()),
            ("RUNNER_OS", "Linux".into()),
            ("RUNNER_ARCH", "X64".into()),
            ("RUNNER_NAME", "GitHub Actions 1".into()),
            ("RUNNER_ENVIRONMENT", "github-hosted".into()),
            ("RUNNER_TEMP", "/github/runner_temp".into()),
            // Host paths the runner passes untranslated (not mounted; meaningless inside).
            ("RUNNER_TOOL_CACHE", "/opt/hostedtoolcache".into()),
            ("RUNNER_WORKSPACE", "/home/runner/work/octo-repo".into()),
        ];
        for (k, v) in pairs {
            self.env.insert(k.to_string(), v);
        }
        let files: Vec<(&str, String)> = self
            .files
            .iter()
            .map(|(k, v)| (*k, format!("/github/file_commands/{v}")))
            .collect();
        for (k, v) in files {
            self.env.insert(k.to_string(), v);
        }
        self.event(
            "push",
            serde_json::json!({
                "ref": "refs/heads/main",
                "after": "860c1904a1ce19322e91ac35af1ab07466440c37",
                "repository": {"full_name": "octo-org/octo-repo", "default_branch": "main",
                               "html_url": "https://github.com/octo-org/octo-repo"},
                "head_commit": {"id": "860c1904a1ce19322e91ac35af1ab07466440c37",
                                "message": "Ship it", "timestamp": "2026-11-23T20:00:00Z"}
            }),
        );
    }

    /// Host path of the workspace (mounted at `/github/workspace`).
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// Writes a file into the workspace, owned like the rest of it (a checked-out file).
    pub fn write_workspace_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let path = self.workspace().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(&path, contents).expect("write");
        chown_tree(&self.workspace(), self.owner);
        path
    }

    /// Host path of the runner temp directory (`RUNNER_TEMP`).
    pub fn runner_temp(&self) -> PathBuf {
        self.dir.path().join("_temp")
    }

    /// The workspace owner (uid, gid).
    pub fn owner(&self) -> (u32, u32) {
        self.owner
    }

    /// The container name (`<sanitized image>_<6 hex>`, like the runner's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets an input the way the runner does: `INPUT_<NAME>` (upper-case, spaces to `_`, hyphens
    /// kept), passed as `-e NAME` with the value in the docker CLI's environment.
    pub fn input(&mut self, name: &str, value: &str) -> &mut Self {
        self.env
            .insert(gantry_runtime::inputs::env_name(name), value.to_string());
        self
    }

    /// Sets (or overrides) an environment variable.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Writes the event payload to `_github_workflow/event.json` and sets `GITHUB_EVENT_NAME`.
    pub fn event(&mut self, name: &str, payload: serde_json::Value) -> &mut Self {
        let p = self.dir.path().join("_temp/_github_workflow/event.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&payload).expect("json")).expect("event");
        chown(&p, self.owner);
        self.env
            .insert("GITHUB_EVENT_NAME".to_string(), name.to_string());
        self
    }

    /// An extra `docker run` flag placed before the image (e.g. `--network host` to reach a
    /// loopback server on the host; the runner adds `--network` only for job containers).
    pub fn docker_arg(&mut self, arg: &str) -> &mut Self {
        self.docker_args.push(arg.to_string());
        self
    }

    /// The `docker run` command, exactly as the runner builds it (A1.2): every variable passed
    /// by name with `-e NAME`, its value only in the docker CLI's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let root = self.dir.path();
        let mut cmd = Command::new("docker");
        cmd.env_clear();
        cmd.env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        );
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        cmd.args(["run", "--name", &self.name, "--label", "dev.gantry.test"])
            .args(["--workdir", CONTAINER_WORKSPACE, "--rm"]);
        for (k, v) in &self.env {
            // The docker CLI reads the value of `-e NAME` from its own environment, which holds
            // hyphenated names (`INPUT_DRY-RUN`) that a shell could not export.
            cmd.arg("-e").arg(k);
            cmd.env(k, v);
        }
        cmd.args(["-e", "GITHUB_ACTIONS=true", "-e", "CI=true"]);
        let mount = |host: PathBuf, container: &str| format!("{}:{container}", host.display());
        cmd.args(["-v", "/var/run/docker.sock:/var/run/docker.sock"]);
        cmd.args(["-v", &mount(root.join("_temp"), "/github/runner_temp")]);
        cmd.args([
            "-v",
            &mount(root.join("_temp/_github_home"), "/github/home"),
        ]);
        cmd.args([
            "-v",
            &mount(root.join("_temp/_github_workflow"), "/github/workflow"),
        ]);
        cmd.args([
            "-v",
            &mount(
                root.join("_temp/_runner_file_commands"),
                "/github/file_commands",
            ),
        ]);
        cmd.args(["-v", &mount(self.workspace(), CONTAINER_WORKSPACE)]);
        cmd.args(&self.docker_args);
        cmd.arg(&self.image).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs the step to completion (`docker run … <image> <args…>`).
    pub fn run(&self, args: &[&str]) -> ContainerResult {
        let start = Instant::now();
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
        self.result(
            args,
            out.status.code().unwrap_or(-1),
            &out.stdout,
            &out.stderr,
            start.elapsed(),
        )
    }

    /// Starts the step without waiting (stdout/stderr piped).
    pub fn spawn(&self, args: &[&str]) -> RunningStep {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
        RunningStep {
            child,
            name: self.name.clone(),
            started: Instant::now(),
        }
    }

    /// Reads what a finished step left in the file-command files.
    pub fn result(
        &self,
        args: &[&str],
        status: i32,
        stdout: &[u8],
        stderr: &[u8],
        elapsed: Duration,
    ) -> ContainerResult {
        let read = |var: &str| {
            self.files
                .get(var)
                .map(|n| {
                    std::fs::read_to_string(
                        self.dir.path().join("_temp/_runner_file_commands").join(n),
                    )
                    .unwrap_or_default()
                })
                .unwrap_or_default()
        };
        let output_file = read("GITHUB_OUTPUT");
        let outputs = parse_runner_file(&output_file)
            .unwrap_or_else(|e| {
                panic!("set_output file does not parse as the runner parses it: {e}\n{output_file}")
            })
            .into_iter()
            .collect();
        ContainerResult {
            args: args.iter().map(|a| a.to_string()).collect(),
            status,
            stdout: String::from_utf8_lossy(stdout).into_owned(),
            stderr: String::from_utf8_lossy(stderr).into_owned(),
            output_file,
            outputs,
            env_file: read("GITHUB_ENV"),
            summary: read("GITHUB_STEP_SUMMARY"),
            elapsed,
        }
    }

    /// Paths the runner user could not clean up or use later: anything under the workspace or the
    /// file-command directory not owned by the workspace owner, and any directory elsewhere under
    /// the runner's temp dir (`HOME`, `RUNNER_TEMP`) that is not (the runner empties `_temp`
    /// between jobs as that user; a root-owned directory with files in it makes that fail).
    /// See: <https://github.com/actions/runner/issues/434>
    pub fn foreign_owned(&self) -> Vec<(PathBuf, u32, u32)> {
        let mut bad = Vec::new();
        let owner = self.owner;
        let commands = self.dir.path().join("_temp/_runner_file_commands");
        let workspace = self.workspace();
        let mut check = |p: &Path, m: &std::fs::Metadata| {
            let strict = p.starts_with(&workspace) || p.starts_with(&commands);
            if (m.uid(), m.gid()) != owner && (strict || m.is_dir()) {
                bad.push((p.to_path_buf(), m.uid(), m.gid()));
            }
        };
        walk(&workspace, &mut check);
        walk(&self.runner_temp(), &mut check);
        bad
    }
}

impl Drop for ContainerStep {
    fn drop(&mut self) {
        // A test that panicked mid-run may leave its container behind.
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn walk(path: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        f(path, &m);
        if m.is_dir()
            && let Ok(rd) = std::fs::read_dir(path)
        {
            for e in rd.flatten() {
                walk(&e.path(), f);
            }
        }
    }
}

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap_or_else(|e| {
        panic!(
            "chown {}: {e} (the container tests run as root)",
            path.display()
        )
    });
}

fn chown_tree(path: &Path, owner: (u32, u32)) {
    walk(path, &mut |p, _| chown(p, owner));
}
