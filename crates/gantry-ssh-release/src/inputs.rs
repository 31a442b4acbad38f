//! The input and output tables of `ssh-release` (the single source for `action.yml`, the README
//! tables and the CLI flags). Names follow what Deployer and appleboy/ssh-action users would guess.
//!
//! Only data lives here; parsing and validation are in `config.rs`.

use gantry_runtime::{InputKind as K, InputSpec as I, OutputSpec as O};

/// Inputs of `ssh-release`.
pub static INPUTS: &[I] = &[
    I::new("hosts", K::List, "Hosts to release to: a comma- or newline-separated list of `user@host:port` (user and port optional; IPv6 as `[::1]:22`).").aliases(&["host"]),
    I::new("hosts-file", K::Path, "YAML file listing hosts, each a string or a mapping with `host`, `user`, `port`, `deploy-path` (per-host overrides)."),
    I::new("user", K::String, "Default SSH user for hosts without `user@`.").aliases(&["username"]),
    I::new("port", K::Number, "Default SSH port for hosts without `:port`.").default("22"),
    I::new("ssh-key", K::String, "Private key (OpenSSH or PEM) for the deploy user; written to a 0600 temp file that is removed at exit.").secret().aliases(&["key"]),
    I::new("ssh-key-file", K::Path, "Path of the private key instead of `ssh-key` (laptop use)."),
    I::new("passphrase", K::String, "Passphrase of an encrypted `ssh-key`; used only to decrypt the temp copy (through SSH_ASKPASS, never argv).").secret(),
    I::new("known-hosts", K::String, "Pinned host keys, as `~/.ssh/known_hosts` lines. Required unless `fingerprint` is given: unknown hosts are refused."),
    I::new("known-hosts-file", K::Path, "Path of a known_hosts file instead of `known-hosts`."),
    I::new("fingerprint", K::List, "SHA256 host key fingerprints (`SHA256:…`) as an alternative to `known-hosts`; keys from `ssh-keyscan` are pinned only when they match."),
    I::new("ssh-config", K::String, "Extra ssh_config content appended after gantry's own strict settings (which cannot be weakened)."),
    I::new("jump-hosts", K::List, "Jump hosts (`user@host:port`, in order); reached with the same key and known_hosts via a generated ssh config.").aliases(&["proxy"]),
    I::new("artifact", K::String, "What to release: a local `.tar`, `.tar.gz`/`.tgz`, `.zip` or directory; an `https://` URL (with `artifact-sha256`); or `actions-artifact:<id or name>`. Required unless rolling back or unlocking."),
    I::new("artifact-sha256", K::String, "Expected SHA-256 of the artifact file; required for URLs. Also verified on each host after transfer."),
    I::new("github-token", K::String, "Token to download `actions-artifact:` artifacts through the GitHub API.").action_default("${{ github.token }}").secret(),
    I::new("deploy-path", K::String, "Base directory on the hosts (`releases/`, `shared/`, `current`). Relative paths are relative to the deploy user's home.").required(),
    I::new("release-id", K::String, "Release directory name; default: the UTC time `YYYYMMDDTHHMMSSZ`, the same on every host."),
    I::new("keep-releases", K::Number, "How many complete releases to keep (current, previous and releases in use are always kept).").default("5"),
    I::new("shared", K::List, "Files and directories (trailing `/`) linked from `<deploy-path>/shared` into each release."),
    I::new("dotenv", K::String, "Content of the `.env` file (a secret): sent on stdin, written 0600 via a temp file and rename, the old one backed up to `.bak.<timestamp>`.").secret(),
    I::new("dotenv-path", K::String, "Where `dotenv` goes, relative to the deploy path; linked into the release as `.env` when under `shared/`.").default("shared/.env"),
    I::new("requirements", K::String, "`requirements.txt` path inside the release: a virtualenv per hash of it and the Python version is built once and reused."),
    I::new("python", K::String, "Python interpreter on the hosts for the virtualenv.").default("python3"),
    I::new("pip-args", K::String, "Extra `pip install` arguments, e.g. `--no-index --find-links wheels` (relative to the release)."),
    I::new("smoke-command", K::String, "Command run in the new release with its venv before the switch (e.g. `python -c 'import app'`)."),
    I::new("script", K::String, "Hook run in the new release before the switch (e.g. migrations); `set -e` applies."),
    I::new("post-script", K::String, "Hook run in `current` after a successful switch and health check."),
    I::new("restart-command", K::String, "Command that restarts the service after the switch (e.g. `sudo systemctl restart app`)."),
    I::new("health-check", K::String, "Command run on the host after the restart; retried until it passes or `health-timeout`."),
    I::new("health-url", K::String, "HTTP(S) URL fetched from the host after the restart (curl, wget or python3), retried like `health-check`."),
    I::new("health-timeout", K::Duration, "How long the health check may keep failing before the release is rolled back.").default("60s"),
    I::new("health-interval", K::Duration, "Pause between health check attempts.").default("1s"),
    I::new("lock-timeout", K::Duration, "How long to wait for another deploy's lock before failing with its holder.").default("0s"),
    I::new("min-free-space", K::String, "Free space needed on each host before upload (`500M`, `2G`, bytes); default: 3 × the artifact size."),
    I::new("max-parallel", K::Number, "How many hosts are worked on at once.").default("10"),
    I::new("batch-size", K::Number, "Switch hosts in batches of this many (rolling); default: all at once after all are verified."),
    I::new("on-failure", K::String, "When a host fails after the switch: `rollback-all` (default), `stop` (no more batches) or `continue` (switch healthy hosts anyway).").default("rollback-all"),
    I::new("rollback", K::Bool, "Roll back instead of releasing: switch `current` to the previous complete release and restart.").default("false"),
    I::new("rollback-to", K::String, "Roll back to this release id (must be complete on every host)."),
    I::new("rollback-on-failure", K::Bool, "Switch back to the previous release when the restart or health check fails. `false` turns off every automatic rollback: the failed release stays live and `on-failure: rollback-all` acts as `stop`.").default("true"),
    I::new("unlock", K::Bool, "Remove a stale deploy lock and exit.").default("false"),
    I::new("verify-only", K::Bool, "Run every step up to the switch (upload, venv, smoke test), then stop: no switch, no restart.").default("false"),
    I::new("command-timeout", K::Duration, "Per-stage timeout; the remote process group is killed when it expires.").default("10m"),
    I::new("timeout", K::Duration, "Overall timeout of the run.").default("30m"),
    I::new("connect-timeout", K::Duration, "SSH connect timeout per attempt (3 attempts before anything changes).").default("15s"),
];

/// Outputs of `ssh-release`.
pub static OUTPUTS: &[O] = &[
    O::new("release-id", "The release id deployed (or rolled back to)."),
    O::new(
        "previous-release-id",
        "The release `current` pointed to before (first host that had one).",
    ),
    O::new(
        "hosts-succeeded",
        "Comma-separated hosts that ended on the new release.",
    ),
    O::new(
        "hosts-failed",
        "Comma-separated hosts that failed (and were rolled back when possible).",
    ),
    O::new(
        "deploy-log",
        "Path of the JSON deploy log (per host: stages, timings, exit codes, stderr tails), for upload-artifact.",
    ),
];
