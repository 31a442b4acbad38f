//! The SSH layer: one `openssh` native-mux master per host, strict host-key checking, a generated
//! ssh config (so jump hosts get the same key and known_hosts), and stage execution with a
//! timeout and cancellation that also kill the remote process group.
//!
//! Secrets: the key (and its decrypted copy) live in a 0700 temp dir removed on drop; the
//! passphrase reaches `ssh-keygen` only through `SSH_ASKPASS` and the environment, never argv.
//! Scripts go in the exec request (`sh -c`); stdin carries only payloads (the artifact, the
//! `.env` secret); no secret is ever in a script.
//!
//! See: reference/ssh-release.md §4 (dropping an `openssh` command future does not stop the
//! remote process; `-J` does not pass `-i` to the hop; BatchMode needs unencrypted keys).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gantry_exec::{Cmd, Exec};
use gantry_runtime::{Cancel, Secret};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Host;
use crate::scripts::{self, Ctx};

/// SSH-level failures, classified for the user.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// Host key unknown or changed.
    #[error("{host}: host key verification failed: {detail}")]
    HostKey {
        /// Host.
        host: String,
        /// ssh's words.
        detail: String,
    },
    /// Key refused.
    #[error("{host}: the server refused the key for user `{user}` (Permission denied): {detail}")]
    Auth {
        /// Host.
        host: String,
        /// User.
        user: String,
        /// ssh's words.
        detail: String,
    },
    /// Cannot connect.
    #[error("{host}: cannot connect: {detail}")]
    Connect {
        /// Host.
        host: String,
        /// Cause.
        detail: String,
    },
    /// The connection dropped during a stage.
    #[error("{host}: connection lost during `{stage}`: {detail}")]
    Lost {
        /// Host.
        host: String,
        /// Stage.
        stage: String,
        /// Cause.
        detail: String,
    },
    /// A stage exited non-zero.
    #[error("{host}: `{stage}` failed (exit {status}): {stderr}")]
    Stage {
        /// Host.
        host: String,
        /// Stage.
        stage: String,
        /// Exit status.
        status: i32,
        /// stderr tail.
        stderr: String,
        /// stdout (facts).
        stdout: String,
    },
    /// A stage ran too long.
    #[error("{host}: `{stage}` timed out after {secs}s; its remote processes were killed")]
    Timeout {
        /// Host.
        host: String,
        /// Stage.
        stage: String,
        /// Seconds.
        secs: u64,
    },
    /// Cancelled.
    #[error("{host}: `{stage}` cancelled; its remote processes were killed")]
    Cancelled {
        /// Host.
        host: String,
        /// Stage.
        stage: String,
    },
    /// Local setup failed.
    #[error("preparing the SSH client: {0}")]
    Setup(String),
}

/// Local client material: key, known_hosts, ssh config, control dir. Removed on drop.
#[derive(Debug)]
pub(crate) struct Client {
    dir: tempfile::TempDir,
    key: PathBuf,
    known_hosts: PathBuf,
    config: PathBuf,
    control: PathBuf,
    connect_timeout: Duration,
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Whether this CPU has AES instructions (then AES-GCM is the cheapest SSH cipher).
fn cpu_has_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The `Host` alias used for host `i` in the generated config.
pub(crate) fn alias(i: usize) -> String {
    format!("gantry-h{i}")
}

/// The hop to a host behind `via`: what `ProxyJump` does (`ssh -W`), with this config (so the
/// hop gets the same key and pinned host keys) and a log per destination, so that a refused
/// jump host key is reported as such rather than as "connection closed".
fn proxy_command(config: &Path, via: &str) -> String {
    let dir = config.parent().unwrap_or(Path::new("."));
    format!(
        "  ProxyCommand ssh -F {} -E {}/jump-%n.log -W [%h]:%p {via}\n",
        config.display(),
        dir.display()
    )
}

/// The generated ssh config (pure, for tests and the plan). It is written next to the key as
/// `config` in the client's private directory.
pub(crate) fn render_config(
    hosts: &[Host],
    jumps: &[Host],
    key: &Path,
    known_hosts: &Path,
    extra: Option<&str>,
    prefer_aes_gcm: bool,
) -> String {
    let config = key.with_file_name("config");
    let mut s =
        String::from("# generated by gantry ssh-release; gantry's settings come first and win\n");
    let jump_names: Vec<String> = (0..jumps.len()).map(|j| format!("gantry-j{j}")).collect();
    for (i, h) in hosts.iter().enumerate() {
        s.push_str(&format!(
            "Host {}\n  HostName {}\n  Port {}\n  User {}\n",
            alias(i),
            h.host,
            h.port,
            h.user
        ));
        if let Some(last) = jump_names.last() {
            s.push_str(&proxy_command(&config, last));
        }
    }
    for (j, h) in jumps.iter().enumerate() {
        s.push_str(&format!(
            "Host {}\n  HostName {}\n  Port {}\n  User {}\n",
            jump_names[j], h.host, h.port, h.user
        ));
        if j > 0 {
            s.push_str(&proxy_command(&config, &jump_names[j - 1]));
        }
    }
    s.push_str(&format!(
        "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  CheckHostIP no\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  PreferredAuthentications publickey\n  BatchMode yes\n  ForwardAgent no\n  ServerAliveInterval 15\n  ServerAliveCountMax 4\n  LogLevel ERROR\n",
        key.display(),
        known_hosts.display()
    ));
    // OpenSSH puts chacha20-poly1305 first (constant-time without AES hardware). With AES
    // instructions, AES-GCM costs a fraction of the CPU per byte on both ends, which is what
    // limits a many-host upload; the set of ciphers offered is unchanged, only the order. A
    // `Ciphers` line in the ssh-config input wins (it is then left out here).
    let user_ciphers = extra.is_some_and(|e| {
        e.lines()
            .any(|l| l.trim_start().to_ascii_lowercase().starts_with("ciphers"))
    });
    if prefer_aes_gcm && !user_ciphers {
        s.push_str("  Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr\n");
    }
    if let Some(extra) = extra {
        s.push_str("# from the ssh-config input\n");
        s.push_str(extra);
        s.push('\n');
    }
    s
}

impl Client {
    /// Writes the key (decrypting a copy when a passphrase is given), known_hosts and config.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn new(
        key: &Secret,
        passphrase: Option<&Secret>,
        known_hosts: &str,
        hosts: &[Host],
        jumps: &[Host],
        extra: Option<&str>,
        connect_timeout: Duration,
        exec: &dyn Exec,
    ) -> Result<Self, SshError> {
        let setup = |e: std::io::Error| SshError::Setup(e.to_string());
        // Short path: control sockets are limited to ~108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("gantry-ssh-")
            .tempdir_in("/tmp")
            .map_err(setup)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(setup)?;
        let keyp = dir.path().join("id");
        let mut k = key.expose().replace("\r\n", "\n").trim().to_string();
        k.push('\n');
        write_private(&keyp, k.as_bytes()).map_err(setup)?;
        if let Some(pass) = passphrase {
            decrypt_key(&keyp, pass, dir.path(), exec).await?;
        }
        let kh = dir.path().join("known_hosts");
        write_private(&kh, known_hosts.as_bytes()).map_err(setup)?;
        let cfg = dir.path().join("config");
        write_private(
            &cfg,
            render_config(hosts, jumps, &keyp, &kh, extra, cpu_has_aes()).as_bytes(),
        )
        .map_err(setup)?;
        let control = dir.path().join("c");
        std::fs::create_dir(&control).map_err(setup)?;
        Ok(Self {
            key: keyp,
            known_hosts: kh,
            config: cfg,
            control,
            dir,
            connect_timeout,
        })
    }

    /// Temp dir (for tests of cleanup).
    #[allow(dead_code)]
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the master connection to host `i`, retrying connection failures (not key problems)
    /// up to 3 times before anything changed.
    pub(crate) async fn connect(&self, i: usize, host: &Host) -> Result<Session, SshError> {
        let mut b = SessionBuilder::default();
        b.config_file(&self.config)
            .keyfile(&self.key)
            .known_hosts_check(KnownHosts::Strict)
            .user_known_hosts_file(&self.known_hosts)
            .control_directory(&self.control)
            .connect_timeout(self.connect_timeout)
            .server_alive_interval(Duration::from_secs(15));
        let mut last = None;
        for attempt in 0..3u32 {
            match b.connect_mux(alias(i)).await {
                Ok(s) => return Ok(s),
                Err(e) => {
                    let jump_log = std::fs::read_to_string(
                        self.dir.path().join(format!("jump-{}.log", alias(i))),
                    )
                    .unwrap_or_default();
                    let err = classify(host, &error_text(&e), &jump_log);
                    if !matches!(err, SshError::Connect { .. }) {
                        return Err(err);
                    }
                    tracing::warn!(
                        "{}: connect attempt {} failed: {err}",
                        host.label(),
                        attempt + 1
                    );
                    last = Some(err);
                    tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| SshError::Connect {
            host: host.label(),
            detail: "unknown".into(),
        }))
    }
}

fn error_text(e: &openssh::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns ssh's words into an error for the user. `jump_log` is what the hop to a jump host
/// logged (empty without jump hosts).
fn classify(host: &Host, text: &str, jump_log: &str) -> SshError {
    let label = host.label();
    let jump_log = jump_log.split_whitespace().collect::<Vec<_>>().join(" ");
    if jump_log.contains("Host key verification failed")
        || jump_log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        return SshError::HostKey {
            host: label,
            detail: format!(
                "a jump host's key is not pinned in known-hosts, or changed (the hop said: {jump_log})"
            ),
        };
    }
    if jump_log.contains("Permission denied") {
        return SshError::Auth {
            host: label,
            user: host.user.clone(),
            detail: format!(
                "the jump host refused the key; it must be in the jump user's authorized_keys (the hop said: {jump_log})"
            ),
        };
    }
    let text = if jump_log.is_empty() {
        text.to_string()
    } else {
        format!("{text} (jump host: {jump_log})")
    };
    if text.contains("Host key verification failed")
        || text.contains("host key is known")
        || text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || text.contains("No matching host key")
    {
        let detail = if text.contains("CHANGED") {
            "the host presented a key different from the pinned one (known-hosts/fingerprint); refusing to connect".to_string()
        } else {
            format!(
                "no pinned key for {label} in known-hosts (unknown hosts are refused; add its line from `ssh-keyscan` checked out of band)"
            )
        };
        return SshError::HostKey {
            host: label,
            detail,
        };
    }
    if text.contains("Permission denied") || text.contains("Too many authentication failures") {
        return SshError::Auth {
            host: label,
            user: host.user.clone(),
            detail: "check that ssh-key's public half is in the user's authorized_keys".into(),
        };
    }
    if text.contains("invalid format")
        || text.contains("Load key")
        || text.contains("incorrect passphrase")
    {
        return SshError::Setup(format!(
            "the ssh-key cannot be loaded ({text}); if it is encrypted, give `passphrase`"
        ));
    }
    SshError::Connect {
        host: label,
        detail: text,
    }
}

/// Decrypts the temp copy of an encrypted key in place. The passphrase reaches `ssh-keygen`
/// through `SSH_ASKPASS` (a script printing an environment variable) — never argv or a file.
async fn decrypt_key(
    key: &Path,
    pass: &Secret,
    dir: &Path,
    exec: &dyn Exec,
) -> Result<(), SshError> {
    let askpass = dir.join("askpass");
    write_private(
        &askpass,
        b"#!/bin/sh\nprintf '%s\\n' \"$GANTRY_SSH_PASSPHRASE\"\n",
    )
    .map_err(|e| SshError::Setup(e.to_string()))?;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| SshError::Setup(e.to_string()))?;
    let cmd = Cmd::new("ssh-keygen")
        .args(["-p", "-q", "-N", "", "-f"])
        .arg(key)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .secret_env("GANTRY_SSH_PASSPHRASE", pass)
        .timeout(Duration::from_secs(20));
    exec.run(&cmd).await.map_err(|e| {
        SshError::Setup(format!(
            "cannot decrypt ssh-key with the given passphrase (wrong passphrase?): {e}"
        ))
    })?;
    Ok(())
}

/// What a stage produced.
#[derive(Clone, Debug, Default)]
pub(crate) struct StageOut {
    pub stderr: String,
    pub facts: Vec<(String, String)>,
}

impl StageOut {
    pub(crate) fn fact(&self, k: &str) -> Option<&str> {
        self.facts
            .iter()
            .rev()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn all(&self, k: &str) -> Vec<&str> {
        self.facts
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Data fed on stdin after (or instead of) the script.
pub(crate) enum Payload<'a> {
    /// A file streamed (the artifact).
    File(&'a Path),
    /// A secret (the `.env`).
    Secret(&'a Secret),
}

fn tail(s: &str, n: usize) -> String {
    let t = s.trim();
    if t.len() <= n {
        return t.to_string();
    }
    let mut start = t.len() - n;
    while !t.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &t[start..])
}

/// One host's connection.
pub(crate) struct Conn {
    pub session: Session,
    pub host: Host,
    pub ctx: Ctx,
}

impl Conn {
    /// Runs one stage script as the `sh -c` argument; a payload (artifact file, `.env` secret)
    /// goes on stdin, otherwise stdin is empty. On timeout or cancel the
    /// stage's remote process group is killed before returning.
    pub(crate) async fn stage(
        &self,
        stage: &str,
        script: &str,
        payload: Option<Payload<'_>>,
        timeout: Duration,
        cancel: &Cancel,
    ) -> Result<StageOut, SshError> {
        let start = Instant::now();
        let label = self.host.label();
        let lost = |detail: String| SshError::Lost {
            host: label.clone(),
            stage: stage.to_string(),
            detail,
        };
        // The script travels in the exec request itself (`sh -c`), never as stdin data sent
        // after it: ssh does not set TCP_NODELAY for non-interactive sessions, so a small stdin
        // write right behind the exec request waits for its ACK (Nagle), one more round trip
        // per stage. Scripts hold no secret (secrets go on stdin), and stay far below the
        // kernel's 128 KiB limit for one argument.
        let mut cmd = self
            .session
            .raw_command(format!("sh -c {}", scripts::q(script)));
        // A file payload is handed to the ssh master as its stdin descriptor (native mux passes
        // the fd): the master reads the artifact itself, with no copy through this process.
        let stdin = match &payload {
            Some(Payload::File(p)) => Stdio::from(
                std::fs::File::open(p)
                    .map_err(|e| lost(format!("opening {}: {e}", p.display())))?,
            ),
            Some(Payload::Secret(_)) => Stdio::piped(),
            None => Stdio::null(),
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().await.map_err(|e| lost(error_text(&e)))?;
        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let work = async {
            let write = async {
                let Some(mut w) = stdin else {
                    return Ok::<(), std::io::Error>(());
                };
                let res = async {
                    if let Some(Payload::Secret(s)) = &payload {
                        w.write_all(s.expose().as_bytes()).await?;
                    }
                    w.flush().await?;
                    w.shutdown().await
                }
                .await;
                drop(w);
                res
            };
            let read_out = async {
                let mut b = Vec::new();
                if let Some(mut r) = stdout {
                    let _ = r.read_to_end(&mut b).await;
                }
                b
            };
            let read_err = async {
                let mut b = Vec::new();
                if let Some(mut r) = stderr {
                    let _ = r.read_to_end(&mut b).await;
                }
                b
            };
            let (w, o, e) = tokio::join!(write, read_out, read_err);
            let status = child.wait().await;
            (w, o, e, status)
        };
        let (w, o, e, status) = tokio::select! {
            r = work => r,
            () = tokio::time::sleep(timeout) => {
                self.kill(stage).await;
                return Err(SshError::Timeout { host: label, stage: stage.into(), secs: timeout.as_secs() });
            }
            () = cancel.cancelled() => {
                self.kill(stage).await;
                return Err(SshError::Cancelled { host: label, stage: stage.into() });
            }
        };
        let stdout = String::from_utf8_lossy(&o).into_owned();
        let stderr = String::from_utf8_lossy(&e).into_owned();
        let out = StageOut {
            facts: scripts::facts(&stdout),
            stderr: stderr.clone(),
        };
        tracing::debug!("{label}: {stage} took {:?}", start.elapsed());
        match status {
            Ok(st) => match st.code() {
                Some(0) => Ok(out),
                Some(code) => Err(SshError::Stage {
                    host: label,
                    stage: stage.into(),
                    status: code,
                    stderr: tail(&stderr, 2000),
                    stdout,
                }),
                None => Err(lost("the remote process was terminated".into())),
            },
            Err(err) => {
                let mut d = error_text(&err);
                if let Err(we) = w {
                    d.push_str(&format!(" (while sending: {we})"));
                }
                if self.session.check().await.is_err() {
                    d.push_str("; the SSH connection is gone");
                }
                Err(lost(d))
            }
        }
    }

    /// Kills a stage's remote process group (best effort, bounded).
    pub(crate) async fn kill(&self, stage: &str) {
        let script = scripts::kill(&self.ctx, stage);
        let fut = async {
            let mut c = self
                .session
                .raw_command(format!("sh -c {}", scripts::q(&script)));
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(child) = c.spawn().await {
                let _ = child.wait().await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(4), fut)
            .await
            .is_err()
        {
            tracing::warn!(
                "{}: could not confirm that `{stage}` was killed",
                self.host.label()
            );
        }
    }

    /// Closes the master (best effort).
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.close()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_pins_keys_and_chains_jump_hosts() {
        let h = Host {
            host: "10.0.0.5".into(),
            user: "deploy".into(),
            port: 22,
            deploy_path: "app".into(),
        };
        let j1 = Host {
            host: "bastion".into(),
            user: "jump".into(),
            port: 2222,
            deploy_path: String::new(),
        };
        let j2 = Host {
            host: "::1".into(),
            user: "jump".into(),
            port: 22,
            deploy_path: String::new(),
        };
        let c = render_config(
            &[h],
            &[j1, j2],
            Path::new("/k/id"),
            Path::new("/k/kh"),
            Some("Host x\n  Port 1"),
            true,
        );
        // the target hops through the last jump host, which hops through the one before
        assert!(c.contains("Host gantry-h0\n  HostName 10.0.0.5\n  Port 22\n  User deploy\n  ProxyCommand ssh -F /k/config -E /k/jump-%n.log -W [%h]:%p gantry-j1\n"), "{c}");
        assert!(c.contains(
            "Host gantry-j1\n  HostName ::1\n  Port 22\n  User jump\n  ProxyCommand ssh -F /k/config -E /k/jump-%n.log -W [%h]:%p gantry-j0\n"
        ));
        assert!(c.contains("Host gantry-j0\n  HostName bastion\n  Port 2222\n  User jump\nHost"));
        assert!(c.contains("StrictHostKeyChecking yes"));
        assert!(c.contains("IdentityFile /k/id"));
        // gantry's `Host *` block comes before the user's content (first value wins in ssh_config)
        assert!(c.find("StrictHostKeyChecking").unwrap() < c.find("Host x").unwrap());
        assert!(c.contains("  Ciphers aes128-gcm@openssh.com,"));
    }

    #[test]
    fn a_ciphers_line_in_the_ssh_config_input_wins() {
        let h = Host {
            host: "h".into(),
            user: "u".into(),
            port: 22,
            deploy_path: "app".into(),
        };
        let p = Path::new("/k");
        let mine = "Host *\n  Ciphers chacha20-poly1305@openssh.com";
        let c = render_config(std::slice::from_ref(&h), &[], p, p, Some(mine), true);
        assert_eq!(c.matches("Ciphers").count(), 1, "{c}");
        let c = render_config(&[h], &[], p, p, None, false);
        assert!(!c.contains("Ciphers"), "{c}");
    }
}
