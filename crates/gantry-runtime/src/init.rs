//! A minimal init for when gantry is PID 1 in the action container.
//!
//! The runner starts our image with no `--init`, so the binary is PID 1: it must forward signals
//! and reap orphans (ssh multiplex masters, kubectl helpers double-fork). Rather than racing
//! Tokio's own child reaping, PID 1 re-executes itself as a child (`/proc/self/exe`, same argv),
//! blocks the signals, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to the child, reaps every zombie, and
//! exits with the child's status (128+N for a signal). The child unblocks the signals first thing.
//!
//! See: reference/runtime-and-slack.md A1.7 (a PID 1 without handlers is orphaned on cancel).

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

const CHILD_MARK: &str = "GANTRY_INIT_CHILD";

fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    set
}

/// Undoes the signal mask inherited from the init parent. Call first thing in `main`.
pub fn unblock_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&signal_set()), None);
}

/// When we are PID 1 (and not already the re-executed child), runs as init and returns the exit
/// code to exit with. Returns `None` when the caller should proceed normally.
#[allow(clippy::disallowed_methods)] // init must spawn itself before gantry-exec exists
pub fn run_if_pid1(env: &crate::Env) -> Option<i32> {
    if std::process::id() != 1 || env.get(CHILD_MARK).is_some() {
        return None;
    }
    let set = signal_set();
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).is_err() {
        return None;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    if let Some(first) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(first);
    }
    cmd.args(args.iter().skip(1)).env(CHILD_MARK, "1");
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => {
            // Could not re-exec: run in-process as before (signals still handled by Tokio).
            unblock_signals();
            return None;
        }
    };
    let child_pid = Pid::from_raw(child.id() as i32);
    let mut exit: Option<i32> = None;
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        match sig {
            Signal::SIGCHLD => loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child_pid => exit = Some(code),
                    Ok(WaitStatus::Signaled(pid, s, _)) if pid == child_pid => {
                        exit = Some(128 + s as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            },
            other => {
                let _ = kill(child_pid, other);
            }
        }
        if let Some(code) = exit {
            // Reap whatever is left, then leave: the container ends with us.
            while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                if status == WaitStatus::StillAlive {
                    break;
                }
            }
            return Some(code);
        }
    }
}
