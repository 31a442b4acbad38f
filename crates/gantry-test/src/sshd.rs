//! Real `sshd` hosts for ssh-release tests: each on its own loopback address (`127.0.0.N`, or
//! `::1`) and a free port, with its own host key, a per-test authorized key, a deploy user
//! `gantry-deploy-N` (created once, idempotently) and `LogLevel VERBOSE` logs in which every
//! accepted authentication (one per SSH handshake) can be counted. Killed on drop.
//!
//! Also [`DelayProxy`], a userspace TCP proxy that adds a fixed one-way delay in each direction
//! (the kernel here has no `netem`), for the 50 ms RTT benchmark.
//!
//! Test-only: spawns processes directly and needs root (sshd privilege separation, `useradd`).

#![allow(clippy::disallowed_methods)] // test harness: spawns sshd/ssh-keygen/useradd directly

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

static USERADD: Mutex<()> = Mutex::new(());

/// A client key pair (ed25519), optionally encrypted.
#[derive(Debug)]
pub struct ClientKey {
    _dir: tempfile::TempDir,
    /// Private key file path.
    pub path: PathBuf,
    /// Private key text.
    pub private: String,
    /// `ssh-ed25519 AAAA… comment` line.
    pub public: String,
}

impl ClientKey {
    /// Generates a key; `passphrase` encrypts it. `None` when `ssh-keygen` is missing.
    pub fn generate(passphrase: Option<&str>) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("id_ed25519");
        let ok = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-C",
                "gantry-test",
                "-N",
                passphrase.unwrap_or(""),
                "-f",
            ])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        Some(Self {
            private: std::fs::read_to_string(&path).ok()?,
            public: std::fs::read_to_string(path.with_extension("pub"))
                .ok()?
                .trim()
                .to_string(),
            path,
            _dir: dir,
        })
    }
}

/// Whether real sshd hosts can run here (root, sshd and ssh present).
pub fn sshd_available() -> Result<(), String> {
    for p in ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"] {
        if !Path::new(p).exists() {
            return Err(format!(
                "{p} is missing (install openssh-server and openssh-client)"
            ));
        }
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("sshd test hosts need root (privilege separation and test users)".into());
    }
    Ok(())
}

/// Creates `gantry-deploy-N` (home `/home/gantry-deploy-N`, shell `/bin/sh`) if missing.
pub fn ensure_user(n: u8) -> Result<String, String> {
    let name = format!("gantry-deploy-{n}");
    let _g = USERADD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // `!` (locked, useradd's default) makes sshd refuse the user without PAM; `*` only disables
    // password logins, which is what a key-only deploy user has.
    let unlock = |name: &str| {
        let _ = Command::new("usermod").args(["-p", "*", name]).output();
    };
    for _ in 0..20 {
        if Command::new("id")
            .arg(&name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        {
            if std::fs::read_to_string("/etc/shadow")
                .is_ok_and(|t| t.lines().any(|l| l.starts_with(&format!("{name}:!"))))
            {
                unlock(&name);
            }
            return Ok(name);
        }
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-d", &format!("/home/{name}"), &name])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            unlock(&name);
            return Ok(name);
        }
        // Another test process may hold /etc/passwd's lock: retry.
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("cannot create user {name}"))
}

fn free_port_on(ip: IpAddr) -> Option<u16> {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

/// One running sshd.
#[derive(Debug)]
pub struct SshHost {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Listen address.
    pub ip: IpAddr,
    /// Listen port.
    pub port: u16,
    /// Deploy user.
    pub user: String,
    /// The user's home.
    pub home: PathBuf,
    host_pub: String,
    config: PathBuf,
}

impl SshHost {
    /// Starts sshd for user `gantry-deploy-<user_n>` on `ip`, trusting `key`.
    pub fn start(ip: IpAddr, user_n: u8, key: &ClientKey) -> Result<Self, String> {
        sshd_available()?;
        let user = ensure_user(user_n)?;
        let dir = tempfile::Builder::new()
            .prefix("gantry-sshd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let set_mode = |p: &Path, m: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
        };
        set_mode(dir.path(), 0o755).map_err(|e| e.to_string())?;
        std::fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
        let hk = dir.path().join("host_ed25519");
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&hk)
            .status()
            .map_err(|e| e.to_string())?
            .success();
        if !ok {
            return Err("ssh-keygen failed".into());
        }
        let host_pub =
            std::fs::read_to_string(hk.with_extension("pub")).map_err(|e| e.to_string())?;
        let ak = dir.path().join("authorized_keys");
        std::fs::write(&ak, format!("{}\n", key.public)).map_err(|e| e.to_string())?;
        set_mode(&ak, 0o644).map_err(|e| e.to_string())?;
        let port = free_port_on(ip).ok_or("no free port")?;
        let config = dir.path().join("sshd_config");
        let listen = match ip {
            IpAddr::V6(a) => format!("[{a}]:{port}"),
            IpAddr::V4(a) => format!("{a}:{port}"),
        };
        std::fs::write(
            &config,
            format!(
                "ListenAddress {listen}\nHostKey {}\nPidFile {}/sshd.pid\nAuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {user}\nLogLevel VERBOSE\nMaxSessions 64\nMaxStartups 200\nPrintMotd no\nAcceptEnv none\nSubsystem sftp internal-sftp\n",
                hk.display(),
                dir.path().display(),
                ak.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut h = Self {
            dir,
            child: None,
            ip,
            port,
            user: user.clone(),
            home: PathBuf::from(format!("/home/{user}")),
            host_pub,
            config,
        };
        h.spawn()?;
        Ok(h)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        if !crate::wait_for_port(SocketAddr::new(self.ip, self.port), Duration::from_secs(10)) {
            return Err(format!(
                "sshd did not listen on {}: {}",
                self.port,
                self.log()
            ));
        }
        Ok(())
    }

    /// The sshd log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// The sshd log text.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Completed SSH authentications (one per handshake) so far.
    pub fn handshakes(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Accepted publickey for"))
            .count()
    }

    /// `user@ip:port` for the `hosts` input.
    pub fn target(&self) -> String {
        match self.ip {
            IpAddr::V6(a) => format!("{}@[{a}]:{}", self.user, self.port),
            IpAddr::V4(a) => format!("{}@{a}:{}", self.user, self.port),
        }
    }

    /// The known_hosts line pinning this host's key.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_pub.split_whitespace();
        let (t, k) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        format!("[{}]:{} {t} {k}", self.ip, self.port)
    }

    /// The SHA256 fingerprint of the host key.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output();
        out.ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .nth(1)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// Kills sshd and every session process it started (simulates a host dying / the link
    /// dropping).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Session processes (`sshd: user@notty`) outlive the listener: kill this listener's
            // whole process tree, and only it — other tests run sshd for the same user at the
            // same time, so a `pkill -u <user>` would cut their connections too.
            let tree = descendants(c.id());
            let _ = c.kill();
            for pid in tree {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = c.wait();
        }
    }

    /// Restarts sshd with `line` added to its config (e.g. `SetEnv PATH=…` to give the deploy
    /// user's sessions other tools).
    pub fn add_config(&mut self, line: &str) -> Result<(), String> {
        let mut text = std::fs::read_to_string(&self.config).map_err(|e| e.to_string())?;
        text.push_str(line);
        text.push('\n');
        std::fs::write(&self.config, text).map_err(|e| e.to_string())?;
        self.restart()
    }

    /// Starts sshd again on the same address, port and keys.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    /// A path under the user's home.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }

    /// Runs `sh -c script` as the deploy user locally (to inspect or set up state).
    pub fn sh(&self, script: &str) -> std::process::Output {
        Command::new("su")
            .args(["-s", "/bin/sh", &self.user, "-c", script])
            .output()
            .expect("su")
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP proxy adding `one_way` delay in each direction without limiting bandwidth.
///
/// Plain threads and blocking sockets (two per direction: a reader stamping each chunk with its
/// due time, a writer sending it then): the cost is the kernel's copies, not an async runtime in
/// an unoptimised test build, so the proxy stands in for a network without eating the CPU the
/// benchmark measures.
#[derive(Debug)]
pub struct DelayProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DelayProxy {
    /// Listens on `listen_ip` (free port) and forwards to `target`.
    pub fn start(
        listen_ip: IpAddr,
        target: SocketAddr,
        one_way: Duration,
    ) -> std::io::Result<Self> {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind(SocketAddr::new(listen_ip, 0))?;
        let addr = listener.local_addr()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(inbound) = inbound else { continue };
                let Ok(outbound) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                for (from, to) in [(&inbound, &outbound), (&outbound, &inbound)] {
                    if let (Ok(r), Ok(w)) = (from.try_clone(), to.try_clone()) {
                        delayed_pipe(r, w, one_way);
                    }
                }
            }
        });
        Ok(Self { addr, stop })
    }
}

/// Copies `r` to `w`, each chunk sent `delay` after it was read; EOF is passed on as a
/// half-close once everything before it was sent.
fn delayed_pipe(mut r: std::net::TcpStream, mut w: std::net::TcpStream, delay: Duration) {
    use std::io::{Read, Write};
    let (tx, rx) = std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((std::time::Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((at, data)) = rx.recv() {
            let now = std::time::Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if w.write_all(&data).is_err() {
                break;
            }
        }
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // wake the accept loop so its thread ends
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Every descendant of `pid` (children first listed before theirs), read with `pgrep -P`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(o) = Command::new("pgrep").args(["-P", &p.to_string()]).output() else {
            continue;
        };
        for child in String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            out.push(child);
            queue.push(child);
        }
    }
    out
}
