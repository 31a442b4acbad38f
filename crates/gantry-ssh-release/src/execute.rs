//! Executing a plan against the hosts: connect (one native-mux master per host), preflight, lock,
//! upload, prepare, then — only when every host is verified — switch in batches, restart, health
//! check, automatic rollback, cleanup, history and unlock. Also the rollback and unlock modes.
//!
//! Invariants: `current` only ever moves by a rename to a `.complete` release; a failure before
//! the switch leaves every host on its old release (unless `on-failure: continue`); the lock is
//! released on every exit path we control, including cancellation (SIGTERM) and the overall
//! timeout; cleanup stages after a cancel run with their own short deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use gantry_runtime::{Cancel, Step};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::artifact::Prepared;
use crate::config::{Config, Host, Mode, OnFailure};
use crate::plan::{self, Plan};
use crate::scripts::{self, Ctx, Prepare};
use crate::ssh::{Client, Conn, Payload, SshError, StageOut};

/// One stage as recorded in the deploy log.
#[derive(Clone, Debug, Serialize)]
pub struct StageRecord {
    /// Stage name.
    pub stage: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Seconds taken.
    pub seconds: f64,
    /// Remote exit code when it failed with one.
    pub exit_code: Option<i32>,
    /// The error.
    pub error: Option<String>,
    /// The tail of remote stderr.
    pub stderr_tail: Option<String>,
}

/// A host's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    /// `user@host:port`.
    pub host: String,
    /// `released`, `verified`, `rolled-back`, `failed`, `unchanged`, `skipped`.
    pub result: String,
    /// `current` before the run.
    pub previous: Option<String>,
    /// `current` after the run.
    pub current: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Stages.
    pub stages: Vec<StageRecord>,
}

struct HostRun {
    idx: usize,
    host: Host,
    conn: Option<Conn>,
    report: HostReport,
    locked: bool,
    lock_tried: bool,
    prepared: bool,
    switched: bool,
    switched_from: Option<String>,
    failed: bool,
    facts: StageOut,
}

impl HostRun {
    fn fail(&mut self, e: &SshError) {
        self.failed = true;
        if self.report.error.is_none() {
            self.report.error = Some(e.to_string());
        }
    }
}

fn tail(s: &str) -> String {
    let t = s.trim();
    let n = 1500;
    if t.len() <= n {
        return t.to_string();
    }
    let mut start = t.len() - n;
    while !t.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &t[start..])
}

async fn stage(
    r: &mut HostRun,
    name: &str,
    script: &str,
    payload: Option<Payload<'_>>,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<StageOut, SshError> {
    let started = Instant::now();
    let res = match &r.conn {
        Some(c) => c.stage(name, script, payload, timeout, cancel).await,
        None => Err(SshError::Setup("not connected".into())),
    };
    let (exit_code, stderr_tail) = match &res {
        Err(SshError::Stage { status, stderr, .. }) => (Some(*status), Some(tail(stderr))),
        Ok(o) if !o.stderr.trim().is_empty() => (None, Some(tail(&o.stderr))),
        _ => (None, None),
    };
    let secs = started.elapsed().as_secs_f64();
    match &res {
        Ok(_) => tracing::info!("{}: {name} ok ({secs:.2}s)", r.host.label()),
        Err(e) => tracing::warn!("{}: {name} failed ({secs:.2}s): {e}", r.host.label()),
    }
    r.report.stages.push(StageRecord {
        stage: name.to_string(),
        ok: res.is_ok(),
        seconds: (secs * 1000.0).round() / 1000.0,
        exit_code,
        error: res.as_ref().err().map(ToString::to_string),
        stderr_tail,
    });
    res
}

/// Like [`stage`], but shown as `display` while the remote pid file uses `pid_name`.
async fn stage_named(
    r: &mut HostRun,
    display: &str,
    pid_name: &str,
    script: &str,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<StageOut, SshError> {
    let res = stage(r, pid_name, script, None, timeout, cancel).await;
    if let Some(last) = r.report.stages.last_mut() {
        last.stage = display.to_string();
    }
    res
}

/// The outcome of an execution.
pub(crate) struct Outcome {
    pub reports: Vec<HostReport>,
    pub error: Option<crate::Error>,
    pub previous: Option<String>,
    pub release_id: Option<String>,
}

struct Shared<'a> {
    cfg: &'a Config,
    art: Option<&'a Prepared>,
    cancel: Cancel,
    sem: Arc<Semaphore>,
    owner: String,
    token: String,
    stamp: String,
    history_base: serde_json::Value,
}

async fn for_each<'a, F, Fut>(
    runs: &'a mut [HostRun],
    sh: &Shared<'_>,
    only: impl Fn(&HostRun) -> bool,
    f: F,
) where
    F: Fn(&'a mut HostRun) -> Fut,
    Fut: std::future::Future<Output = ()> + 'a,
{
    let futs = runs.iter_mut().filter(|r| only(r)).map(|r| {
        let sem = sh.sem.clone();
        let fut = f(r);
        async move {
            let _permit = sem.acquire().await;
            fut.await;
        }
    });
    join_all(futs).await;
}

/// Runs the whole thing. `dry_run`: connect and preflight only, then print the plan.
pub(crate) async fn execute(
    step: &mut Step,
    cfg: &Config,
    art: Option<&Prepared>,
    plan: &Plan,
) -> Outcome {
    let token = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let now = step.now();
    let gh = &step.github;
    let owner = format!(
        "token={token} run_id={} actor={} repository={} runner={} since={}",
        if gh.run_id.is_empty() {
            "local"
        } else {
            &gh.run_id
        },
        if gh.actor.is_empty() {
            "unknown"
        } else {
            &gh.actor
        },
        gh.repository,
        step.env
            .get("RUNNER_NAME")
            .or(step.env.get("HOSTNAME"))
            .unwrap_or("local"),
        now.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let history_base = serde_json::json!({
        "run_id": gh.run_id, "run_url": gh.run_url(), "actor": gh.actor,
        "repository": gh.repository, "sha": gh.sha, "ref": gh.git_ref,
        "artifact": art.map(|a| a.source.clone()), "sha256": art.map(|a| a.sha256.clone()),
    });
    // The overall timeout cancels like a signal does, so the same cleanup runs.
    let cancel = step.cancel.child();
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let c = cancel.clone();
        let t = cfg.timeout;
        let flag = timed_out.clone();
        tokio::spawn(async move {
            tokio::time::sleep(t).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            c.cancel();
        });
    }
    let sh = Shared {
        cfg,
        art,
        cancel,
        sem: Arc::new(Semaphore::new(cfg.max_parallel)),
        owner,
        token: token.clone(),
        stamp: format!(
            "{} run={}",
            now.timestamp(),
            if gh.run_id.is_empty() {
                token.as_str()
            } else {
                gh.run_id.as_str()
            }
        ),
        history_base,
    };
    let exec = gantry_exec::RealExec::new(step.console.clone(), step.cancel.clone());
    let known_hosts = match fingerprint_known_hosts(cfg, &exec).await {
        Ok(k) => k,
        Err(e) => {
            return Outcome {
                reports: Vec::new(),
                error: Some(e),
                previous: None,
                release_id: None,
            };
        }
    };
    let client = match Client::new(
        &cfg.key,
        cfg.passphrase.as_ref(),
        &known_hosts,
        &cfg.hosts,
        &cfg.jump_hosts,
        cfg.ssh_config.as_deref(),
        cfg.connect_timeout,
        &exec,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                reports: Vec::new(),
                error: Some(crate::Error::Ssh(e)),
                previous: None,
                release_id: None,
            };
        }
    };
    let mut runs: Vec<HostRun> = cfg
        .hosts
        .iter()
        .enumerate()
        .map(|(idx, h)| HostRun {
            idx,
            host: h.clone(),
            conn: None,
            report: HostReport {
                host: h.label(),
                result: "unchanged".into(),
                previous: None,
                current: None,
                error: None,
                stages: Vec::new(),
            },
            locked: false,
            lock_tried: false,
            prepared: false,
            switched: false,
            switched_from: None,
            failed: false,
            facts: StageOut::default(),
        })
        .collect();

    step.console
        .group(&format!("Connect to {} host(s)", runs.len()));
    connect_all(&mut runs, &sh, &client).await;
    step.console.end_group();

    let error = match cfg.mode {
        Mode::Unlock => unlock_mode(&mut runs, &sh, step).await,
        Mode::Rollback if step.dry_run => dry_run(&mut runs, &sh, step, plan).await,
        Mode::Deploy if step.dry_run => dry_run(&mut runs, &sh, step, plan).await,
        Mode::Rollback => rollback_mode(&mut runs, &sh, step).await,
        Mode::Deploy => deploy_mode(&mut runs, &sh, step).await,
    };
    let error = match error {
        Some(crate::Error::Cancelled(_)) if timed_out.load(std::sync::atomic::Ordering::SeqCst) => {
            Some(crate::Error::Failed(format!(
                "the overall timeout ({}s) expired; every lock was released",
                cfg.timeout.as_secs()
            )))
        }
        e => e,
    };
    // Always release what we hold, even after a cancel (own short deadline, fresh token).
    release_locks(&mut runs, &sh).await;
    let previous = runs.iter().find_map(|r| r.report.previous.clone());
    let release_id = match cfg.mode {
        Mode::Deploy => Some(cfg.release_id.clone()),
        _ => runs.iter().find_map(|r| r.report.current.clone()),
    };
    for r in &mut runs {
        if let Some(c) = r.conn.take() {
            c.close().await;
        }
    }
    drop(client);
    Outcome {
        reports: runs.into_iter().map(|r| r.report).collect(),
        error,
        previous,
        release_id,
    }
}

/// With `fingerprint`: keyscan each host and keep only keys whose fingerprint matches.
async fn fingerprint_known_hosts(
    cfg: &Config,
    exec: &dyn gantry_exec::Exec,
) -> Result<String, crate::Error> {
    let mut out = cfg.known_hosts.clone().unwrap_or_default();
    if cfg.fingerprints.is_empty() {
        return Ok(out);
    }
    out.push('\n');
    for h in cfg.hosts.iter().chain(cfg.jump_hosts.iter()) {
        let cmd = gantry_exec::Cmd::new("ssh-keyscan")
            .args(["-T", "10", "-p", &h.port.to_string(), &h.host])
            .timeout(Duration::from_secs(20));
        let scanned = exec.run(&cmd).await.map_err(|e| {
            crate::Error::Ssh(SshError::Connect {
                host: h.label(),
                detail: format!("ssh-keyscan: {e}"),
            })
        })?;
        let mut matched = 0;
        for line in scanned
            .stdout_str()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let fp = gantry_exec::Cmd::new("ssh-keygen")
                .args(["-l", "-f", "-"])
                .stdin_bytes(line.as_bytes().to_vec());
            if let Ok(o) = exec.run(&fp).await {
                let text = o.stdout_str();
                if cfg
                    .fingerprints
                    .iter()
                    .any(|f| text.split_whitespace().any(|w| w == f))
                {
                    out.push_str(line);
                    out.push('\n');
                    matched += 1;
                }
            }
        }
        if matched == 0 {
            return Err(crate::Error::Ssh(SshError::HostKey {
                host: h.label(),
                detail:
                    "none of the host's keys matches the given fingerprint; refusing to connect"
                        .into(),
            }));
        }
    }
    Ok(out)
}

async fn connect_all(runs: &mut [HostRun], sh: &Shared<'_>, client: &Client) {
    for_each(
        runs,
        sh,
        |_| true,
        |r| async move {
            let start = Instant::now();
            // A connection attempt (banner wait, retries) must not outlive a cancellation: nothing
            // has changed on the host yet, so there is nothing to finish.
            let connected = tokio::select! {
                c = client.connect(r.idx, &r.host) => c,
                () = sh.cancel.cancelled() => Err(SshError::Cancelled { host: r.host.label(), stage: "connect".into() }),
            };
            match connected {
                Ok(session) => {
                    tracing::info!(
                        "{}: connected ({:.2}s)",
                        r.host.label(),
                        start.elapsed().as_secs_f64()
                    );
                    r.conn = Some(Conn {
                        session,
                        host: r.host.clone(),
                        ctx: Ctx {
                            deploy_path: r.host.deploy_path.clone(),
                            token: sh.token.clone(),
                            slot: r.idx,
                        },
                    });
                    r.report.stages.push(StageRecord {
                        stage: "connect".into(),
                        ok: true,
                        seconds: start.elapsed().as_secs_f64(),
                        exit_code: None,
                        error: None,
                        stderr_tail: None,
                    });
                }
                Err(e) => {
                    r.report.stages.push(StageRecord {
                        stage: "connect".into(),
                        ok: false,
                        seconds: start.elapsed().as_secs_f64(),
                        exit_code: None,
                        error: Some(e.to_string()),
                        stderr_tail: None,
                    });
                    r.fail(&e);
                }
            }
        },
    )
    .await;
}

fn tools(cfg: &Config) -> Vec<&'static str> {
    match cfg.mode {
        Mode::Deploy => vec!["tar", "sha256sum", "mkfifo", "tee", "df", "mv", "ln"],
        _ => vec!["mv", "ln"],
    }
}

/// Preflight (read-only), and with `lock` the lock too, in the same round trip.
async fn preflight_all(runs: &mut [HostRun], sh: &Shared<'_>, lock: bool) {
    let t = tools(sh.cfg);
    let need = sh.art.map(|a| plan::min_free(sh.cfg.min_free, a));
    let entries = sh.art.map(|a| a.entries);
    let remote_need = if lock { need.zip(entries) } else { None };
    for_each(runs, sh, |r| !r.failed, |r| {
        let t = t.clone();
        async move {
            let script = match &r.conn {
                Some(c) if lock => scripts::combine(
                    &c.ctx,
                    "preflight+lock",
                    &[
                        scripts::preflight(&c.ctx, &t, remote_need),
                        scripts::lock(&c.ctx, &sh.owner, sh.cfg.lock_timeout.as_secs()),
                    ],
                    false,
                ),
                Some(c) => scripts::preflight(&c.ctx, &t, None),
                None => return,
            };
            let (name, timeout) = if lock {
                r.lock_tried = true;
                ("preflight+lock", Duration::from_secs(60) + sh.cfg.lock_timeout)
            } else {
                ("preflight", Duration::from_secs(60))
            };
            match stage(r, name, &script, None, timeout, &sh.cancel).await {
                Ok(out) => {
                    r.locked = lock;
                    r.report.previous = out.fact("current").map(str::to_string);
                    r.report.current = r.report.previous.clone();
                    if let Some(need) = need {
                        let avail = out.fact("avail_kb").and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX / 1024) * 1024;
                        if avail < need {
                            let e = SshError::Stage {
                                host: r.host.label(),
                                stage: "disk-check".into(),
                                status: 1,
                                stderr: format!(
                                    "not enough free space under {}: need {} (min-free-space), have {}; nothing was uploaded",
                                    r.host.deploy_path,
                                    human_bytes(need),
                                    human_bytes(avail)
                                ),
                                stdout: String::new(),
                            };
                            r.report.stages.push(StageRecord { stage: "disk-check".into(), ok: false, seconds: 0.0, exit_code: None, error: Some(e.to_string()), stderr_tail: None });
                            r.fail(&e);
                        }
                        let inodes = out.fact("free_inodes").and_then(|v| v.parse::<u64>().ok());
                        if let (Some(free), Some(n)) = (inodes, entries)
                            && free > 0
                            && free < n + n / 10
                        {
                            let e = SshError::Stage { host: r.host.label(), stage: "disk-check".into(), status: 1, stderr: format!("not enough free inodes: need {n}, have {free}"), stdout: String::new() };
                            r.fail(&e);
                        }
                    }
                    r.facts = out;
                }
                Err(e) => r.fail(&lock_error(e, sh)),
            }
        }
    })
    .await;
}

/// Turns the lock script's exit 75 into an error naming the holder.
fn lock_error(e: SshError, sh: &Shared<'_>) -> SshError {
    match &e {
        SshError::Stage {
            status: 75,
            stdout,
            host,
            ..
        } => {
            let holder = scripts::facts(stdout)
                .into_iter()
                .find(|(k, _)| k == "locked_by")
                .map(|(_, v)| v)
                .unwrap_or_default();
            SshError::Stage {
                host: host.clone(),
                stage: "lock".into(),
                status: 75,
                stderr: format!(
                    "another deploy holds the lock ({holder}); waited lock-timeout {}s. If it is stale, run with `unlock: true`",
                    sh.cfg.lock_timeout.as_secs()
                ),
                stdout: String::new(),
            }
        }
        _ => e,
    }
}

async fn release_locks(runs: &mut [HostRun], sh: &Shared<'_>) {
    let fresh = Cancel::new();
    let fresh = &fresh;
    for_each(
        runs,
        sh,
        |r| r.locked,
        |r| async move {
            let Some(c) = &r.conn else { return };
            let script = scripts::unlock(&c.ctx, false);
            if stage(r, "unlock", &script, None, Duration::from_secs(10), fresh)
                .await
                .is_ok()
            {
                r.locked = false;
            }
        },
    )
    .await;
}

async fn mark_failed_all(runs: &mut [HostRun], sh: &Shared<'_>, why: &str) {
    let fresh = Cancel::new();
    let fresh = &fresh;
    let id = sh.cfg.release_id.clone();
    for_each(
        runs,
        sh,
        |r| r.locked && !r.switched,
        |r| {
            let id = id.clone();
            async move {
                let Some(c) = &r.conn else { return };
                let script = scripts::mark_failed(&c.ctx, &id, why);
                let _ = stage(
                    r,
                    "mark-failed",
                    &script,
                    None,
                    Duration::from_secs(10),
                    fresh,
                )
                .await;
            }
        },
    )
    .await;
}

fn human_bytes(b: u64) -> String {
    let f = b as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", f / (1u64 << 30) as f64)
    } else if f >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", f / 1024.0)
    }
}

fn first_error(runs: &[HostRun]) -> String {
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.failed)
        .map(|r| {
            r.report
                .error
                .clone()
                .unwrap_or_else(|| format!("{}: failed", r.host.label()))
        })
        .collect();
    failed.join("; ")
}

fn cancelled(sh: &Shared<'_>) -> bool {
    sh.cancel.is_cancelled()
}

async fn dry_run(
    runs: &mut [HostRun],
    sh: &Shared<'_>,
    step: &mut Step,
    plan: &Plan,
) -> Option<crate::Error> {
    preflight_all(runs, sh, false).await;
    let hosts: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "host": r.host.label(),
                "reachable": r.conn.is_some(),
                "current": r.facts.fact("current"),
                "previous": r.facts.fact("previous"),
                "free_kib": r.facts.fact("avail_kb").and_then(|v| v.parse::<u64>().ok()),
                "lock_holder": r.facts.fact("lock_holder"),
                "complete_releases": r.facts.all("complete").iter().filter_map(|v| v.split_once(' ').map(|x| x.1.to_string())).collect::<Vec<_>>(),
                "problem": r.report.error,
            })
        })
        .collect();
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    v["preflight"] = serde_json::Value::Array(hosts);
    step.print_plan("ssh-release plan (dry run: nothing was changed)", &v);
    for r in runs.iter_mut() {
        r.report.result = if r.failed {
            "failed".into()
        } else {
            "checked".into()
        };
    }
    if runs.iter().any(|r| r.failed) {
        return Some(crate::Error::Failed(first_error(runs)));
    }
    None
}

async fn unlock_mode(
    runs: &mut [HostRun],
    sh: &Shared<'_>,
    step: &mut Step,
) -> Option<crate::Error> {
    let console = step.console.clone();
    for_each(
        runs,
        sh,
        |r| !r.failed,
        |r| {
            let console = console.clone();
            async move {
                let Some(c) = &r.conn else { return };
                let script = scripts::unlock(&c.ctx, true);
                match stage(
                    r,
                    "unlock",
                    &script,
                    None,
                    Duration::from_secs(30),
                    &sh.cancel,
                )
                .await
                {
                    Ok(out) => {
                        let holder = out.fact("removed_lock").unwrap_or("none").to_string();
                        console.info(&format!(
                            "{}: removed lock held by: {holder}",
                            r.host.label()
                        ));
                        r.report.result = if holder == "none" {
                            "unchanged".into()
                        } else {
                            "unlocked".into()
                        };
                    }
                    Err(e) => r.fail(&e),
                }
            }
        },
    )
    .await;
    runs.iter()
        .any(|r| r.failed)
        .then(|| crate::Error::Failed(first_error(runs)))
}

/// The last round trip per host: cleanup (when `cleanup` names the release to protect), the
/// history line and the unlock, each best effort, in one script.
async fn history_all(
    runs: &mut [HostRun],
    sh: &Shared<'_>,
    action: &str,
    now: &str,
    cleanup: Option<&str>,
) {
    let fresh = Cancel::new();
    let fresh = &fresh;
    for_each(
        runs,
        sh,
        |r| r.locked,
        |r| async move {
            let Some(c) = &r.conn else { return };
            let mut line = sh.history_base.clone();
            line["time"] = now.into();
            line["action"] = action.into();
            line["host"] = r.host.label().into();
            line["release"] = r.report.current.clone().into();
            line["previous"] = r.report.previous.clone().into();
            line["attempted"] = if action == "deploy" || action == "verify-only" {
                sh.cfg.release_id.clone().into()
            } else {
                serde_json::Value::Null
            };
            line["result"] = r.report.result.clone().into();
            line["error"] = r.report.error.clone().into();
            let mut parts = Vec::new();
            let mut name = String::new();
            if let Some(id) = cleanup {
                parts.push(scripts::cleanup(&c.ctx, sh.cfg.keep_releases, id));
                name.push_str("cleanup+");
            }
            parts.push(scripts::history(&c.ctx, &line.to_string()));
            parts.push(scripts::unlock(&c.ctx, false));
            name.push_str("history+unlock");
            let script = scripts::combine(&c.ctx, "finish", &parts, true);
            let t = sh.cfg.command_timeout;
            // `stage` reports under the combined name; the kill pid file is the combined one.
            if stage_named(r, &name, "finish", &script, t, fresh)
                .await
                .is_ok()
            {
                r.locked = false;
                r.lock_tried = false;
            }
        },
    )
    .await;
}

/// Switch + restart + health on one host; on failure optionally switch back. Returns whether the
/// host is healthy on the new release.
async fn switch_host(r: &mut HostRun, sh: &Shared<'_>, id: &str, require_complete: bool) -> bool {
    let cfg = sh.cfg;
    let Some(c) = &r.conn else { return false };
    let ctx = c.ctx.clone();
    let old = r.report.current.clone();
    match stage(
        r,
        "switch",
        &scripts::switch(&ctx, id, require_complete),
        None,
        Duration::from_secs(60),
        &sh.cancel,
    )
    .await
    {
        Ok(out) => {
            r.switched = true;
            r.switched_from = out
                .fact("switched_from")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .or(old);
            r.report.current = Some(id.to_string());
        }
        Err(e) => {
            r.fail(&e);
            return false;
        }
    }
    let mut problem = None;
    if let Some(cmd) = &cfg.restart
        && let Err(e) = stage(
            r,
            "restart",
            &scripts::restart(&ctx, cmd),
            None,
            cfg.command_timeout,
            &sh.cancel,
        )
        .await
    {
        problem = Some(e);
    }
    if problem.is_none()
        && let Some(p) = &cfg.health
    {
        let script = scripts::health(
            &ctx,
            p,
            cfg.health_timeout.as_secs(),
            cfg.health_interval.as_secs().max(1),
        );
        if let Err(e) = stage(
            r,
            "health",
            &script,
            None,
            cfg.health_timeout + Duration::from_secs(30),
            &sh.cancel,
        )
        .await
        {
            problem = Some(e);
        }
    }
    match problem {
        None => true,
        Some(e) => {
            r.fail(&e);
            if cfg.rollback_on_failure && !matches!(e, SshError::Cancelled { .. }) {
                revert_host(r, sh, Some(&format!("{e}"))).await;
            } else if !cfg.rollback_on_failure && r.switched {
                // The error annotation carries it: production is on a release that failed.
                let live = r.report.current.clone().unwrap_or_default();
                if let Some(err) = &mut r.report.error {
                    err.push_str(&format!(
                        " — release {live} stays live (rollback-on-failure: false); switch back with `gantry ssh-release --rollback`"
                    ));
                }
            }
            false
        }
    }
}

/// Switches a host back to the release it had before this run, restarts, re-checks health and
/// marks the release we left as failed (`why`) or rolled back.
async fn revert_host(r: &mut HostRun, sh: &Shared<'_>, why: Option<&str>) {
    let cfg = sh.cfg;
    let fresh = Cancel::new();
    let Some(c) = &r.conn else { return };
    let ctx = c.ctx.clone();
    let Some(back) = r.switched_from.clone() else {
        tracing::warn!("{}: no previous release to roll back to", r.host.label());
        return;
    };
    let left = r.report.current.clone().unwrap_or_default();
    if stage(
        r,
        "rollback-switch",
        &scripts::switch(&ctx, &back, false),
        None,
        Duration::from_secs(60),
        &fresh,
    )
    .await
    .is_err()
    {
        return;
    }
    r.report.current = Some(back.clone());
    r.switched = false;
    if let Some(cmd) = &cfg.restart {
        let _ = stage(
            r,
            "rollback-restart",
            &scripts::restart(&ctx, cmd),
            None,
            cfg.command_timeout,
            &fresh,
        )
        .await;
    }
    if let Some(p) = &cfg.health {
        let script = scripts::health(
            &ctx,
            p,
            cfg.health_timeout.as_secs(),
            cfg.health_interval.as_secs().max(1),
        );
        let _ = stage(
            r,
            "rollback-health",
            &script,
            None,
            cfg.health_timeout + Duration::from_secs(30),
            &fresh,
        )
        .await;
    }
    let _ = stage(
        r,
        "rollback-mark",
        &scripts::after_rollback(&ctx, &left, why),
        None,
        Duration::from_secs(15),
        &fresh,
    )
    .await;
    r.report.result = "rolled-back".into();
}

async fn deploy_mode(
    runs: &mut [HostRun],
    sh: &Shared<'_>,
    step: &mut Step,
) -> Option<crate::Error> {
    let cfg = sh.cfg;
    let Some(art) = sh.art else {
        return Some(crate::Error::Failed("no artifact".into()));
    };
    let now = step.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let policy_continue = cfg.on_failure == OnFailure::Continue;
    let abort_early = |runs: &[HostRun]| runs.iter().any(|r| r.failed) && !policy_continue;

    step.console.group("Preflight and lock");
    preflight_all(runs, sh, true).await;
    step.console.end_group();
    if cancelled(sh) {
        return Some(crate::Error::Cancelled("before any change".into()));
    }
    if abort_early(runs) {
        for r in runs.iter_mut() {
            r.report.result = if r.failed {
                "failed".into()
            } else {
                "unchanged".into()
            };
        }
        return Some(crate::Error::Failed(format!(
            "nothing was changed on any host: {}",
            first_error(runs)
        )));
    }

    step.console
        .group(&format!("Upload and prepare release {}", cfg.release_id));
    let id = cfg.release_id.clone();
    let prep = Prepare {
        shared: cfg.shared.clone(),
        requirements: cfg.requirements.clone(),
        python: cfg.python.clone(),
        pip_args: cfg.pip_args.clone(),
        script: cfg.script.clone(),
        smoke: cfg.smoke.clone(),
        stamp: sh.stamp.clone(),
        verify_only: cfg.verify_only,
    };
    let stamp = step.now().format("%Y%m%dT%H%M%SZ").to_string();
    for_each(
        runs,
        sh,
        |r| !r.failed && r.locked,
        |r| {
            let (id, prep, stamp) = (id.clone(), prep.clone(), stamp.clone());
            async move {
                let Some(c) = &r.conn else { return };
                let ctx = c.ctx.clone();
                let up = scripts::upload(&ctx, &id, art.gzip, &art.sha256);
                if let Err(e) = stage(
                    r,
                    "upload",
                    &up,
                    Some(Payload::File(&art.path)),
                    cfg.command_timeout,
                    &sh.cancel,
                )
                .await
                {
                    r.fail(&e);
                    return;
                }
                if let Some(env) = &cfg.dotenv {
                    let s = scripts::dotenv(&ctx, &cfg.dotenv_path, &stamp, cfg.keep_releases);
                    if let Err(e) = stage(
                        r,
                        "dotenv",
                        &s,
                        Some(Payload::Secret(env)),
                        Duration::from_secs(60),
                        &sh.cancel,
                    )
                    .await
                    {
                        r.fail(&e);
                        return;
                    }
                }
                match stage(
                    r,
                    "prepare",
                    &scripts::prepare(&ctx, &id, &prep),
                    None,
                    cfg.command_timeout,
                    &sh.cancel,
                )
                .await
                {
                    Ok(_) => r.prepared = true,
                    Err(e) => r.fail(&e),
                }
            }
        },
    )
    .await;
    step.console.end_group();

    if cancelled(sh) || abort_early(runs) || cfg.verify_only {
        let why = if cancelled(sh) {
            "cancelled before the switch".to_string()
        } else if cfg.verify_only {
            String::new()
        } else {
            format!(
                "another host failed before the switch: {}",
                first_error(runs)
            )
        };
        if !cfg.verify_only || runs.iter().any(|r| r.failed) {
            let reason = if why.is_empty() {
                first_error(runs)
            } else {
                why.clone()
            };
            mark_failed_all(runs, sh, &reason).await;
        }
        for r in runs.iter_mut() {
            r.report.result = if r.failed {
                "failed".into()
            } else if cfg.verify_only && r.prepared {
                "verified".into()
            } else {
                "unchanged".into()
            };
        }
        history_all(
            runs,
            sh,
            if cfg.verify_only {
                "verify-only"
            } else {
                "deploy"
            },
            &now,
            None,
        )
        .await;
        if cancelled(sh) {
            return Some(crate::Error::Cancelled(
                "no host was switched; releases marked failed, locks released".into(),
            ));
        }
        if runs.iter().any(|r| r.failed) {
            return Some(crate::Error::Failed(format!(
                "no host was switched (all hosts must be verified before any switch): {}",
                first_error(runs)
            )));
        }
        return None;
    }

    // Switch in batches.
    let batches = plan::batches(runs.len(), cfg.batch_size);
    let mut stop = false;
    for (bi, batch) in batches.iter().enumerate() {
        if stop || cancelled(sh) {
            break;
        }
        step.console.group(&format!(
            "Switch batch {}/{} ({} host(s))",
            bi + 1,
            batches.len(),
            batch.len()
        ));
        let id2 = id.clone();
        for_each(
            runs,
            sh,
            |r| batch.contains(&r.idx) && r.prepared && !r.failed,
            |r| {
                let id = id2.clone();
                async move {
                    if switch_host(r, sh, &id, true).await {
                        r.report.result = "released".into();
                    }
                }
            },
        )
        .await;
        step.console.end_group();
        let batch_failed = runs.iter().any(|r| batch.contains(&r.idx) && r.failed);
        if batch_failed || cancelled(sh) {
            match cfg.on_failure {
                OnFailure::Continue => {}
                OnFailure::Stop => stop = true,
                // No automatic rollback was asked for: switching the healthy hosts back while the
                // failed one stays on the new release would leave the fleet split. Stop instead.
                OnFailure::RollbackAll if !cfg.rollback_on_failure => {
                    stop = true;
                    step.console.info(
                        "rollback-on-failure is false: no host is switched back; later batches are not started",
                    );
                }
                OnFailure::RollbackAll => {
                    stop = true;
                    step.console
                        .group("Roll back every switched host (on-failure: rollback-all)");
                    let why = first_error(runs);
                    for_each(
                        runs,
                        sh,
                        |r| r.switched && !r.failed,
                        |r| {
                            let why = why.clone();
                            async move {
                                revert_host(
                                    r,
                                    sh,
                                    Some(&format!(
                                        "rolled back because another host failed: {why}"
                                    )),
                                )
                                .await;
                            }
                        },
                    )
                    .await;
                    step.console.end_group();
                }
            }
        }
    }
    // Hosts prepared but never switched (stopped early): mark the release failed there.
    if stop || cancelled(sh) {
        let why = "the release was stopped before this host was switched".to_string();
        mark_failed_all(runs, sh, &why).await;
    }
    for r in runs.iter_mut() {
        if r.failed && r.report.result == "unchanged" {
            r.report.result = "failed".into();
        }
    }

    // Post-script and cleanup on released hosts.
    let released = |r: &HostRun| r.report.result == "released";
    if let Some(ps) = &cfg.post_script {
        for_each(runs, sh, released, |r| async move {
            let Some(c) = &r.conn else { return };
            let s = scripts::post_script(&c.ctx, ps);
            if let Err(e) = stage(r, "post-script", &s, None, cfg.command_timeout, &sh.cancel).await
            {
                r.fail(&e);
                r.report.result = "failed".into();
            }
        })
        .await;
    }
    history_all(runs, sh, "deploy", &now, Some(&id)).await;
    if cancelled(sh) {
        return Some(crate::Error::Cancelled(
            "stopped during the switch phase; see the per-host table".into(),
        ));
    }
    if runs.iter().any(|r| r.failed) {
        return Some(crate::Error::Failed(first_error(runs)));
    }
    None
}

async fn rollback_mode(
    runs: &mut [HostRun],
    sh: &Shared<'_>,
    step: &mut Step,
) -> Option<crate::Error> {
    let cfg = sh.cfg;
    let now = step.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    preflight_all(runs, sh, true).await;
    // Every host must have a target before any host moves.
    for_each(
        runs,
        sh,
        |r| !r.failed && r.locked,
        |r| async move {
            let Some(c) = &r.conn else { return };
            let s = scripts::rollback_target(&c.ctx, cfg.rollback_to.as_deref());
            match stage(r, "target", &s, None, Duration::from_secs(30), &sh.cancel).await {
                Ok(out) => r.facts = out,
                Err(e) => r.fail(&e),
            }
        },
    )
    .await;
    if runs.iter().any(|r| r.failed) || cancelled(sh) {
        for r in runs.iter_mut() {
            r.report.result = if r.failed {
                "failed".into()
            } else {
                "unchanged".into()
            };
        }
        return Some(crate::Error::Failed(format!(
            "no host was rolled back: {}",
            first_error(runs)
        )));
    }
    step.console.group("Roll back");
    for_each(
        runs,
        sh,
        |r| !r.failed,
        |r| async move {
            let Some(target) = r.facts.fact("target").map(str::to_string) else {
                return;
            };
            let left = r.report.current.clone();
            if switch_host(r, sh, &target, true).await {
                r.report.result = "rolled-back".into();
                if let (Some(left), Some(c)) = (left, &r.conn) {
                    let s = scripts::after_rollback(&c.ctx, &left, None);
                    let _ = stage(
                        r,
                        "mark-rolled-back",
                        &s,
                        None,
                        Duration::from_secs(15),
                        &Cancel::new(),
                    )
                    .await;
                }
            }
        },
    )
    .await;
    step.console.end_group();
    for r in runs.iter_mut() {
        if r.failed && r.report.result == "unchanged" {
            r.report.result = "failed".into();
        }
    }
    history_all(runs, sh, "rollback", &now, None).await;
    runs.iter()
        .any(|r| r.failed)
        .then(|| crate::Error::Failed(first_error(runs)))
}

/// Where the deploy log goes.
pub(crate) fn deploy_log_path(step: &Step, id: &str) -> PathBuf {
    step.output_dir().join(format!("deploy-log-{id}.json"))
}
