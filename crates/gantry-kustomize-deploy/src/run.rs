//! The run: Config → render → connect → plan (objects, before-state) → save revision → apply →
//! prune → wait → report; on failure diagnostics and restore. Also the manual rollback and the
//! dry-run diff. Output formatting lives here; cluster mechanics live in the other modules.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gantry_exec::RealExec;
use gantry_runtime::Step;
use serde_json::{Value, json};

use crate::Error;
use crate::apply::{self, Obj};
use crate::cluster::{self, Cluster};
use crate::config::{Config, Mode, Strategy};
use crate::history::{self, History, Revision, Saved};
use crate::render;
use crate::rollout::{self, Progress, Workload};
use crate::strategy;

const INVENTORY_LABEL: &str = "gantry.dev/inventory";
const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job"];

/// One row of the `applied` output.
#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    kind: String,
    namespace: String,
    name: String,
    result: String,
}

fn row(o: &Obj, result: &str) -> Row {
    Row {
        kind: o.kind().to_string(),
        namespace: o.namespace.clone().unwrap_or_default(),
        name: o.name.clone(),
        result: result.into(),
    }
}

fn api_err(what: &str) -> impl FnOnce(kube::Error) -> Error + '_ {
    move |source| Error::Api {
        what: what.to_string(),
        source,
    }
}

async fn render_overlay(step: &mut Step, cfg: &Config) -> Result<Vec<Value>, Error> {
    let Some(overlay) = cfg.overlay.clone() else {
        return Ok(Vec::new());
    };
    let renderer = render::pick(
        cfg.kubectl.as_deref(),
        step.env.get("GANTRY_KUBECTL"),
        step.env.get("PATH"),
    )
    .ok_or(Error::NoRenderer)?;
    let exec = RealExec::new(step.console.clone(), step.cancel.clone());
    let workspace = step
        .github
        .workspace
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let scratch = step.output_dir();
    let images = cfg.images.clone();
    let docs = step
        .stage(
            "render",
            render::render(&exec, &renderer, &overlay, &images, &scratch, &workspace),
        )
        .await?;
    tracing::info!("rendered {} objects from {}", docs.len(), cfg.overlay_input);
    Ok(docs)
}

fn decorate(step: &Step, cfg: &Config, docs: &mut [Value], inventory: &str) {
    for d in docs.iter_mut() {
        if !d["metadata"].is_object() {
            continue;
        }
        if !d["metadata"]["labels"].is_object() {
            d["metadata"]["labels"] = json!({});
        }
        d["metadata"]["labels"][INVENTORY_LABEL] = json!(inventory);
        if cfg.annotate {
            if !d["metadata"]["annotations"].is_object() {
                d["metadata"]["annotations"] = json!({});
            }
            let a = &mut d["metadata"]["annotations"];
            if let Some(u) = step.github.run_url() {
                a["gantry.dev/run-url"] = json!(u);
            }
            if !step.github.sha.is_empty() {
                a["gantry.dev/commit"] = json!(step.github.sha);
            }
            if !step.github.actor.is_empty() {
                a["gantry.dev/actor"] = json!(step.github.actor);
            }
        }
    }
}

fn images_of(objs: &[Obj]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for o in objs.iter().filter(|o| WORKLOAD_KINDS.contains(&o.kind())) {
        for key in ["containers", "initContainers"] {
            for c in o
                .manifest
                .pointer(&format!("/spec/template/spec/{key}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(i) = c["image"].as_str() {
                    set.insert(i.to_string());
                }
            }
        }
    }
    set.into_iter().collect()
}

fn workloads(objs: &[Obj]) -> Vec<Workload> {
    objs.iter()
        .filter(|o| WORKLOAD_KINDS.contains(&o.kind()) && o.namespace.is_some())
        .map(|o| Workload {
            kind: o.kind().to_string(),
            namespace: o.namespace.clone().unwrap_or_default(),
            name: o.name.clone(),
        })
        .collect()
}

fn redact_secret(v: &Value) -> Value {
    let mut c = v.clone();
    if c["kind"] == "Secret" {
        for k in ["data", "stringData"] {
            if let Some(m) = c[k].as_object_mut() {
                for val in m.values_mut() {
                    *val = json!("<redacted>");
                }
            }
        }
    }
    c
}

/// Leaf paths whose values differ between two (cleaned) objects.
fn diff_paths(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{prefix}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => diff_paths(l, r, &p, out),
                    _ => out.push(p),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                diff_paths(l, r, &format!("{prefix}[{i}]"), out);
            }
        }
        (l, r) if l != r => out.push(prefix.to_string()),
        _ => {}
    }
}

fn normalise(v: &Value) -> Value {
    let mut c = apply::clean_live(v);
    if let Some(m) = c["metadata"].as_object_mut()
        && let Some(mut l) = m.remove("labels")
    {
        if let Some(o) = l.as_object_mut() {
            o.remove(INVENTORY_LABEL);
        }
        if l.as_object().is_some_and(|o| !o.is_empty()) {
            m.insert("labels".into(), l);
        }
    }
    c
}

/// The entry point after inputs are resolved.
pub async fn run_deploy(step: &mut Step, cfg: Config) -> Result<(), Error> {
    if let Mode::Rollback(to) = cfg.mode.clone() {
        if cfg.strategy == Strategy::BlueGreen && to.is_none() {
            return switch_back(step, &cfg).await;
        }
        return manual_rollback(step, &cfg, to).await;
    }
    let mut docs = render_overlay(step, &cfg).await?;
    let cl = timed_connect(step, &cfg).await?;
    let default_ns = cfg
        .namespace
        .clone()
        .unwrap_or_else(|| cl.default_namespace.clone());
    let loc = history::location(&cfg.overlay_input, &default_ns);
    decorate(step, &cfg, &mut docs, &loc.name);
    let objs = apply::resolve(&cl.client, docs, &default_ns).await?;
    let before = apply::snapshot(&cl.client, &objs)
        .await
        .map_err(api_err("reading live objects"))?;

    if cfg.dry_run {
        return dry_run(step, &cfg, &cl, &objs, &before).await;
    }
    if cfg.server_dry_run {
        let results = step
            .stage(
                "server dry run",
                apply::apply_all(&cl.client, &objs, &cfg.field_manager, true),
            )
            .await;
        let mut rows = Vec::new();
        for (o, r) in objs.iter().zip(results) {
            r?;
            rows.push(row(o, "validated (server dry run)"));
        }
        report(
            step,
            &rows,
            &images_of(&objs),
            false,
            None,
            "Server dry run: every object was accepted; nothing was changed.",
        );
        return Ok(());
    }

    let mut hist = history::load(&cl.client, &loc)
        .await
        .map_err(api_err("reading the revision history"))?;
    let previous = hist
        .revisions
        .iter()
        .rev()
        .find(|r| r.status == "deployed" || r.status == "rollback")
        .cloned();
    let number = hist.next_number();
    let saved: Vec<Saved> = objs
        .iter()
        .zip(&before)
        .map(|(o, b)| Saved {
            api_version: o.ar.api_version.clone(),
            kind: o.kind().to_string(),
            plural: o.ar.plural.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            before: b.as_ref().map(apply::clean_live),
            applied: o.manifest.clone(),
        })
        .collect();
    hist.revisions.push(Revision {
        number,
        time: step.now().to_rfc3339(),
        status: "deploying".into(),
        images: images_of(&objs),
        commit: Some(step.github.sha.clone()).filter(|s| !s.is_empty()),
        run_url: step.github.run_url(),
        objects: saved,
    });
    ensure_namespace(&cl, &loc.namespace, &objs, &cfg.field_manager).await?;
    history::save(
        &cl.client,
        &loc,
        &mut hist,
        cfg.history_limit,
        &cfg.field_manager,
    )
    .await
    .map_err(api_err("saving the revision history"))?;
    step.outputs.set_always("revision", number.to_string());
    step.outputs.set_always("rolled-back", "false");

    match cfg.strategy {
        Strategy::BlueGreen => {
            return blue_green(step, &cfg, &cl, &objs, &loc, &mut hist, number).await;
        }
        Strategy::Canary => {
            return canary(step, &cfg, &cl, &objs, &before, &loc, &mut hist, number).await;
        }
        Strategy::Rolling => {}
    }
    let results = step
        .stage(
            "apply",
            apply::apply_all(&cl.client, &objs, &cfg.field_manager, false),
        )
        .await;
    let mut rows = Vec::new();
    let mut apply_error = None;
    for (i, r) in results.into_iter().enumerate() {
        let o = &objs[i];
        match r {
            Ok(after) => {
                let rv_before = before[i]
                    .as_ref()
                    .and_then(|b| b.pointer("/metadata/resourceVersion").cloned());
                let result = match rv_before {
                    None => "created",
                    Some(rv) if after.pointer("/metadata/resourceVersion") == Some(&rv) => {
                        "unchanged"
                    }
                    Some(_) => "configured",
                };
                tracing::info!("{} {result}", o.id());
                rows.push(row(o, result));
            }
            Err(e) => {
                apply_error = Some(e);
                break;
            }
        }
    }
    if let Some(e) = apply_error {
        step.console.error("apply", &e.to_string());
        if cfg.rollback_on_failure && !rows.is_empty() {
            let restored =
                restore_before(step, &cl, &objs[..rows.len()], &before[..rows.len()], &cfg).await;
            set_status(&cl, &loc, &mut hist, number, "failed", &cfg).await;
            if restored.is_ok() {
                step.outputs.set_always("rolled-back", "true");
            }
        } else {
            set_status(&cl, &loc, &mut hist, number, "failed", &cfg).await;
        }
        return Err(e.into());
    }

    if cfg.prune
        && let Some(prev) = &previous
    {
        let current: BTreeSet<String> = objs.iter().map(Obj::id).collect();
        for s in &prev.objects {
            let o = apply::from_saved(
                &s.api_version,
                &s.kind,
                &s.plural,
                s.namespace.as_deref(),
                s.applied.clone(),
            );
            if current.contains(&o.id()) {
                continue;
            }
            match apply::get(&cl.client, &o).await {
                Ok(Some(live))
                    if live
                        .pointer(&format!(
                            "/metadata/labels/{}",
                            INVENTORY_LABEL.replace('/', "~1")
                        ))
                        .and_then(Value::as_str)
                        == Some(loc.name.as_str()) =>
                {
                    apply::delete(&cl.client, &o, false).await?;
                    tracing::info!("{} pruned", o.id());
                    rows.push(row(&o, "pruned"));
                }
                Ok(_) => {}
                Err(e) => return Err(api_err("reading an object to prune")(e)),
            }
        }
    }

    let wl = workloads(&objs);
    let outcome = step
        .stage("wait", {
            let console = step.console.clone();
            let client = cl.client.clone();
            let cancel = step.cancel.clone();
            let timeout = cfg.timeout;
            let wl = wl.clone();
            async move { rollout::wait_all(&client, &wl, timeout, &cancel, |m| console.info(m)).await }
        })
        .await
        .map_err(api_err("watching the rollout"))?;
    for (id, p) in &outcome.results {
        if let Progress::NotWaited(why) = p {
            step.console
                .notice("applied, not waited", &format!("{id}: {why}"));
        }
    }
    let failed = !outcome.failed.is_empty() || outcome.timed_out;
    if !failed {
        set_status(&cl, &loc, &mut hist, number, "deployed", &cfg).await;
        report(
            step,
            &rows,
            &images_of(&objs),
            false,
            Some(&outcome),
            &format!("Revision {number} deployed."),
        );
        return Ok(());
    }
    if step.cancel.is_cancelled() {
        set_status(&cl, &loc, &mut hist, number, "failed", &cfg).await;
        return Err(Error::Cancelled);
    }
    let summary = if outcome.failed.is_empty() {
        let pending: Vec<String> = outcome
            .results
            .iter()
            .filter(|(_, p)| matches!(p, Progress::Waiting(_)))
            .map(|(id, p)| format!("{id} ({})", msg(p)))
            .collect();
        format!(
            "deadline of {} passed; still waiting for {}",
            gantry_runtime::duration::human(cfg.timeout),
            pending.join(", ")
        )
    } else {
        outcome
            .failed
            .iter()
            .map(|(w, m)| format!("{}: {m}", w.id()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    step.console.error("rollout failed", &summary);
    diagnostics(step, &cl, &outcome).await;
    let mut rolled_back = false;
    if cfg.rollback_on_failure {
        // Only what this deploy changed goes back; unchanged objects are left alone.
        let changed: Vec<usize> = (0..objs.len())
            .filter(|&i| {
                rows.iter().any(|r| {
                    r.kind == objs[i].kind()
                        && r.name == objs[i].name
                        && r.namespace == objs[i].namespace.clone().unwrap_or_default()
                        && r.result != "unchanged"
                })
            })
            .collect();
        let o2: Vec<Obj> = changed.iter().map(|&i| objs[i].clone()).collect();
        let b2: Vec<Option<Value>> = changed.iter().map(|&i| before[i].clone()).collect();
        match restore_before(step, &cl, &o2, &b2, &cfg).await {
            Ok(()) => rolled_back = true,
            Err(e) => step.console.error("rollback failed", &e.to_string()),
        }
    }
    set_status(
        &cl,
        &loc,
        &mut hist,
        number,
        if rolled_back { "rolled-back" } else { "failed" },
        &cfg,
    )
    .await;
    step.outputs
        .set_always("rolled-back", rolled_back.to_string());
    report(
        step,
        &rows,
        &images_of(&objs),
        rolled_back,
        Some(&outcome),
        &format!("Revision {number} failed: {summary}"),
    );
    step.outputs.set_always(
        "applied",
        step.outputs.get("applied").unwrap_or("[]").to_string(),
    );
    Err(Error::RolloutFailed {
        summary,
        rolled_back,
    })
}

async fn timed_connect(step: &mut Step, cfg: &Config) -> Result<Cluster, Error> {
    let start = std::time::Instant::now();
    let cl = cluster::connect(step, cfg).await?;
    step.timings.record("connect", start.elapsed());
    Ok(cl)
}

fn msg(p: &Progress) -> &str {
    match p {
        Progress::Waiting(m) | Progress::Done(m) | Progress::Failed(m) | Progress::NotWaited(m) => {
            m
        }
    }
}

async fn ensure_namespace(
    cl: &Cluster,
    ns: &str,
    objs: &[Obj],
    manager: &str,
) -> Result<(), Error> {
    // The history lives in `ns`; when the overlay creates that namespace, create it first.
    if let Some(o) = objs
        .iter()
        .find(|o| o.kind() == "Namespace" && o.name == ns)
    {
        apply::apply_one(&cl.client, o, manager, false).await?;
    }
    Ok(())
}

async fn set_status(
    cl: &Cluster,
    loc: &history::Location,
    hist: &mut History,
    number: u32,
    status: &str,
    cfg: &Config,
) {
    if let Some(r) = hist.revisions.iter_mut().find(|r| r.number == number) {
        r.status = status.into();
    }
    if let Err(e) =
        history::save(&cl.client, loc, hist, cfg.history_limit, &cfg.field_manager).await
    {
        tracing::warn!("cannot update the revision history: {e}");
    }
}

/// Re-applies the saved before-state (server-side, force) and deletes what this deploy created;
/// then waits for the restored workloads.
async fn restore_before(
    step: &mut Step,
    cl: &Cluster,
    objs: &[Obj],
    before: &[Option<Value>],
    cfg: &Config,
) -> Result<(), Error> {
    step.console
        .group("Rolling back to the state before this deploy");
    let mut restored = Vec::new();
    let mut result = Ok(());
    for (o, b) in objs.iter().zip(before).rev() {
        let r = match b {
            Some(live) => {
                let mut back = o.clone();
                back.manifest = apply::clean_live(live);
                apply::apply_one(&cl.client, &back, &cfg.field_manager, false)
                    .await
                    .map(|_| "restored")
            }
            None if o.kind() == "Namespace" => Ok("kept"),
            None => apply::delete(&cl.client, o, false)
                .await
                .map(|()| "deleted"),
        };
        match r {
            Ok(what) => {
                step.console.info(&format!("{} {what}", o.id()));
                restored.push(row(o, what));
            }
            Err(e) => {
                step.console.info(&format!("{}: {e}", o.id()));
                result = Err(Error::Apply(e));
            }
        }
    }
    if result.is_ok() {
        let wl: Vec<Workload> = workloads(objs)
            .into_iter()
            .filter(|w| {
                objs.iter()
                    .zip(before)
                    .any(|(o, b)| b.is_some() && o.name == w.name && o.kind() == w.kind)
            })
            .collect();
        let cancel = step.cancel.clone();
        let console = step.console.clone();
        match rollout::wait_all(&cl.client, &wl, cfg.timeout, &cancel, |m| console.info(m)).await {
            Ok(o) if o.failed.is_empty() && !o.timed_out => {
                step.console.info("the previous state is live again")
            }
            Ok(o) => {
                let what = o
                    .failed
                    .iter()
                    .map(|(w, m)| format!("{}: {m}", w.id()))
                    .collect::<Vec<_>>()
                    .join("; ");
                step.console.warning(
                    "rollback",
                    &format!("the restored state did not become ready: {what}"),
                );
            }
            Err(e) => step.console.warning(
                "rollback",
                &format!("cannot watch the restored workloads: {e}"),
            ),
        }
    }
    step.console.end_group();
    step.summary.heading(3, "Rolled back");
    let table: Vec<Vec<String>> = restored
        .iter()
        .map(|r| {
            vec![
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
                r.result.clone(),
            ]
        })
        .collect();
    step.summary
        .table(&["Kind", "Namespace", "Name", "Result"], &table);
    result
}

/// The `health-check-url` probe (when set) run in the namespace of `obj`; `Some(reason)` when it
/// fails.
async fn url_health_check(step: &Step, cl: &Cluster, cfg: &Config, obj: &Obj) -> Option<String> {
    let url = cfg.health_check_url.as_ref()?;
    let ns = obj.namespace.clone().unwrap_or_default();
    strategy::health_check(
        &cl.client,
        &ns,
        url,
        &cfg.health_check_image,
        &cfg.field_manager,
        cfg.timeout,
        &step.cancel,
    )
    .await
    .err()
}

async fn diagnostics(step: &mut Step, cl: &Cluster, outcome: &rollout::WaitOutcome) {
    let mut targets: Vec<Workload> = outcome.failed.iter().map(|(w, _)| w.clone()).collect();
    if targets.is_empty() {
        targets = outcome
            .results
            .iter()
            .filter(|(_, p)| matches!(p, Progress::Waiting(_)))
            .filter_map(|(id, _)| {
                let mut it = id.splitn(3, '/');
                Some(Workload {
                    kind: it.next()?.into(),
                    namespace: it.next()?.into(),
                    name: it.next()?.into(),
                })
            })
            .collect();
    }
    step.console.group("Diagnostics");
    step.summary.heading(3, "Diagnostics");
    for w in targets.iter().take(5) {
        let reports = rollout::diagnose(&cl.client, w).await;
        step.console.info(&format!("{}:", w.id()));
        if reports.is_empty() {
            step.console
                .info("  no failing pods of the new revision found");
        }
        let mut md = String::new();
        for r in &reports {
            step.console.info(&format!("  pod {}", r.pod));
            for c in &r.containers {
                step.console.info(&format!("    {c}"));
            }
            for e in &r.events {
                step.console.info(&format!("    event: {e}"));
            }
            if !r.logs.trim().is_empty() {
                step.console.info("    last log lines:");
                step.console.untrusted(&r.logs);
            }
            md.push_str(&format!("**pod `{}`**\n\n", r.pod));
            for c in &r.containers {
                md.push_str(&format!("- {c}\n"));
            }
            for e in &r.events {
                md.push_str(&format!("- event: {e}\n"));
            }
            if !r.logs.trim().is_empty() {
                md.push_str(&format!(
                    "\n```\n{}\n```\n",
                    r.logs.trim_end().replace("```", "'''")
                ));
            }
            md.push('\n');
        }
        if md.is_empty() {
            md = "no failing pods of the new revision found\n".into();
        }
        step.summary.details(&w.id(), &md);
    }
    step.console.end_group();
}

fn report(
    step: &mut Step,
    rows: &[Row],
    images: &[String],
    rolled_back: bool,
    outcome: Option<&rollout::WaitOutcome>,
    headline: &str,
) {
    step.outputs.set_always(
        "applied",
        serde_json::to_string(rows).unwrap_or_else(|_| "[]".into()),
    );
    step.outputs.set("images", images.join("\n"));
    step.outputs
        .set_always("rolled-back", rolled_back.to_string());
    step.summary.heading(3, "kustomize-deploy");
    step.summary.raw(headline);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let id = format!("{}/{}/{}", r.kind, r.namespace, r.name);
            let rollout = outcome.and_then(|o| o.results.get(&id)).map(|p| match p {
                Progress::Done(m) => format!("ready ({m})"),
                Progress::Waiting(m) => format!("not ready: {m}"),
                Progress::Failed(m) => format!("failed: {m}"),
                Progress::NotWaited(m) => format!("applied, not waited: {m}"),
            });
            vec![
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
                r.result.clone(),
                rollout.unwrap_or_default(),
            ]
        })
        .collect();
    step.summary
        .table(&["Kind", "Namespace", "Name", "Result", "Rollout"], &table);
    if !images.is_empty() {
        step.summary.raw(&format!(
            "Images: {}",
            images
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

async fn dry_run(
    step: &mut Step,
    cfg: &Config,
    cl: &Cluster,
    objs: &[Obj],
    before: &[Option<Value>],
) -> Result<(), Error> {
    let results = apply::apply_all(&cl.client, objs, &cfg.field_manager, true).await;
    let mut plan = Vec::new();
    let mut table = Vec::new();
    for ((o, b), r) in objs.iter().zip(before).zip(results) {
        let would = r?;
        let (action, changes) = match b {
            None => ("create".to_string(), Vec::new()),
            Some(live) => {
                let mut paths = Vec::new();
                diff_paths(
                    &normalise(&redact_secret(live)),
                    &normalise(&redact_secret(&would)),
                    "",
                    &mut paths,
                );
                if o.kind() == "Secret" {
                    // Secret values are compared but never shown.
                    let mut p2 = Vec::new();
                    diff_paths(&normalise(live), &normalise(&would), "", &mut p2);
                    paths = p2;
                }
                if paths.is_empty() {
                    ("unchanged".to_string(), paths)
                } else {
                    ("update".to_string(), paths)
                }
            }
        };
        table.push(vec![
            o.kind().to_string(),
            o.namespace.clone().unwrap_or_default(),
            o.name.clone(),
            action.clone(),
            changes.join(", "),
        ]);
        plan.push(json!({"kind": o.kind(), "namespace": o.namespace, "name": o.name, "action": action, "changes": changes,
            "manifest": redact_secret(&o.manifest)}));
    }
    let plan = json!({"overlay": cfg.overlay_input, "images": cfg.images, "objects": plan,
        "workloads": workloads(objs).iter().map(Workload::id).collect::<Vec<_>>(), "timeout": gantry_runtime::duration::human(cfg.timeout)});
    step.print_plan(
        "kustomize-deploy plan (dry run: nothing was changed)",
        &plan,
    );
    step.summary.table(
        &["Kind", "Namespace", "Name", "Action", "Changed fields"],
        &table,
    );
    step.outputs.set("applied", serde_json::to_string(&table.iter().map(|r| json!({"kind": r[0], "namespace": r[1], "name": r[2], "result": if r[3] == "unchanged" { "unchanged".to_string() } else { format!("would {}", r[3]) }})).collect::<Vec<_>>()).unwrap_or_default());
    step.outputs.set("images", images_of(objs).join("\n"));
    step.outputs.set("rolled-back", "false");
    Ok(())
}

async fn manual_rollback(step: &mut Step, cfg: &Config, to: Option<u32>) -> Result<(), Error> {
    if cfg.overlay_input.is_empty() {
        return Err(gantry_runtime::InputError::Required {
            name: "overlay".into(),
        }
        .into());
    }
    let cl = timed_connect(step, cfg).await?;
    let default_ns = cfg
        .namespace
        .clone()
        .unwrap_or_else(|| cl.default_namespace.clone());
    let loc = history::location(&cfg.overlay_input, &default_ns);
    let mut hist = history::load(&cl.client, &loc)
        .await
        .map_err(api_err("reading the revision history"))?;
    let Some(latest) = hist
        .revisions
        .iter()
        .rev()
        .find(|r| r.status != "failed" && r.status != "rolled-back")
        .cloned()
    else {
        return Err(Error::NoRollback(format!(
            "no deployed revision of {} in namespace {}",
            cfg.overlay_input, loc.namespace
        )));
    };
    // What to restore: the named revision's applied objects, or the one before the latest.
    let (target_objs, label): (Vec<(Saved, Option<Value>)>, String) = match to {
        Some(n) => {
            let r = hist
                .revisions
                .iter()
                .find(|r| r.number == n)
                .cloned()
                .ok_or_else(|| {
                    Error::NoRollback(format!(
                        "revision {n} is not in the history (kept: {})",
                        hist.revisions
                            .iter()
                            .map(|r| r.number.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            (
                r.objects
                    .iter()
                    .map(|s| (s.clone(), Some(s.applied.clone())))
                    .collect(),
                format!("revision {n}"),
            )
        }
        None => {
            let prev = hist
                .revisions
                .iter()
                .rev()
                .find(|r| {
                    r.number < latest.number && (r.status == "deployed" || r.status == "rollback")
                })
                .cloned();
            match prev {
                Some(p) => (
                    p.objects
                        .iter()
                        .map(|s| (s.clone(), Some(s.applied.clone())))
                        .collect(),
                    format!("revision {}", p.number),
                ),
                None => (
                    latest
                        .objects
                        .iter()
                        .map(|s| (s.clone(), s.before.clone()))
                        .collect(),
                    format!("the state before revision {}", latest.number),
                ),
            }
        }
    };
    let number = hist.next_number();
    let mut rows = Vec::new();
    let mut objs = Vec::new();
    let target_ids: BTreeSet<String> = target_objs
        .iter()
        .map(|(s, _)| {
            format!(
                "{}/{}/{}",
                s.kind,
                s.namespace.as_deref().unwrap_or("-"),
                s.name
            )
        })
        .collect();
    step.console
        .group(&format!("Rolling back {} to {label}", cfg.overlay_input));
    let mut saved = Vec::new();
    for (s, manifest) in &target_objs {
        let Some(m) = manifest else { continue };
        let mut o = apply::from_saved(
            &s.api_version,
            &s.kind,
            &s.plural,
            s.namespace.as_deref(),
            m.clone(),
        );
        o.manifest["metadata"]["labels"][INVENTORY_LABEL] = json!(loc.name);
        let live = apply::get(&cl.client, &o)
            .await
            .map_err(api_err("reading a live object"))?;
        apply::apply_one(&cl.client, &o, &cfg.field_manager, false).await?;
        step.console.info(&format!("{} restored", o.id()));
        rows.push(row(&o, "restored"));
        saved.push(Saved {
            before: live.as_ref().map(apply::clean_live),
            applied: o.manifest.clone(),
            ..s.clone()
        });
        objs.push(o);
    }
    // Objects the latest revision has that the target did not: delete what the latest created.
    for s in &latest.objects {
        let id = format!(
            "{}/{}/{}",
            s.kind,
            s.namespace.as_deref().unwrap_or("-"),
            s.name
        );
        let target_had = target_objs.iter().any(|(t, m)| {
            m.is_some()
                && format!(
                    "{}/{}/{}",
                    t.kind,
                    t.namespace.as_deref().unwrap_or("-"),
                    t.name
                ) == id
        });
        if target_had
            || s.kind == "Namespace"
            || (to.is_none() && target_ids.contains(&id) && s.before.is_some())
        {
            continue;
        }
        let o = apply::from_saved(
            &s.api_version,
            &s.kind,
            &s.plural,
            s.namespace.as_deref(),
            s.applied.clone(),
        );
        apply::delete(&cl.client, &o, false).await?;
        step.console.info(&format!("{} deleted", o.id()));
        rows.push(row(&o, "deleted"));
    }
    step.console.end_group();
    hist.revisions.push(Revision {
        number,
        time: step.now().to_rfc3339(),
        status: "rollback".into(),
        images: images_of(&objs),
        commit: Some(step.github.sha.clone()).filter(|s| !s.is_empty()),
        run_url: step.github.run_url(),
        objects: saved,
    });
    history::save(
        &cl.client,
        &loc,
        &mut hist,
        cfg.history_limit,
        &cfg.field_manager,
    )
    .await
    .map_err(api_err("saving the revision history"))?;
    step.outputs.set_always("revision", number.to_string());
    let wl = workloads(&objs);
    let cancel = step.cancel.clone();
    let console = step.console.clone();
    let outcome = rollout::wait_all(&cl.client, &wl, cfg.timeout, &cancel, |m| console.info(m))
        .await
        .map_err(api_err("watching the rollback"))?;
    report(
        step,
        &rows,
        &images_of(&objs),
        true,
        Some(&outcome),
        &format!(
            "Rolled back {} to {label} (recorded as revision {number}).",
            cfg.overlay_input
        ),
    );
    if !outcome.failed.is_empty() || outcome.timed_out {
        let summary = outcome
            .failed
            .iter()
            .map(|(w, m)| format!("{}: {m}", w.id()))
            .collect::<Vec<_>>()
            .join("; ");
        diagnostics(step, &cl, &outcome).await;
        return Err(Error::RolloutFailed {
            summary: if summary.is_empty() {
                "the rollback did not become ready before the deadline".into()
            } else {
                summary
            },
            rolled_back: false,
        });
    }
    Ok(())
}

async fn wait_for(
    step: &mut Step,
    cl: &Cluster,
    wl: &[Workload],
    timeout: std::time::Duration,
    stage: &str,
) -> Result<rollout::WaitOutcome, Error> {
    let console = step.console.clone();
    let client = cl.client.clone();
    let cancel = step.cancel.clone();
    let wl = wl.to_vec();
    step.stage(stage, async move {
        rollout::wait_all(&client, &wl, timeout, &cancel, |m| console.info(m)).await
    })
    .await
    .map_err(api_err("watching the rollout"))
}

fn outcome_failure(o: &rollout::WaitOutcome, timeout: std::time::Duration) -> Option<String> {
    if !o.failed.is_empty() {
        return Some(
            o.failed
                .iter()
                .map(|(w, m)| format!("{}: {m}", w.id()))
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    if o.timed_out {
        let pending: Vec<String> = o
            .results
            .iter()
            .filter(|(_, p)| matches!(p, Progress::Waiting(_)))
            .map(|(id, p)| format!("{id} ({})", msg(p)))
            .collect();
        return Some(format!(
            "deadline of {} passed; still waiting for {}",
            gantry_runtime::duration::human(timeout),
            pending.join(", ")
        ));
    }
    None
}

async fn apply_rows(
    cl: &Cluster,
    objs: &[Obj],
    manager: &str,
    rows: &mut Vec<Row>,
) -> Result<(), Error> {
    let before = apply::snapshot(&cl.client, objs)
        .await
        .map_err(api_err("reading live objects"))?;
    for (i, r) in apply::apply_all(&cl.client, objs, manager, false)
        .await
        .into_iter()
        .enumerate()
    {
        let after = r?;
        let o = &objs[i];
        let result = match before[i]
            .as_ref()
            .and_then(|b| b.pointer("/metadata/resourceVersion").cloned())
        {
            None => "created",
            Some(rv) if after.pointer("/metadata/resourceVersion") == Some(&rv) => "unchanged",
            Some(_) => "configured",
        };
        tracing::info!("{} {result}", o.id());
        rows.push(row(o, result));
    }
    Ok(())
}

fn live_color_of(v: &Value) -> Option<String> {
    v.pointer(&format!(
        "/spec/selector/{}",
        strategy::COLOR_LABEL.replace('/', "~1")
    ))
    .and_then(Value::as_str)
    .map(str::to_string)
}

/// Blue-green: deploy the idle color next to the live one, wait, check, switch the Services.
async fn blue_green(
    step: &mut Step,
    cfg: &Config,
    cl: &Cluster,
    objs: &[Obj],
    loc: &history::Location,
    hist: &mut History,
    number: u32,
) -> Result<(), Error> {
    let deps: Vec<&Obj> = objs.iter().filter(|o| o.kind() == "Deployment").collect();
    let svcs: Vec<&Obj> = objs
        .iter()
        .filter(|o| {
            o.kind() == "Service"
                && deps
                    .iter()
                    .any(|d| strategy::selects(&o.manifest, &d.manifest))
        })
        .collect();
    if deps.is_empty() || svcs.is_empty() {
        set_status(cl, loc, hist, number, "failed", cfg).await;
        return Err(Error::Strategy(
            "blue-green needs at least one Deployment and a Service selecting its pods in the overlay".into(),
        ));
    }
    let mut live_color = None;
    for s in &svcs {
        if let Some(l) = apply::get(&cl.client, s)
            .await
            .map_err(api_err("reading a Service"))?
            && let Some(c) = live_color_of(&l)
        {
            live_color = Some(c);
            break;
        }
    }
    let new = live_color.as_deref().map(strategy::other).unwrap_or("blue");
    step.console.info(&format!(
        "blue-green: live color {}, deploying {new}",
        live_color.as_deref().unwrap_or("none")
    ));
    let colored: Vec<Obj> = deps.iter().map(|d| strategy::colored(d, new)).collect();
    let mut phase1: Vec<Obj> = objs
        .iter()
        .filter(|o| o.kind() != "Deployment" && !svcs.iter().any(|s| s.id() == o.id()))
        .cloned()
        .collect();
    phase1.extend(colored.iter().cloned());
    let mut rows = Vec::new();
    apply_rows(cl, &phase1, &cfg.field_manager, &mut rows).await?;
    let outcome = wait_for(step, cl, &workloads(&colored), cfg.timeout, "wait").await?;
    let mut failure = outcome_failure(&outcome, cfg.timeout);
    if failure.is_none() {
        failure = url_health_check(step, cl, cfg, &colored[0]).await;
    }
    if let Some(summary) = failure {
        step.console.error("rollout failed", &summary);
        diagnostics(step, cl, &outcome).await;
        for c in &colored {
            apply::delete(&cl.client, c, false).await?;
            rows.push(row(c, "deleted (rejected color)"));
        }
        set_status(cl, loc, hist, number, "rolled-back", cfg).await;
        report(
            step,
            &rows,
            &images_of(objs),
            true,
            Some(&outcome),
            &format!(
                "Blue-green: {new} was rejected; traffic stays on {}.",
                live_color.as_deref().unwrap_or("nothing (first deploy)")
            ),
        );
        return Err(Error::RolloutFailed {
            summary,
            rolled_back: true,
        });
    }
    for s in &svcs {
        let p = strategy::pinned(s, new);
        apply::apply_one(&cl.client, &p, &cfg.field_manager, false).await?;
        step.console.info(&format!("{} switched to {new}", p.id()));
        rows.push(row(&p, &format!("switched to {new}")));
    }
    if let Some(old) = &live_color {
        for d in &deps {
            let o = strategy::colored(d, old);
            if cfg.keep_previous {
                rows.push(row(&o, "kept (previous color)"));
            } else {
                apply::delete(&cl.client, &o, false).await?;
                rows.push(row(&o, "deleted (previous color)"));
            }
        }
    }
    step.outputs.set("color", new);
    set_status(cl, loc, hist, number, "deployed", cfg).await;
    report(
        step,
        &rows,
        &images_of(objs),
        false,
        Some(&outcome),
        &format!("Blue-green: traffic switched to {new} (revision {number})."),
    );
    Ok(())
}

/// `--rollback` with blue-green: switch the Services back to the kept previous color.
async fn switch_back(step: &mut Step, cfg: &Config) -> Result<(), Error> {
    if cfg.overlay_input.is_empty() {
        return Err(gantry_runtime::InputError::Required {
            name: "overlay".into(),
        }
        .into());
    }
    let cl = timed_connect(step, cfg).await?;
    let default_ns = cfg
        .namespace
        .clone()
        .unwrap_or_else(|| cl.default_namespace.clone());
    let loc = history::location(&cfg.overlay_input, &default_ns);
    let mut hist = history::load(&cl.client, &loc)
        .await
        .map_err(api_err("reading the revision history"))?;
    let Some(latest) = hist
        .revisions
        .iter()
        .rev()
        .find(|r| r.status == "deployed")
        .cloned()
    else {
        return Err(Error::NoRollback(format!(
            "no deployed revision of {} in namespace {}",
            cfg.overlay_input, loc.namespace
        )));
    };
    let objs: Vec<Obj> = latest
        .objects
        .iter()
        .map(|s| {
            apply::from_saved(
                &s.api_version,
                &s.kind,
                &s.plural,
                s.namespace.as_deref(),
                s.applied.clone(),
            )
        })
        .collect();
    let deps: Vec<&Obj> = objs.iter().filter(|o| o.kind() == "Deployment").collect();
    let svcs: Vec<&Obj> = objs
        .iter()
        .filter(|o| {
            o.kind() == "Service"
                && deps
                    .iter()
                    .any(|d| strategy::selects(&o.manifest, &d.manifest))
        })
        .collect();
    let mut current = None;
    for s in &svcs {
        if let Some(l) = apply::get(&cl.client, s)
            .await
            .map_err(api_err("reading a Service"))?
        {
            current = current.or(live_color_of(&l));
        }
    }
    let Some(current) = current else {
        return Err(Error::NoRollback(
            "the Services are not pinned to a color; nothing to switch back".into(),
        ));
    };
    let back = strategy::other(&current);
    let previous: Vec<Obj> = deps.iter().map(|d| strategy::colored(d, back)).collect();
    for p in &previous {
        if apply::get(&cl.client, p)
            .await
            .map_err(api_err("reading a Deployment"))?
            .is_none()
        {
            return Err(Error::NoRollback(format!(
                "{} does not exist (deployed with keep-previous: false?)",
                p.id()
            )));
        }
    }
    let outcome = wait_for(step, &cl, &workloads(&previous), cfg.timeout, "wait").await?;
    if let Some(summary) = outcome_failure(&outcome, cfg.timeout) {
        return Err(Error::NoRollback(format!(
            "the previous color {back} is not ready: {summary}"
        )));
    }
    let mut rows = Vec::new();
    for s in &svcs {
        let p = strategy::pinned(s, back);
        apply::apply_one(&cl.client, &p, &cfg.field_manager, false).await?;
        step.console
            .info(&format!("{} switched back to {back}", p.id()));
        rows.push(row(&p, &format!("switched back to {back}")));
    }
    let number = hist.next_number();
    hist.revisions.push(Revision {
        number,
        time: step.now().to_rfc3339(),
        status: "rollback".into(),
        images: images_of(&previous),
        commit: Some(step.github.sha.clone()).filter(|s| !s.is_empty()),
        run_url: step.github.run_url(),
        objects: latest.objects.clone(),
    });
    history::save(
        &cl.client,
        &loc,
        &mut hist,
        cfg.history_limit,
        &cfg.field_manager,
    )
    .await
    .map_err(api_err("saving the revision history"))?;
    step.outputs.set_always("revision", number.to_string());
    step.outputs.set("color", back);
    report(
        step,
        &rows,
        &images_of(&previous),
        true,
        Some(&outcome),
        &format!("Blue-green: traffic switched back from {current} to {back}."),
    );
    Ok(())
}

/// Canary: run a few new pods behind the same Service, watch them, then promote or reject.
#[allow(clippy::too_many_arguments)]
async fn canary(
    step: &mut Step,
    cfg: &Config,
    cl: &Cluster,
    objs: &[Obj],
    before: &[Option<Value>],
    loc: &history::Location,
    hist: &mut History,
    number: u32,
) -> Result<(), Error> {
    let deps: Vec<&Obj> = objs.iter().filter(|o| o.kind() == "Deployment").collect();
    if deps.is_empty() {
        set_status(cl, loc, hist, number, "failed", cfg).await;
        return Err(Error::Strategy(
            "canary needs at least one Deployment in the overlay".into(),
        ));
    }
    let canaries: Vec<Obj> = deps
        .iter()
        .map(|d| strategy::canary(d, cfg.canary_size))
        .collect();
    let mut phase1: Vec<Obj> = objs
        .iter()
        .filter(|o| o.kind() != "Deployment")
        .cloned()
        .collect();
    phase1.extend(canaries.iter().cloned());
    let mut rows = Vec::new();
    apply_rows(cl, &phase1, &cfg.field_manager, &mut rows).await?;
    let cw = workloads(&canaries);
    let outcome = wait_for(step, cl, &cw, cfg.timeout, "wait for canary").await?;
    let mut failure = outcome_failure(&outcome, cfg.timeout);
    if failure.is_none() {
        step.console.info(&format!(
            "canary ready; watching it for {}",
            gantry_runtime::duration::human(cfg.canary_duration)
        ));
        let start = std::time::Instant::now();
        if let Err(e) =
            strategy::watch_healthy(&cl.client, &cw, cfg.canary_duration, &step.cancel).await
        {
            failure = Some(e);
        }
        step.timings.record("canary analysis", start.elapsed());
    }
    if failure.is_none() {
        failure = url_health_check(step, cl, cfg, &canaries[0]).await;
    }
    if let Some(summary) = failure {
        step.console.error("canary rejected", &summary);
        let diag = rollout::WaitOutcome {
            results: outcome.results.clone(),
            timed_out: false,
            failed: cw.iter().map(|w| (w.clone(), summary.clone())).collect(),
        };
        diagnostics(step, cl, &diag).await;
        for c in &canaries {
            apply::delete(&cl.client, c, false).await?;
            rows.push(row(c, "deleted (canary rejected)"));
        }
        set_status(cl, loc, hist, number, "rolled-back", cfg).await;
        report(
            step,
            &rows,
            &images_of(objs),
            true,
            Some(&outcome),
            "Canary rejected; the stable Deployments were not changed.",
        );
        return Err(Error::RolloutFailed {
            summary: format!("canary rejected: {summary}"),
            rolled_back: true,
        });
    }
    // Promote: roll the stable Deployments to the new version, then remove the canaries.
    let stable: Vec<Obj> = deps.iter().map(|d| (*d).clone()).collect();
    apply_rows(cl, &stable, &cfg.field_manager, &mut rows).await?;
    let outcome = wait_for(
        step,
        cl,
        &workloads(&stable),
        cfg.timeout,
        "wait for promotion",
    )
    .await?;
    for c in &canaries {
        apply::delete(&cl.client, c, false).await?;
        rows.push(row(c, "deleted (promoted)"));
    }
    if let Some(summary) = outcome_failure(&outcome, cfg.timeout) {
        step.console.error("rollout failed", &summary);
        diagnostics(step, cl, &outcome).await;
        let mut rolled_back = false;
        if cfg.rollback_on_failure {
            let idx: Vec<usize> = objs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.kind() == "Deployment")
                .map(|(i, _)| i)
                .collect();
            let o2: Vec<Obj> = idx.iter().map(|&i| objs[i].clone()).collect();
            let b2: Vec<Option<Value>> = idx.iter().map(|&i| before[i].clone()).collect();
            rolled_back = restore_before(step, cl, &o2, &b2, cfg).await.is_ok();
        }
        set_status(
            cl,
            loc,
            hist,
            number,
            if rolled_back { "rolled-back" } else { "failed" },
            cfg,
        )
        .await;
        report(
            step,
            &rows,
            &images_of(objs),
            rolled_back,
            Some(&outcome),
            &format!("Canary promoted but the rollout failed: {summary}"),
        );
        return Err(Error::RolloutFailed {
            summary,
            rolled_back,
        });
    }
    set_status(cl, loc, hist, number, "deployed", cfg).await;
    report(
        step,
        &rows,
        &images_of(objs),
        false,
        Some(&outcome),
        &format!("Canary promoted (revision {number})."),
    );
    Ok(())
}
