//! `gantry-demo-env`: starts the local components the README's demo pipeline (`demo/run`) talks
//! to — a real `docker-registry`, a real `sshd` host, the fake Slack API and the fake Kubernetes
//! API — on loopback, writes their addresses and credentials as `KEY=VALUE` lines to the file given
//! as the first argument, and keeps them running until SIGTERM/SIGINT.
//!
//! Demo plumbing only: it decides nothing about how gantry deploys.

#![allow(clippy::print_stderr, clippy::disallowed_methods)] // a developer tool: reports to the terminal

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use gantry_test::kube::FakeKube;
use gantry_test::registry::{Registry, RegistryKind};
use gantry_test::slack::{BOT_TOKEN, FakeSlack};
use gantry_test::sshd::{ClientKey, SshHost, sshd_available};

fn main() {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gantry-demo-env <env-file>");
        std::process::exit(2);
    };
    let dir = out.parent().map(PathBuf::from).unwrap_or_default();
    let mut env = String::new();

    let registry =
        Registry::start(RegistryKind::Plain).unwrap_or_else(|e| fail("docker-registry", &e));
    let _ = writeln!(env, "DEMO_REGISTRY={}", registry.host);

    let kube = FakeKube::start();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig(None))
        .unwrap_or_else(|e| fail("kubeconfig", &e.to_string()));
    let _ = writeln!(env, "DEMO_KUBECONFIG={}", kubeconfig.display());

    let slack = FakeSlack::start();
    let _ = writeln!(env, "DEMO_SLACK_API={}", slack.api_url());
    let _ = writeln!(env, "DEMO_SLACK_TOKEN={BOT_TOKEN}");

    if let Err(e) = sshd_available() {
        fail("sshd", &e);
    }
    let key =
        ClientKey::generate(None).unwrap_or_else(|| fail("ssh-keygen", "cannot generate a key"));
    let host = SshHost::start(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9, &key)
        .unwrap_or_else(|e| fail("sshd", &e));
    // A fresh deploy path on every demo run (the test user's home outlives the host).
    let _ = std::fs::remove_dir_all(host.home.join("app"));
    let key_path = dir.join("id_ed25519");
    std::fs::write(&key_path, &key.private).unwrap_or_else(|e| fail("key", &e.to_string()));
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("{}\n", host.known_hosts_line()))
        .unwrap_or_else(|e| fail("known_hosts", &e.to_string()));
    let _ = writeln!(env, "DEMO_SSH_TARGET={}", host.target());
    let _ = writeln!(env, "DEMO_SSH_KEY={}", key_path.display());
    let _ = writeln!(env, "DEMO_KNOWN_HOSTS={}", known.display());
    let _ = writeln!(env, "DEMO_SSH_HOME={}", host.home.display());

    // Write atomically: demo/run polls for the file.
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, env).unwrap_or_else(|e| fail("env file", &e.to_string()));
    std::fs::rename(&tmp, &out).unwrap_or_else(|e| fail("env file", &e.to_string()));
    eprintln!(
        "gantry-demo-env: registry {}, kube {}, slack {}, ssh {}",
        registry.host,
        kube.url(),
        slack.api_url(),
        host.target()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", &e.to_string()));
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
    drop((registry, kube, slack, host, key));
}

fn fail(what: &str, why: &str) -> ! {
    eprintln!("gantry-demo-env: cannot start {what}: {why}");
    std::process::exit(1);
}
