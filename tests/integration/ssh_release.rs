//! Integration tests: ssh_release against real `sshd` hosts on 127.0.0.N (started by
//! `gantry_test::sshd`), each with its own deploy user, and a small real Python service with a
//! health endpoint that the restart command (re)starts through `current`.
//!
//! Each test uses its own deploy path (`t-<random>/app`) and service port, so tests can run in
//! parallel on the shared deploy users. Long trials (500 concurrent-deploy races) run only with
//! `GANTRY_LONG_TESTS=1`.

#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    clippy::type_complexity,
    clippy::unwrap_used
)] // tests spawn the binary, inspect hosts directly and print SKIP lines

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use gantry_test::sshd::{ClientKey, SshHost, sshd_available};
use gantry_test::{RunResult, TestContext};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ssh-release")
}

/// Hosts, a client key, a unique deploy path and a service port per host.
struct Lab {
    key: ClientKey,
    hosts: Vec<SshHost>,
    rel: String,
    deploy_path: String,
    ports: Vec<u16>,
    tmp: tempfile::TempDir,
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn unique() -> String {
    format!("{:010x}", random() & 0xff_ffff_ffff)
}

impl Lab {
    fn new(n: usize) -> Option<Self> {
        if let Err(e) = sshd_available() {
            eprintln!("SKIP: {e}");
            return None;
        }
        let key = ClientKey::generate(None)?;
        let base: u8 = 10 + (rand_u8() % 200);
        let mut hosts = Vec::new();
        for i in 0..n {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, base.wrapping_add(i as u8).max(2)));
            match SshHost::start(ip, (i + 1) as u8, &key) {
                Ok(h) => hosts.push(h),
                Err(e) => {
                    eprintln!("SKIP: cannot start sshd: {e}");
                    return None;
                }
            }
        }
        let rel = format!("t-{}", unique());
        let ports = (0..n).map(|_| gantry_test::free_port()).collect();
        Some(Self {
            key,
            hosts,
            deploy_path: format!("{rel}/app"),
            rel,
            ports,
            tmp: tempfile::tempdir().ok()?,
        })
    }

    fn known_hosts(&self) -> String {
        self.hosts
            .iter()
            .map(|h| h.known_hosts_line() + "\n")
            .collect()
    }

    fn targets(&self) -> String {
        self.hosts
            .iter()
            .map(SshHost::target)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A runner-like context for all hosts. The restart command gets the port from a per-host
    /// file written in `shared/port` by the test.
    fn ctx(&self) -> TestContext {
        for (h, p) in self.hosts.iter().zip(&self.ports) {
            let out = h.sh(&format!(
                "mkdir -p ~/{0}/shared && echo {p} > ~/{0}/shared/port",
                self.deploy_path
            ));
            assert!(out.status.success(), "{out:?}");
        }
        let mut c = TestContext::new();
        c.input("hosts", &self.targets())
            .input("ssh-key", &self.key.private)
            .input("known-hosts", &self.known_hosts())
            .input("deploy-path", &self.deploy_path)
            .input(
                "restart-command",
                "sh restart.sh \"$(cat \"$DEPLOY_PATH/shared/port\")\"",
            )
            .input(
                "health-check",
                "curl -fsS \"http://127.0.0.1:$(cat \"$DEPLOY_PATH/shared/port\")/\"",
            )
            .input("health-timeout", "10s")
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_ACTOR", "octocat")
            .env("GITHUB_REPOSITORY", "acme/api");
        c
    }

    /// A directory artifact of the test service with `version`.
    fn artifact(&self, version: &str, broken: bool) -> PathBuf {
        let d = self.tmp.path().join(format!("art-{version}-{}", unique()));
        std::fs::create_dir_all(&d).expect("mkdir");
        for f in ["app.py", "restart.sh", "requirements.txt"] {
            std::fs::copy(fixture().join("app").join(f), d.join(f)).expect("copy");
        }
        std::fs::write(d.join("VERSION"), format!("{version}\n")).expect("write");
        if broken {
            std::fs::write(d.join("BROKEN"), "").expect("write");
        }
        let w = d.join("wheels");
        std::fs::create_dir_all(&w).expect("mkdir");
        for e in std::fs::read_dir(fixture().join("wheels")).expect("wheels") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), w.join(e.file_name())).expect("copy");
        }
        d
    }

    fn base(&self, i: usize) -> PathBuf {
        self.hosts[i].path(&self.deploy_path)
    }

    fn current(&self, i: usize) -> Option<String> {
        std::fs::read_link(self.base(i).join("current"))
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
    }

    fn answer(&self, i: usize) -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-m",
                "3",
                &format!("http://127.0.0.1:{}/", self.ports[i]),
            ])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn rand_u8() -> u8 {
    (random() & 0xff) as u8
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            let pidf = h.path(&self.deploy_path).join("shared/app.pid");
            if let Ok(pid) = std::fs::read_to_string(&pidf) {
                let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            }
            let _ = std::fs::remove_dir_all(h.path(&self.rel));
        }
    }
}

fn run_with(lab: &Lab, f: impl FnOnce(&mut TestContext)) -> gantry_test::RunResult {
    let mut c = lab.ctx();
    f(&mut c);
    c.run("ssh-release")
}

#[test]
fn release_switch_health_history_then_rollback() {
    let Some(lab) = Lab::new(1) else { return };
    let h0 = lab.hosts[0].handshakes();
    let v1 = lab.artifact("1.0.0", false);
    let mut c1 = lab.ctx();
    c1.input("artifact", v1.to_str().unwrap())
        .input("release-id", "r1")
        .input("shared", "logs/")
        .input("dotenv", "SECRET_TOKEN=s3cr3t-value-1\nMODE=prod");
    let r1 = c1.run("ssh-release");
    r1.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r1"));
    assert_eq!(lab.answer(0), "1.0.0");
    assert_eq!(r1.output("release-id"), Some("r1"));
    assert_eq!(
        r1.output("hosts-succeeded"),
        Some(lab.hosts[0].target().as_str())
    );
    assert_eq!(r1.output("hosts-failed"), Some(""));
    // one multiplexed connection: one handshake for the whole run
    let h1 = lab.hosts[0].handshakes();
    assert!(h1 - h0 <= 2, "handshakes in one run: {}", h1 - h0);
    let base = lab.base(0);
    assert!(base.join("releases/r1/.complete").exists());
    assert!(
        std::fs::symlink_metadata(base.join("releases/r1/logs"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let env = base.join("shared/.env");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(base.join("releases/r1/.env"))
            .unwrap()
            .contains("s3cr3t-value-1")
    );
    // the secret never shows in any output or the deploy log
    let visible: String = r1
        .all_output()
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!visible.contains("s3cr3t-value-1"), "{visible}");
    assert!(
        r1.stdout.contains("::add-mask::s3cr3t-value-1"),
        "each dotenv value is masked on its own"
    );
    let log_rel = r1.output("deploy-log").expect("deploy-log output");
    let log: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c1.workspace().join(log_rel)).expect("deploy log"),
    )
    .expect("json");
    assert_eq!(log["hosts"][0]["result"], "released");
    let stages: Vec<&str> = log["hosts"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    for s in [
        "connect",
        "preflight+lock",
        "upload",
        "dotenv",
        "prepare",
        "switch",
        "restart",
        "health",
        "cleanup+history+unlock",
    ] {
        assert!(stages.contains(&s), "{s} missing from {stages:?}");
    }
    assert!(!log.to_string().contains("s3cr3t-value-1"));

    let v2 = lab.artifact("2.0.0", false);
    let r2 = run_with(&lab, |c| {
        c.input("artifact", v2.to_str().unwrap())
            .input("release-id", "r2")
            .input("shared", "logs/")
            .input("dotenv", "SECRET_TOKEN=s3cr3t-value-2\nMODE=prod");
    });
    r2.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r2"));
    assert_eq!(lab.answer(0), "2.0.0");
    assert_eq!(r2.output("previous-release-id"), Some("r1"));
    // the old .env was backed up before the new one was written
    let backups: Vec<_> = std::fs::read_dir(base.join("shared"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".env.bak."))
        .collect();
    assert_eq!(backups.len(), 1);
    assert!(
        std::fs::read_to_string(backups[0].path())
            .unwrap()
            .contains("s3cr3t-value-1")
    );
    let history = std::fs::read_to_string(base.join(".gantry/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    let last: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(last["release"], "r2");
    assert_eq!(last["previous"], "r1");
    assert_eq!(last["actor"], "octocat");
    assert_eq!(last["result"], "released");
    assert!(!base.join(".gantry/lock").exists());

    // rollback: back to r1, service restarted on it
    let rb = run_with(&lab, |c| {
        c.input("rollback", "true");
    });
    rb.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r1"));
    assert_eq!(lab.answer(0), "1.0.0");
    assert_eq!(rb.output("release-id"), Some("r1"));
    // rollback-to an explicit id
    let rt = run_with(&lab, |c| {
        c.input("rollback-to", "r2");
    });
    rt.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r2"));
    assert_eq!(lab.answer(0), "2.0.0");
    // rollback-to something unknown changes nothing
    let bad = run_with(&lab, |c| {
        c.input("rollback-to", "nope");
    });
    bad.assert_exit(1);
    assert!(bad.stdout.contains("nope"), "{}", bad.stdout);
    assert_eq!(lab.current(0).as_deref(), Some("r2"));
}

#[test]
fn failed_health_check_rolls_back_automatically() {
    let Some(lab) = Lab::new(1) else { return };
    let good = lab.artifact("1.0.0", false);
    run_with(&lab, |c| {
        c.input("artifact", good.to_str().unwrap())
            .input("release-id", "good");
    })
    .assert_success();
    assert_eq!(lab.answer(0), "1.0.0");
    let broken = lab.artifact("2.0.0", true);
    let r = run_with(&lab, |c| {
        c.input("artifact", broken.to_str().unwrap())
            .input("release-id", "bad")
            .input("health-timeout", "3s");
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("health check"), "{}", r.stdout);
    assert_eq!(lab.current(0).as_deref(), Some("good"));
    assert_eq!(lab.answer(0), "1.0.0");
    let base = lab.base(0);
    assert!(base.join("releases/bad/.failed").exists());
    assert!(!base.join("releases/bad/.complete").exists());
    assert_eq!(
        r.output("hosts-failed"),
        Some(lab.hosts[0].target().as_str())
    );
    // a later plain rollback never picks the failed release
    let rb = run_with(&lab, |c| {
        c.input("rollback-to", "bad");
    });
    rb.assert_exit(1);
    assert_eq!(lab.current(0).as_deref(), Some("good"));
}

#[test]
fn bad_inputs_fail_clearly_and_touch_no_host() {
    let Some(lab) = Lab::new(1) else { return };
    let art = lab.artifact("1.0.0", false);
    let art_s = art.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<(&str, String)>, &str)> = vec![
        (
            "hosts",
            vec![("hosts", "deploy@bad host:22".into())],
            "bad host",
        ),
        ("hosts", vec![("hosts", "deploy@h:99999".into())], "99999"),
        (
            "ssh-key-file",
            vec![
                ("ssh-key", String::new()),
                ("ssh-key-file", "/nonexistent/key".into()),
            ],
            "/nonexistent/key",
        ),
        (
            "artifact",
            vec![("artifact", "/nonexistent/app.tar.gz".into())],
            "/nonexistent/app.tar.gz",
        ),
        (
            "artifact-sha256",
            vec![("artifact-sha256", "0".repeat(64))],
            "sha256",
        ),
        ("deploy-path", vec![("deploy-path", "/".into())], "/"),
        ("deploy-path", vec![("deploy-path", "~".into())], "home"),
        (
            "keep-releases",
            vec![("keep-releases", "0".into())],
            "keep-releases",
        ),
        (
            "known-hosts",
            vec![("known-hosts", String::new())],
            "known-hosts",
        ),
    ];
    for (input, overrides, needle) in cases {
        let r = run_with(&lab, |c| {
            c.input("artifact", &art_s);
            for (k, v) in &overrides {
                c.input(k, v);
            }
        });
        r.assert_exit(1);
        let errors = r.error_lines().join("\n");
        assert!(errors.contains(needle), "{input}: {errors}\n{}", r.stdout);
        assert!(
            !lab.base(0).join("releases").exists(),
            "{input}: a host was changed"
        );
        assert!(!errors.contains("BEGIN OPENSSH"), "key leaked");
    }
    // the home itself, written as an absolute path, is refused on the host before any write
    let r = run_with(&lab, |c| {
        c.input("artifact", &art_s)
            .input("deploy-path", &lab.hosts[0].home.display().to_string());
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("home directory"), "{}", r.stdout);
    assert!(!lab.hosts[0].home.join("releases").exists());
}

#[test]
fn unknown_host_key_refused_and_wrong_key_explained() {
    let Some(lab) = Lab::new(1) else { return };
    let art = lab.artifact("1.0.0", false);
    let other = ClientKey::generate(None).expect("key");
    // a known_hosts line with some other key for this host
    let fake_line = format!(
        "[{}]:{} {}",
        lab.hosts[0].ip,
        lab.hosts[0].port,
        other
            .public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("known-hosts", &fake_line);
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("host key"), "{}", r.stdout);
    assert_eq!(lab.hosts[0].handshakes(), 0);
    // a host missing from known_hosts
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap()).input(
            "known-hosts",
            "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx9",
        );
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("host key"), "{}", r.stdout);
    // a key the server does not accept
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("ssh-key", &other.private);
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("refused the key"), "{}", r.stdout);
    assert!(!lab.base(0).join("releases").exists());
    // fingerprint instead of known-hosts works
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("known-hosts", "")
            .input("fingerprint", &lab.hosts[0].fingerprint());
    });
    r.assert_success();
}

#[test]
fn encrypted_key_with_passphrase() {
    let Some(lab) = Lab::new(1) else { return };
    let enc = ClientKey::generate(Some("correct horse")).expect("key");
    // trust the encrypted key too
    let ak = lab.hosts[0].log_path().with_file_name("authorized_keys");
    let mut text = std::fs::read_to_string(&ak).unwrap();
    text.push_str(&enc.public);
    text.push('\n');
    std::fs::write(&ak, text).unwrap();
    let art = lab.artifact("1.0.0", false);
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("ssh-key", &enc.private)
            .input("passphrase", "correct horse");
    });
    r.assert_success();
    let visible: String = r
        .all_output()
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!visible.contains("correct horse"), "{visible}");
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("ssh-key", &enc.private)
            .input("passphrase", "wrong")
            .input("release-id", "x2");
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("passphrase"), "{}", r.stdout);
}

#[test]
fn verify_only_then_venv_reuse_and_failing_install() {
    let Some(lab) = Lab::new(1) else { return };
    let v1 = lab.artifact("1.0.0", false);
    let venv = |c: &mut TestContext| {
        c.input("requirements", "requirements.txt")
            .input("pip-args", "--no-index --find-links wheels")
            .input(
                "smoke-command",
                "python -c 'import gantryhello; print(gantryhello.GREETING)'",
            );
    };
    run_with(&lab, |c| {
        venv(c);
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "v1");
    })
    .assert_success();
    let base = lab.base(0);
    assert_eq!(lab.current(0).as_deref(), Some("v1"));
    let venvs = || {
        std::fs::read_dir(base.join("shared/venvs"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(venvs(), 1);

    // verify-only: everything up to the switch, nothing switched or restarted
    let v2 = lab.artifact("2.0.0", false);
    let r = run_with(&lab, |c| {
        venv(c);
        c.input("artifact", v2.to_str().unwrap())
            .input("release-id", "v2")
            .input("verify-only", "true");
    });
    r.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("v1"));
    assert_eq!(lab.answer(0), "1.0.0");
    assert!(base.join("releases/v2/.verified-only").exists());
    assert!(!base.join("releases/v2/.complete").exists());
    // the same requirements reuse the venv: both releases link to the one venv
    assert_eq!(venvs(), 1);
    assert_eq!(
        std::fs::read_link(base.join("releases/v1/.venv")).unwrap(),
        std::fs::read_link(base.join("releases/v2/.venv")).unwrap()
    );
    let log = std::fs::read_to_string(
        lab.hosts[0]
            .path(&lab.deploy_path)
            .join(".gantry/history.jsonl"),
    )
    .unwrap();
    assert!(log.contains("verify-only"));

    // a failing dependency install: previous release untouched, error says so
    let v3 = lab.artifact("3.0.0", false);
    std::fs::write(v3.join("requirements.txt"), "doesnotexist==9.9\n").unwrap();
    let r = run_with(&lab, |c| {
        venv(c);
        c.input("artifact", v3.to_str().unwrap())
            .input("release-id", "v3");
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("pip install"), "{}", r.stdout);
    assert_eq!(lab.current(0).as_deref(), Some("v1"));
    assert_eq!(lab.answer(0), "1.0.0");
    assert!(base.join("releases/v3/.failed").exists());
    assert_eq!(venvs(), 1, "the failed venv was removed");
}

#[test]
fn many_hosts_all_verified_before_any_switch() {
    let Some(mut lab) = Lab::new(3) else { return };
    let v1 = lab.artifact("1.0.0", false);
    let r = run_with(&lab, |c| {
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "m1")
            .input("max-parallel", "2");
    });
    r.assert_success();
    for i in 0..3 {
        assert_eq!(lab.current(i).as_deref(), Some("m1"));
        assert_eq!(lab.answer(i), "1.0.0");
    }
    assert_eq!(r.output("hosts-succeeded").unwrap().split(',').count(), 3);
    assert!(r.summary.contains("m1"), "{}", r.summary);
    // host 2 fails its smoke test: no host switches
    let v2 = lab.artifact("2.0.0", false);
    let third = lab.base(2).join("shared/fail-smoke");
    std::fs::write(&third, "").unwrap();
    let r = run_with(&lab, |c| {
        c.input("artifact", v2.to_str().unwrap())
            .input("release-id", "m2")
            .input(
                "smoke-command",
                "test ! -e \"$DEPLOY_PATH/shared/fail-smoke\"",
            );
    });
    r.assert_exit(1);
    for i in 0..3 {
        assert_eq!(lab.current(i).as_deref(), Some("m1"), "host {i} switched");
        assert_eq!(lab.answer(i), "1.0.0");
        assert!(
            lab.base(i).join("releases/m2/.failed").exists(),
            "host {i}: m2 not marked failed"
        );
    }
    std::fs::remove_file(&third).unwrap();
    // one host unreachable: nothing changes anywhere
    lab.hosts[1].kill();
    let r = run_with(&lab, |c| {
        c.input("artifact", v2.to_str().unwrap())
            .input("release-id", "m3")
            .input("connect-timeout", "3s");
    });
    r.assert_exit(1);
    for i in [0, 2] {
        assert_eq!(lab.current(i).as_deref(), Some("m1"));
        assert!(!lab.base(i).join("releases/m3").exists());
    }
    lab.hosts[1].restart().expect("restart sshd");
    // a health failure on one host after the switch rolls back all hosts (rollback-all), in batches
    let bad_port = lab.base(1).join("shared/port");
    let r = run_with(&lab, |c| {
        // the service cannot start on host 1 (port 1 is not bindable by the deploy user)
        std::fs::write(&bad_port, "1\n").unwrap();
        c.input("artifact", v2.to_str().unwrap())
            .input("release-id", "m4")
            .input("health-timeout", "2s");
    });
    r.assert_exit(1);
    std::fs::write(&bad_port, format!("{}\n", lab.ports[1])).unwrap();
    for i in [0, 2] {
        assert_eq!(
            lab.current(i).as_deref(),
            Some("m1"),
            "host {i} not rolled back"
        );
        assert_eq!(lab.answer(i), "1.0.0");
    }
}

fn long() -> bool {
    std::env::var("GANTRY_LONG_TESTS").is_ok_and(|v| v == "1")
}

#[test]
fn concurrent_deploys_exactly_one_wins() {
    let Some(lab) = Lab::new(1) else { return };
    let art = plain_artifact(&lab, "1.0.0");
    let trials = if long() { 500 } else { 10 };
    for t in 0..trials {
        let mut ctxs = Vec::new();
        for k in 0..2 {
            let mut c = lab.ctx();
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", &format!("c{t}-{k}"))
                .input("smoke-command", "sleep 1")
                .input("health-check", "true")
                .input("restart-command", "true");
            ctxs.push(c);
        }
        let children: Vec<_> = ctxs
            .iter()
            .map(|c| {
                c.command("ssh-release")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        let wins = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            wins,
            1,
            "trial {t}: {wins} winners\n{}",
            outs.iter()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .collect::<String>()
        );
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        let text = String::from_utf8_lossy(&loser.stdout);
        assert!(
            text.contains("holds the lock") && text.contains("run_id=4242"),
            "trial {t}: {text}"
        );
        assert!(
            !lab.base(0).join(".gantry/lock").exists(),
            "trial {t}: lock left behind"
        );
    }
}

fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_during_deploy_releases_lock_and_kills_remote_work() {
    let Some(lab) = Lab::new(1) else { return };
    let v1 = lab.artifact("1.0.0", false);
    run_with(&lab, |c| {
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "s1");
    })
    .assert_success();
    let v2 = lab.artifact("2.0.0", false);
    let mut c = lab.ctx();
    c.input("artifact", v2.to_str().unwrap())
        .input("release-id", "s2")
        .input("smoke-command", "sleep 300");
    let child = c
        .command("ssh-release")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let base = lab.base(0);
    wait_for("the smoke test to start", Duration::from_secs(30), || {
        base.join("releases/s2").exists()
    });
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?} to stop",
        start.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!base.join(".gantry/lock").exists(), "lock left behind");
    assert_eq!(lab.current(0).as_deref(), Some("s1"));
    assert!(base.join("releases/s2/.failed").exists());
    let ps = lab.hosts[0].sh("pgrep -u \"$(id -u)\" -f '^sleep 300$' || true");
    let tree =
        lab.hosts[0].sh("ps -u \"$(id -u)\" -o pid,pgid,sid,args; ls -la /tmp/gantry-* 2>&1");
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "remote smoke test still running:\n{}\n{}",
        String::from_utf8_lossy(&tree.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lab.answer(0), "1.0.0");
}

#[test]
fn sshd_killed_mid_upload_never_switches_and_rerun_recovers() {
    let Some(mut lab) = Lab::new(1) else { return };
    let v1 = lab.artifact("1.0.0", false);
    run_with(&lab, |c| {
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "k1");
    })
    .assert_success();
    // a big, incompressible artifact so the upload takes a while
    let v2 = lab.artifact("2.0.0", false);
    let mut f = std::fs::File::create(v2.join("blob.bin")).unwrap();
    let mut seed = 0x1234_5678_u64;
    let mut buf = vec![0u8; 1 << 20];
    use std::io::Write;
    for _ in 0..64 {
        for b in buf.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        f.write_all(&buf).unwrap();
    }
    drop(f);
    let mut c = lab.ctx();
    c.input("artifact", v2.to_str().unwrap())
        .input("release-id", "k2");
    let child = c
        .command("ssh-release")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let base = lab.base(0);
    wait_for("the upload to start", Duration::from_secs(60), || {
        base.join("releases/.partial-k2").exists()
    });
    lab.hosts[0].kill();
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("upload"), "{text}");
    assert_eq!(lab.current(0).as_deref(), Some("k1"));
    assert!(!base.join("releases/k2/.complete").exists());
    // the host comes back: a re-run cleans the partial upload and releases
    lab.hosts[0].restart().expect("restart");
    let lock = base.join(".gantry/lock");
    if lock.exists() {
        // the lock could not be released while the host was down; clear it as an operator would
        run_with(&lab, |c| {
            c.input("unlock", "true");
        })
        .assert_success();
    }
    run_with(&lab, |c| {
        c.input("artifact", v2.to_str().unwrap())
            .input("release-id", "k2");
    })
    .assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("k2"));
    assert!(!base.join("releases/.partial-k2").exists());
}

#[test]
fn disk_check_refuses_before_upload() {
    let Some(lab) = Lab::new(1) else { return };
    let uid = String::from_utf8_lossy(&lab.hosts[0].sh("id -u").stdout)
        .trim()
        .to_string();
    let mnt = lab.hosts[0].path(&lab.rel).join("small");
    assert!(
        lab.hosts[0]
            .sh(&format!("mkdir -p ~/{}/small", lab.rel))
            .status
            .success()
    );
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size=1m,uid={uid}"), "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let art = lab.artifact("1.0.0", false);
    std::fs::write(art.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("deploy-path", &format!("{}/small/app", lab.rel));
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("not enough free space"), "{}", r.stdout);
    assert!(!mnt.join("app/releases").exists(), "something was written");
    // A small artifact fits, but not the free space the operator asked for.
    let small = lab.artifact("1.0.1", false);
    let r = run_with(&lab, |c| {
        c.input("artifact", small.to_str().unwrap())
            .input("deploy-path", &format!("{}/small/app", lab.rel))
            .input("min-free-space", "2M");
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("not enough free space"), "{}", r.stdout);
    assert!(!mnt.join("app/releases").exists(), "something was written");
    // A size that is not one names the input and the value.
    let r = run_with(&lab, |c| {
        c.input("artifact", small.to_str().unwrap())
            .input("min-free-space", "lots");
    });
    r.assert_exit(1);
    let errors = r.error_lines().join("\n");
    assert!(
        errors.contains("min-free-space") && errors.contains("lots"),
        "{errors}"
    );
}

#[test]
fn dry_run_writes_nothing_and_ipv6_hosts_work() {
    let Some(lab) = Lab::new(1) else { return };
    let art = lab.artifact("1.0.0", false);
    let r = run_with(&lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("dry-run", "true");
    });
    r.assert_success();
    assert!(r.stdout.contains("\"preflight\""), "{}", r.stdout);
    assert!(!lab.base(0).join("releases").exists());
    assert!(!lab.base(0).join(".gantry").exists());
    // IPv6 loopback host
    let key = &lab.key;
    let h6 = match SshHost::start(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 1, key) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("SKIP (ipv6 part): {e}");
            return;
        }
    };
    let mut c = lab.ctx();
    c.input("hosts", &h6.target())
        .input("known-hosts", &h6.known_hosts_line())
        .input("artifact", art.to_str().unwrap())
        .input("release-id", "v6")
        .input("health-check", "true")
        .input("restart-command", "true");
    c.run("ssh-release").assert_success();
    assert!(lab.base(0).join("releases/v6/.complete").exists());
}

/// Benchmark (opt-in: `GANTRY_BENCH=1`, see bench/ssh-release/README.md): a 20 MiB artifact to
/// 1, 8 and 32 hosts behind a 50 ms RTT proxy, gantry vs a sequential loop of per-command `ssh`
/// and `scp` calls (the appleboy/ssh-action + scp-action style), with handshakes counted in
/// the sshd logs.
#[test]
fn bench_ssh_release_vs_per_command_ssh() {
    if std::env::var("GANTRY_BENCH").ok().as_deref() != Some("1") {
        eprintln!("SKIP: benchmark; set GANTRY_BENCH=1 (bench/ssh-release/run.sh)");
        return;
    }
    let counts: Vec<usize> = std::env::var("GANTRY_BENCH_HOSTS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 32]);
    let max = counts.iter().copied().max().unwrap_or(1);
    let Some(lab) = Lab::new(max) else { return };
    let one_way = Duration::from_millis(25);
    let proxies: Vec<gantry_test::sshd::DelayProxy> = lab
        .hosts
        .iter()
        .map(|h| {
            gantry_test::sshd::DelayProxy::start(
                h.ip,
                std::net::SocketAddr::new(h.ip, h.port),
                one_way,
            )
            .expect("proxy")
        })
        .collect();
    // 20 MiB of incompressible data in a tar.gz (GANTRY_BENCH_MIB to change the size: with a small
    // artifact the simulated hosts' own CPU work, which shares this machine's cores, drops out).
    let mib: usize = std::env::var("GANTRY_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = lab.tmp.path().join("bench-art");
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let data: Vec<u8> = (0..mib << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    std::fs::write(dir.join("blob.bin"), &data).unwrap();
    std::fs::write(dir.join("VERSION"), "bench\n").unwrap();
    let tgz = lab.tmp.path().join("bench.tar.gz");
    assert!(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&dir)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let key_file = lab.tmp.path().join("bench_key");
    std::fs::write(&key_file, &lab.key.private).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let kh_file = lab.tmp.path().join("bench_known_hosts");
    let kh: String = lab
        .hosts
        .iter()
        .zip(&proxies)
        .map(|(h, p)| {
            h.known_hosts_line()
                .replace(&format!("]:{} ", h.port), &format!("]:{} ", p.addr.port()))
                + "\n"
        })
        .collect();
    std::fs::write(&kh_file, &kh).unwrap();
    let mut report = String::from(
        "| hosts | gantry ssh-release | per-command ssh loop | ratio | gantry handshakes/host | loop handshakes/host |\n|---|---|---|---|---|---|\n",
    );
    let mut results = Vec::new();
    for &n in &counts {
        let targets: Vec<String> = lab.hosts[..n]
            .iter()
            .zip(&proxies)
            .map(|(h, p)| format!("{}@{}:{}", h.user, h.ip, p.addr.port()))
            .collect();
        let before: Vec<usize> = lab.hosts[..n].iter().map(SshHost::handshakes).collect();
        let mut c = TestContext::new();
        c.input("hosts", &targets.join(","))
            .input("ssh-key", &lab.key.private)
            .input("known-hosts", &kh)
            .input("deploy-path", &format!("{}/bench", lab.rel))
            .input("artifact", tgz.to_str().unwrap())
            .input("release-id", &format!("b{n}"))
            .input("restart-command", "true")
            .input("health-check", "true")
            .input("max-parallel", &n.to_string());
        // GANTRY_BENCH_KEX=curve25519-sha256: what the post-quantum key exchange costs (both ends
        // of every handshake run on this machine's cores).
        if let Ok(kex) = std::env::var("GANTRY_BENCH_KEX") {
            c.input("ssh-config", &format!("KexAlgorithms {kex}"));
        }
        let t = Instant::now();
        let res = c.run("ssh-release");
        let ours = t.elapsed();
        res.assert_success();
        if n == 1 || std::env::var("GANTRY_BENCH_VERBOSE").is_ok() {
            eprintln!("{}", res.stderr);
        }
        let ours_hs: usize = lab.hosts[..n]
            .iter()
            .zip(&before)
            .map(|(h, b)| h.handshakes() - b)
            .sum();
        // the ssh-action style: one fresh connection per command, hosts one after another
        let before: Vec<usize> = lab.hosts[..n].iter().map(SshHost::handshakes).collect();
        let opts = |cmd: &mut std::process::Command, port: u16| {
            cmd.args([
                "-i",
                key_file.to_str().unwrap(),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
            ])
            .arg(format!("UserKnownHostsFile={}", kh_file.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-F",
                "/dev/null",
                "-o",
                "LogLevel=ERROR",
            ]);
            let _ = port;
        };
        let t = Instant::now();
        // GANTRY_BENCH_SKIP_LOOP=1: profile gantry alone (e.g. under `perf record -a`)
        let skip_loop = std::env::var("GANTRY_BENCH_SKIP_LOOP").is_ok();
        for (h, p) in lab.hosts[..n].iter().zip(&proxies) {
            if skip_loop {
                break;
            }
            let port = p.addr.port();
            let dest = format!("{}@{}", h.user, h.ip);
            let base = format!("{}/loop", lab.rel);
            let id = format!("l{n}");
            let steps = [
                format!("mkdir -p {base}/releases/{id} {base}/shared"),
                "SCP".to_string(),
                format!(
                    "tar -xzf /tmp/bench-{}.tgz -C {base}/releases/{id} && rm -f /tmp/bench-{}.tgz",
                    h.user, h.user
                ),
                format!(
                    "ln -sfn releases/{id} {base}/current.tmp && mv -T {base}/current.tmp {base}/current"
                ),
                "true".to_string(),
                "true".to_string(),
                format!("cd {base}/releases && ls -1t | tail -n +6 | xargs -r rm -rf"),
            ];
            for s in steps {
                let ok = if s == "SCP" {
                    let mut cmd = std::process::Command::new("scp");
                    opts(&mut cmd, port);
                    cmd.args(["-q", "-P", &port.to_string()])
                        .arg(&tgz)
                        .arg(format!("{dest}:/tmp/bench-{}.tgz", h.user));
                    cmd.status().unwrap().success()
                } else {
                    let mut cmd = std::process::Command::new("ssh");
                    opts(&mut cmd, port);
                    cmd.args(["-p", &port.to_string(), &dest, &s]);
                    cmd.status().unwrap().success()
                };
                assert!(ok, "loop step failed: {s}");
            }
        }
        let theirs = t.elapsed();
        let their_hs: usize = lab.hosts[..n]
            .iter()
            .zip(&before)
            .map(|(h, b)| h.handshakes() - b)
            .sum();
        let line = format!(
            "| {n} | {:.2} s | {:.2} s | {:.1}x | {:.1} | {:.1} |\n",
            ours.as_secs_f64(),
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64(),
            ours_hs as f64 / n as f64,
            their_hs as f64 / n as f64
        );
        eprint!("{line}");
        report.push_str(&line);
        results.push((n, ours, theirs, ours_hs as f64 / n as f64));
    }
    eprintln!("\n{report}");
    if let Ok(out) = std::env::var("GANTRY_BENCH_OUT") {
        let _ = std::fs::write(out, &report);
    }
    for (n, _, _, hs) in &results {
        assert!(*hs <= 2.0, "{n} hosts: {hs} handshakes per host");
    }
}

/// `artifact` from a URL (with sha256) and from `actions-artifact:<name>` through a GitHub API
/// stand-in (python's http.server serving the API paths as files on loopback).
#[test]
fn artifacts_from_url_and_github_actions_api() {
    let Some(lab) = Lab::new(1) else { return };
    if !gantry_test::have_program("python3") {
        eprintln!("SKIP: python3 missing");
        return;
    }
    let web = lab.tmp.path().join("web");
    let art = lab.artifact("7.0.0", false);
    let tgz = web.join("app.tar.gz");
    std::fs::create_dir_all(&web).unwrap();
    assert!(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&art)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let sum = {
        let o = std::process::Command::new("sha256sum")
            .arg(&tgz)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    // the Actions artifact: a zip holding the tarball, as upload-artifact stores it
    let api = web.join("api/repos/acme/api/actions");
    std::fs::create_dir_all(api.join("artifacts/123")).unwrap();
    std::fs::create_dir_all(api.join("runs/4242")).unwrap();
    assert!(std::process::Command::new("python3")
        .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1],'w'); z.write(sys.argv[2],'app.tar.gz'); z.close()"])
        .arg(api.join("artifacts/123/zip"))
        .arg(&tgz)
        .status()
        .unwrap()
        .success());
    std::fs::write(
        api.join("runs/4242/artifacts"),
        r#"{"total_count":1,"artifacts":[{"id":123,"name":"app","expired":false}]}"#,
    )
    .unwrap();
    let port = gantry_test::free_port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _srv = Kill(
        std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(&web)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(gantry_test::wait_for_port(
        ([127, 0, 0, 1], port).into(),
        Duration::from_secs(10)
    ));
    let url = format!("http://127.0.0.1:{port}/app.tar.gz");
    // wrong checksum: refused before any host is touched
    let r = run_with(&lab, |c| {
        c.input("artifact", &url)
            .input("artifact-sha256", &"ab".repeat(32));
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("sha256"), "{}", r.stdout);
    assert!(!lab.base(0).join("releases").exists());
    run_with(&lab, |c| {
        c.input("artifact", &url)
            .input("artifact-sha256", &sum)
            .input("release-id", "url1");
    })
    .assert_success();
    assert_eq!(lab.answer(0), "7.0.0");
    let r = run_with(&lab, |c| {
        c.input("artifact", "actions-artifact:app")
            .input("release-id", "gh1")
            .input("github-token", "ghs_testtoken123")
            .env("GITHUB_API_URL", &format!("http://127.0.0.1:{port}/api"));
    });
    r.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("gh1"));
    assert_eq!(lab.answer(0), "7.0.0");
}

/// sshd (and every session) dies right after the switch, during the restart: the run fails naming
/// the host, `current` points to a complete release (never a partial one), and after the host
/// comes back an `unlock` plus a rollback restore the old release.
#[test]
fn sshd_killed_mid_switch_leaves_a_complete_current() {
    let Some(mut lab) = Lab::new(1) else { return };
    let v1 = lab.artifact("1.0.0", false);
    run_with(&lab, |c| {
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "w1");
    })
    .assert_success();
    let v2 = lab.artifact("2.0.0", false);
    let mut c = lab.ctx();
    c.input("artifact", v2.to_str().unwrap())
        .input("release-id", "w2")
        .input("restart-command", "sleep 30");
    let child = c
        .command("ssh-release")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for("the switch", Duration::from_secs(60), || {
        lab.current(0).as_deref() == Some("w2")
    });
    lab.hosts[0].kill();
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&lab.hosts[0].target()), "{text}");
    let base = lab.base(0);
    let cur = lab.current(0).expect("current");
    assert!(
        base.join("releases").join(&cur).join(".complete").exists(),
        "current -> {cur} is not complete"
    );
    lab.hosts[0].restart().expect("restart");
    run_with(&lab, |c| {
        c.input("unlock", "true");
    })
    .assert_success();
    run_with(&lab, |c| {
        c.input("rollback-to", "w1");
    })
    .assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("w1"));
    assert_eq!(lab.answer(0), "1.0.0");
}

/// keep-releases counts only complete releases, never removes current or previous, and
/// garbage-collects failed ones (keeping the newest failed one for inspection).
#[test]
fn keep_releases_counts_only_complete_releases() {
    let Some(lab) = Lab::new(1) else { return };
    let art = lab.artifact("1.0.0", false);
    let deploy = |id: &str, smoke: &str| {
        run_with(&lab, |c| {
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", id)
                .input("keep-releases", "2")
                .input("smoke-command", smoke)
                .input("restart-command", "true")
                .input("health-check", "true");
        })
    };
    deploy("k1", "true").assert_success();
    deploy("k2", "true").assert_success();
    deploy("f1", "false").assert_exit(1);
    deploy("f2", "false").assert_exit(1);
    deploy("k3", "true").assert_success();
    let base = lab.base(0);
    let mut left: Vec<String> = std::fs::read_dir(base.join("releases"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // k3 (current), k2 (previous and within the newest two complete), f2 (newest failed)
    assert_eq!(left, vec!["f2", "k2", "k3"], "{left:?}");
    assert_eq!(lab.current(0).as_deref(), Some("k3"));
    // rollback goes to k2, never to a failed release
    run_with(&lab, |c| {
        c.input("rollback", "true")
            .input("restart-command", "true")
            .input("health-check", "true");
    })
    .assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("k2"));
}

/// Cleanup never removes a release a running process still uses (its working directory is
/// inside it), and removes it on the first deploy after that process is gone.
#[test]
fn keep_releases_spares_a_release_still_in_use() {
    let Some(lab) = Lab::new(1) else { return };
    let art = lab.artifact("1.0.0", false);
    let deploy = |id: &str| {
        run_with(&lab, |c| {
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", id)
                .input("keep-releases", "1")
                .input("restart-command", "true")
                .input("health-check", "true");
        })
    };
    deploy("u1").assert_success();
    deploy("u2").assert_success();
    let base = lab.base(0);
    let pidfile = base.join("inuse.pid");
    let host = &lab.hosts[0];
    // a long-running process of the deploy user working in releases/u1
    let out = host.sh(&format!(
        "cd {}/releases/u1 && setsid sh -c 'echo $$ > {}; exec sleep 297' </dev/null >/dev/null 2>&1 &",
        base.display(),
        pidfile.display()
    ));
    assert!(out.status.success(), "{out:?}");
    let t = Instant::now();
    while !pidfile.exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    // kill it even when an assertion below fails (the deploy user is shared by other tests)
    struct KillOnDrop(String);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").arg(&self.0).status();
        }
    }
    let guard = KillOnDrop(pid);
    deploy("u3").assert_success();
    let kept = |n: &str| base.join("releases").join(n).exists();
    // u3 current, u2 previous, u1 in use: all kept although keep-releases is 1
    assert!(kept("u1") && kept("u2") && kept("u3"));
    drop(guard);
    std::thread::sleep(Duration::from_millis(200));
    deploy("u4").assert_success();
    assert!(
        !kept("u1"),
        "u1 is no longer in use and beyond keep-releases"
    );
    assert!(!kept("u2") && kept("u3") && kept("u4"));
}

/// A small directory artifact (no venv) for the multi-host and switch tests.
fn plain_artifact(lab: &Lab, version: &str) -> PathBuf {
    let d = lab.tmp.path().join(format!("plain-{version}-{}", unique()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("VERSION"), format!("{version}\n")).unwrap();
    d
}

/// Like `run_with`, with a no-op restart and a health check that fails on hosts holding a
/// `shared/fail-health` marker.
fn run_plain(lab: &Lab, art: &Path, id: &str, f: impl FnOnce(&mut TestContext)) -> RunResult {
    run_with(lab, |c| {
        c.input("artifact", art.to_str().unwrap())
            .input("release-id", id)
            .input("restart-command", "true")
            .input(
                "health-check",
                "test ! -e \"$DEPLOY_PATH/shared/fail-health\"",
            )
            .input("health-timeout", "1s");
        f(c);
    })
}

/// A host whose `mv` has no `-T` (old BusyBox, the BSDs): the switch still renames the temp
/// link over `current` (never moves it into the directory `current` points to).
#[test]
fn switch_is_a_rename_when_mv_lacks_dash_t() {
    let Some(mut lab) = Lab::new(1) else { return };
    let bin = lab.hosts[0].path(&format!("{}/bin", lab.rel));
    std::fs::create_dir_all(&bin).unwrap();
    let log = bin.join("mv.log");
    std::fs::write(
        bin.join("mv"),
        format!(
            "#!/bin/sh\necho \"mv $*\" >> {}\nfor a in \"$@\"; do case \"$a\" in -T|-h) echo \"mv: invalid option -- '${{a#-}}'\" >&2; exit 1 ;; esac; done\nexec /bin/mv \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("mv"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", lab.hosts[0].user)])
        .arg(lab.hosts[0].path(&lab.rel))
        .status();
    lab.hosts[0]
        .add_config(&format!(
            "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin",
            bin.display()
        ))
        .expect("restart sshd");
    for id in ["m1", "m2"] {
        let art = plain_artifact(&lab, id);
        run_plain(&lab, &art, id, |_| {}).assert_success();
        let cur = lab.base(0).join("current");
        assert!(
            std::fs::symlink_metadata(&cur)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(lab.current(0).as_deref(), Some(id));
    }
    // the wrapper was used and refused -T; nothing was moved into a release directory
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("mv -T"), "{calls}");
    for id in ["m1", "m2"] {
        let inside: Vec<_> = std::fs::read_dir(lab.base(0).join("releases").join(id))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".current"))
            .collect();
        assert!(inside.is_empty(), "{inside:?}");
    }
    // rollback uses the same switch
    run_plain(&lab, &plain_artifact(&lab, "x"), "unused", |c| {
        c.input("rollback", "true");
    })
    .assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("m1"));
}

/// A host reached through a bastion (`jump-hosts`): the key and the pinned host keys reach the
/// hop through the generated ssh config; one handshake on each; an unpinned bastion is refused.
#[test]
fn jump_host_reaches_the_target_with_pinned_keys_for_both_hops() {
    let Some(lab) = Lab::new(2) else { return };
    let (bastion, target) = (&lab.hosts[0], &lab.hosts[1]);
    let art = plain_artifact(&lab, "j1");
    let before = (bastion.handshakes(), target.handshakes());
    let res = run_plain(&lab, &art, "j1", |c| {
        c.input("hosts", &target.target())
            .input("jump-hosts", &bastion.target());
    });
    res.assert_success();
    assert_eq!(lab.current(1).as_deref(), Some("j1"));
    assert!(
        lab.current(0).is_none(),
        "nothing is deployed on the bastion"
    );
    assert_eq!(bastion.handshakes() - before.0, 1, "{}", bastion.log());
    assert_eq!(target.handshakes() - before.1, 1);
    // the bastion's key is not pinned: refused before anything changes on the target
    let res = run_plain(&lab, &art, "j2", |c| {
        c.input("hosts", &target.target())
            .input("jump-hosts", &bastion.target())
            .input("known-hosts", &(target.known_hosts_line() + "\n"));
    });
    res.assert_exit(1);
    assert!(
        res.stdout.contains("host key") || res.stdout.contains("Host key"),
        "{}",
        res.stdout
    );
    assert_eq!(lab.current(1).as_deref(), Some("j1"));
    assert!(!lab.base(1).join("releases/j2").exists());
}

/// `hosts-file` as YAML with per-host overrides (user, port, deploy-path) next to plain
/// entries; an unknown key is an input error naming it.
#[test]
fn hosts_file_yaml_with_per_host_overrides() {
    let Some(lab) = Lab::new(3) else { return };
    let art = plain_artifact(&lab, "h1");
    let other = format!("{}/elsewhere", lab.rel);
    for h in &lab.hosts {
        let out = h.sh(&format!(
            "mkdir -p ~/{other}/shared ~/{}/shared",
            lab.deploy_path
        ));
        assert!(out.status.success());
    }
    let h = &lab.hosts;
    let yaml = format!(
        "hosts:\n  - {}\n  - host: {}\n    user: {}\n    port: {}\n    deploy-path: {other}\n  - host: \"{}:{}\"\n    user: {}\n",
        h[0].target(),
        h[1].ip,
        h[1].user,
        h[1].port,
        h[2].ip,
        h[2].port,
        h[2].user
    );
    let file = lab.tmp.path().join("hosts.yml");
    std::fs::write(&file, &yaml).unwrap();
    let res = run_plain(&lab, &art, "h1", |c| {
        c.input("hosts", "")
            .input("hosts-file", file.to_str().unwrap());
    });
    res.assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("h1"));
    assert!(lab.current(1).is_none(), "host 2 deploys to its own path");
    assert!(
        h[1].path(&other).join("releases/h1/.complete").exists(),
        "{yaml}"
    );
    assert_eq!(lab.current(2).as_deref(), Some("h1"));
    let succeeded = res
        .outputs
        .get("hosts-succeeded")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        succeeded
            .split([',', '\n'])
            .filter(|s| !s.trim().is_empty())
            .count(),
        3,
        "{succeeded}"
    );
    // a typo in a key is refused, naming the key; nothing is deployed
    std::fs::write(&file, format!("- host: {}\n  deploy_paht: x\n", h[0].ip)).unwrap();
    let res = run_plain(&lab, &art, "h2", |c| {
        c.input("hosts", "")
            .input("hosts-file", file.to_str().unwrap());
    });
    res.assert_exit(1);
    assert!(res.stdout.contains("deploy_paht"), "{}", res.stdout);
    assert!(!lab.base(0).join("releases/h2").exists());
}

/// Four hosts switched in batches of one; host 3's health check fails after its switch. The
/// three `on-failure` policies, read back from every host's `current` and the outputs.
#[test]
fn on_failure_policies_after_a_failed_switch() {
    let Some(lab) = Lab::new(4) else { return };
    let v1 = plain_artifact(&lab, "v1");
    let v2 = plain_artifact(&lab, "v2");
    let marker = lab.base(2).join("shared/fail-health");
    let label = |i: usize| {
        let h = &lab.hosts[i];
        format!("{}@{}:{}", h.user, h.ip, h.port)
    };
    let mut round = 0;
    let mut deploy = |policy: &str| {
        round += 1;
        let _ = std::fs::remove_file(&marker);
        run_plain(&lab, &v1, &format!("a{round}"), |_| {}).assert_success();
        std::fs::write(&marker, "").unwrap();
        let (policy, auto) = policy.split_once('+').unwrap_or((policy, "true"));
        let res = run_plain(&lab, &v2, &format!("b{round}"), |c| {
            c.input("batch-size", "1")
                .input("on-failure", policy)
                .input("rollback-on-failure", auto);
        });
        res.assert_exit(1);
        let currents: Vec<String> = (0..4).map(|i| lab.current(i).unwrap_or_default()).collect();
        (res, currents, round)
    };

    // rollback-all (the default): the two hosts already switched go back too; host 4 never moves
    let (res, cur, r) = deploy("rollback-all");
    let a = format!("a{r}");
    assert_eq!(
        cur,
        vec![a.clone(), a.clone(), a.clone(), a.clone()],
        "{}",
        res.stdout
    );
    assert!(res.stdout.contains("Switch batch 1/4"), "{}", res.stdout);
    assert!(!res.stdout.contains("Switch batch 4/4"), "{}", res.stdout);
    let failed = res.outputs["hosts-failed"].clone();
    assert!(failed.contains(&label(2)), "{failed}");
    assert!(lab.base(0).join(format!("releases/b{r}/.failed")).exists());

    // stop: no further batch; the hosts switched before the failure keep the new release
    let (res, cur, r) = deploy("stop");
    let (a, b) = (format!("a{r}"), format!("b{r}"));
    assert_eq!(
        cur,
        vec![b.clone(), b.clone(), a.clone(), a.clone()],
        "{}",
        res.stdout
    );
    assert!(res.outputs["hosts-failed"].contains(&label(2)));
    assert!(res.outputs["hosts-succeeded"].contains(&label(0)));
    assert!(!res.outputs["hosts-succeeded"].contains(&label(3)));

    // continue: every other host is switched; the step still fails naming host 3
    let (res, cur, r) = deploy("continue");
    let (a, b) = (format!("a{r}"), format!("b{r}"));
    assert_eq!(
        cur,
        vec![b.clone(), b.clone(), a.clone(), b.clone()],
        "{}",
        res.stdout
    );
    assert!(res.outputs["hosts-failed"].contains(&label(2)));
    assert!(res.outputs["hosts-succeeded"].contains(&label(3)));
    assert!(res.stdout.contains("::error"), "{}", res.stdout);

    // rollback-all with rollback-on-failure: false: nothing is switched back (the failed host
    // stays on the new release, so rolling back the others would split the fleet): a stop
    let (res, cur, r) = deploy("rollback-all+false");
    let (a, b) = (format!("a{r}"), format!("b{r}"));
    assert_eq!(
        cur,
        vec![b.clone(), b.clone(), b.clone(), a.clone()],
        "{}",
        res.stdout
    );
    assert!(res.stdout.contains("stays live"), "{}", res.stdout);
}

/// `rollback` twice goes one release further back each time (Capistrano's and Deployer's
/// behaviour), then refuses clearly; `rollback-to` an incomplete release is refused naming it.
#[test]
fn repeated_rollbacks_walk_back_then_refuse() {
    let Some(lab) = Lab::new(1) else { return };
    for id in ["r1", "r2", "r3"] {
        run_plain(&lab, &plain_artifact(&lab, id), id, |_| {}).assert_success();
    }
    let art = plain_artifact(&lab, "unused");
    let rollback = |to: Option<&str>| {
        run_plain(&lab, &art, "unused", |c| {
            c.input("rollback", "true");
            if let Some(t) = to {
                c.input("rollback-to", t);
            }
        })
    };
    rollback(None).assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r2"));
    rollback(None).assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r1"));
    let res = rollback(None);
    res.assert_exit(1);
    assert!(
        res.stdout.contains("no complete release to roll back to"),
        "{}",
        res.stdout
    );
    assert_eq!(lab.current(0).as_deref(), Some("r1"));
    // forward again to a named complete release
    rollback(Some("r3")).assert_success();
    assert_eq!(lab.current(0).as_deref(), Some("r3"));
    // an incomplete release is never a target
    std::fs::remove_file(lab.base(0).join("releases/r2/.complete")).unwrap();
    let res = rollback(Some("r2"));
    res.assert_exit(1);
    assert!(res.stdout.contains("r2"), "{}", res.stdout);
    assert_eq!(lab.current(0).as_deref(), Some("r3"));
}

/// `health-url` is fetched from the host: with curl, and with python3 on a host that has neither
/// curl nor wget; a failing URL rolls back either way.
#[test]
fn health_url_is_fetched_from_the_host_with_curl_or_python() {
    let Some(mut lab) = Lab::new(1) else { return };
    let url = format!("http://127.0.0.1:{}/", lab.ports[0]);
    let deploy = |lab: &Lab, version: &str, broken: bool, id: &str| {
        let art = lab.artifact(version, broken);
        run_with(lab, |c| {
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", id)
                .input("health-check", "")
                .input("health-url", &url)
                .input("health-timeout", "2s");
        })
    };
    deploy(&lab, "1.0.0", false, "u1").assert_success();
    assert_eq!(lab.answer(0), "1.0.0");
    let r = deploy(&lab, "2.0.0", true, "u2");
    r.assert_exit(1);
    assert!(
        r.stdout.contains("health check") && r.stdout.contains("error: 500"),
        "curl's reason is shown: {}",
        r.stdout
    );
    assert_eq!(lab.current(0).as_deref(), Some("u1"), "rolled back");
    assert_eq!(lab.answer(0), "1.0.0");

    // A host without curl and wget: every other tool, through a PATH of links.
    let bin = lab.hosts[0].path(&format!("{}/nocurl-bin", lab.rel));
    std::fs::create_dir_all(&bin).unwrap();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            if name == "curl" || name == "wget" || bin.join(&name).exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(e.path(), bin.join(&name));
        }
    }
    lab.hosts[0]
        .add_config(&format!("SetEnv PATH={}", bin.display()))
        .expect("restart sshd");
    deploy(&lab, "3.0.0", false, "u3").assert_success();
    assert_eq!(lab.answer(0), "3.0.0");
    let r = deploy(&lab, "4.0.0", true, "u4");
    r.assert_exit(1);
    assert!(
        r.stdout.contains("HTTP Error 500"),
        "python3's reason is shown: {}",
        r.stdout
    );
    assert_eq!(lab.current(0).as_deref(), Some("u3"), "rolled back");
    assert_eq!(lab.answer(0), "3.0.0");
}

/// `script` runs in the new release before the switch (`current` still the old one), `post-script`
/// in `current` after the health check; a failing `script` leaves `current` alone.
#[test]
fn script_hooks_run_before_the_switch_and_after_the_health_check() {
    let Some(lab) = Lab::new(1) else { return };
    let hook = |lab: &Lab, id: &str, script: &str| {
        let art = lab.artifact(id, false);
        run_with(lab, |c| {
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", id)
                .input(
                    "script",
                    &format!(
                        "echo \"$RELEASE_ID saw $(basename \"$(readlink \"$DEPLOY_PATH/current\" || echo none)\") in $(pwd -P)\" > hook.out\n{script}"
                    ),
                )
                .input(
                    "post-script",
                    "echo \"$RELEASE_ID post in $(pwd -P)\" >> \"$DEPLOY_PATH/shared/post.log\"",
                );
        })
    };
    let base = lab.base(0);
    hook(&lab, "h1", "true").assert_success();
    hook(&lab, "h2", "true").assert_success();
    let seen = std::fs::read_to_string(base.join("releases/h2/hook.out")).unwrap();
    let real = std::fs::canonicalize(base.join("releases/h2")).unwrap();
    assert_eq!(
        seen.trim(),
        format!("h2 saw h1 in {}", real.display()),
        "the hook ran in the new release while current was still h1"
    );
    let post = std::fs::read_to_string(base.join("shared/post.log")).unwrap();
    assert_eq!(
        post,
        format!(
            "h1 post in {}\nh2 post in {}\n",
            std::fs::canonicalize(base.join("releases/h1"))
                .unwrap()
                .display(),
            real.display()
        )
    );
    // A failing hook: nothing switches, the release is marked failed, no post hook.
    let r = hook(&lab, "h3", "echo migration failed >&2; exit 3");
    r.assert_exit(1);
    assert!(r.stdout.contains("migration failed"), "{}", r.stdout);
    assert_eq!(lab.current(0).as_deref(), Some("h2"));
    assert!(!base.join("releases/h3/.complete").exists());
    assert_eq!(
        std::fs::read_to_string(base.join("shared/post.log"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

/// A held lock: `lock-timeout` bounds the wait, the error names the holder, and a deploy that is
/// still waiting when the lock goes away proceeds.
#[test]
fn lock_timeout_bounds_the_wait_and_a_freed_lock_lets_the_waiter_in() {
    let Some(lab) = Lab::new(1) else { return };
    let deploy = |lab: &Lab, id: &str, wait: &str| {
        let art = lab.artifact(id, false);
        run_with(lab, |c| {
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", id)
                .input("lock-timeout", wait);
        })
    };
    deploy(&lab, "l1", "5s").assert_success();
    let lock = lab.base(0).join(".gantry/lock");
    std::fs::create_dir(&lock).unwrap();
    std::fs::write(lock.join("owner"), "run 999 by alice (deploy of l0)\n").unwrap();
    let user = &lab.hosts[0].user;
    let _ = std::process::Command::new("chown")
        .args(["-R", &format!("{user}:{user}")])
        .arg(&lock)
        .status();
    let t = std::time::Instant::now();
    let r = deploy(&lab, "l2", "2s");
    r.assert_exit(1);
    let waited = t.elapsed();
    assert!(
        r.error_lines().join("\n").contains("alice"),
        "the holder is named: {}",
        r.stdout
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(15),
        "waited {waited:?}"
    );
    assert_eq!(lab.current(0).as_deref(), Some("l1"));
    assert!(
        lock.join("owner").exists(),
        "someone else's lock is left alone"
    );

    // The holder finishes while we wait: we go ahead.
    let freer = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            std::fs::remove_dir_all(&lock).unwrap();
        })
    };
    deploy(&lab, "l3", "30s").assert_success();
    freer.join().unwrap();
    assert_eq!(lab.current(0).as_deref(), Some("l3"));
    assert!(!lock.exists(), "our own lock is released");
}

/// `command-timeout` ends a stage that hangs (its remote processes killed, the release marked
/// failed, the lock released); `timeout` bounds the whole run the same way.
#[test]
fn command_and_overall_timeouts_kill_the_remote_work_and_switch_nothing() {
    let Some(lab) = Lab::new(1) else { return };
    let v1 = lab.artifact("1.0.0", false);
    run_with(&lab, |c| {
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "t1");
    })
    .assert_success();
    let base = lab.base(0);
    for (input, id, marker) in [
        ("command-timeout", "t2", "sleep 271"),
        ("timeout", "t3", "sleep 272"),
    ] {
        let art = lab.artifact(id, false);
        let start = Instant::now();
        let r = run_with(&lab, |c| {
            c.input("artifact", art.to_str().unwrap())
                .input("release-id", id)
                .input("smoke-command", marker)
                .input(input, "3s");
        });
        let took = start.elapsed();
        r.assert_exit(1);
        assert!(
            took < Duration::from_secs(20),
            "{input}: took {took:?}\n{}",
            r.stdout
        );
        assert!(
            r.stdout.to_lowercase().contains("timed out")
                || r.stdout.to_lowercase().contains("timeout"),
            "{input}: the reason is said: {}",
            r.stdout
        );
        assert_eq!(lab.current(0).as_deref(), Some("t1"), "{input}");
        assert!(!base.join(format!("releases/{id}/.complete")).exists());
        assert!(!base.join(".gantry/lock").exists(), "{input}: lock left");
        let ps = lab.hosts[0].sh(&format!("pgrep -u \"$(id -u)\" -f '^{marker}$' || true"));
        assert!(
            String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
            "{input}: the remote `{marker}` still runs"
        );
    }
    assert_eq!(lab.answer(0), "1.0.0");
}

/// `rollback-on-failure: false` leaves the new release live after a failed health check (the
/// operator decides), and says so; `dotenv-path` puts the `.env` where asked, mode 0600.
#[test]
fn no_automatic_rollback_when_disabled_and_dotenv_path() {
    let Some(lab) = Lab::new(1) else { return };
    let v1 = lab.artifact("1.0.0", false);
    run_with(&lab, |c| {
        c.input("artifact", v1.to_str().unwrap())
            .input("release-id", "n1")
            .input("dotenv", "TOKEN=dotenv-secret-77")
            .input("dotenv-path", "config/app.env");
    })
    .assert_success();
    let base = lab.base(0);
    let env = base.join("config/app.env");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap().trim(),
        "TOKEN=dotenv-secret-77"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bad = lab.artifact("2.0.0", true);
    let r = run_with(&lab, |c| {
        c.input("artifact", bad.to_str().unwrap())
            .input("release-id", "n2")
            .input("health-timeout", "2s")
            .input("rollback-on-failure", "false");
    });
    r.assert_exit(1);
    assert!(r.stdout.contains("health check"), "{}", r.stdout);
    assert_eq!(
        lab.current(0).as_deref(),
        Some("n2"),
        "no automatic rollback"
    );
    assert!(
        r.stdout.contains("stays live") && r.stdout.contains("--rollback"),
        "the operator is told: {}",
        r.stdout
    );
    assert!(!r.all_output().contains("dotenv-secret-77"));
}
