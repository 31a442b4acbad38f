//! The plan: plain serialisable data describing what a run will do (hosts, batches, stages,
//! artifact, policies). `--dry-run` prints it with each host's read-only preflight facts; tests
//! assert it as data. Building it needs no network.

use serde::Serialize;

use crate::artifact::Prepared;
use crate::config::{Config, Host, Mode, OnFailure};

/// One host in the plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlanHost {
    /// `user@host:port`.
    pub target: String,
    /// Deploy path on the host.
    pub deploy_path: String,
    /// Batch index for the switch.
    pub batch: usize,
}

/// What a run does.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Deploy, rollback or unlock.
    pub mode: Mode,
    /// Release id (deploy) or requested target (rollback).
    pub release_id: Option<String>,
    /// Hosts.
    pub hosts: Vec<PlanHost>,
    /// Jump hosts.
    pub jump_hosts: Vec<String>,
    /// Stages per host, in order.
    pub stages: Vec<&'static str>,
    /// Artifact facts.
    pub artifact: Option<Prepared>,
    /// Bytes that must be free on each host.
    pub min_free_bytes: Option<u64>,
    /// Number of switch batches.
    pub batches: usize,
    /// Policy after a failed switch.
    pub on_failure: OnFailure,
    /// Roll back automatically.
    pub rollback_on_failure: bool,
    /// Stop before the switch.
    pub verify_only: bool,
    /// Releases kept.
    pub keep_releases: u32,
}

/// Hosts grouped into switch batches (`batch-size` 0: one batch).
pub(crate) fn batches(n: usize, size: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return Vec::new();
    }
    let size = if size == 0 { n } else { size };
    (0..n)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect()
}

/// Minimum free bytes: the input, else 3 × the artifact size, and never less than the unpacked
/// size plus 10%.
pub(crate) fn min_free(cfg_min: Option<u64>, art: &Prepared) -> u64 {
    cfg_min.unwrap_or_else(|| {
        (art.size.saturating_mul(3)).max(art.unpacked_size + art.unpacked_size / 10)
    })
}

impl Plan {
    /// Builds the plan.
    pub fn build(cfg: &Config, art: Option<&Prepared>) -> Self {
        let b = batches(cfg.hosts.len(), cfg.batch_size);
        let batch_of = |i: usize| b.iter().position(|x| x.contains(&i)).unwrap_or(0);
        let stages: Vec<&'static str> = match cfg.mode {
            Mode::Unlock => vec!["connect", "unlock"],
            Mode::Rollback => vec![
                "connect",
                "preflight",
                "lock",
                "target",
                "switch",
                "restart",
                "health",
                "history",
                "unlock",
            ],
            Mode::Deploy => {
                let mut s = vec!["connect", "preflight+lock", "upload"];
                if cfg.dotenv.is_some() {
                    s.push("dotenv");
                }
                s.push("prepare");
                if !cfg.verify_only {
                    s.extend(["switch", "restart", "health"]);
                    if cfg.post_script.is_some() {
                        s.push("post-script");
                    }
                    s.push("cleanup+history+unlock");
                } else {
                    s.push("history+unlock");
                }
                s
            }
        };
        Self {
            mode: cfg.mode.clone(),
            release_id: match cfg.mode {
                Mode::Deploy => Some(cfg.release_id.clone()),
                Mode::Rollback => cfg.rollback_to.clone(),
                Mode::Unlock => None,
            },
            hosts: cfg
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h): (usize, &Host)| PlanHost {
                    target: h.label(),
                    deploy_path: h.deploy_path.clone(),
                    batch: batch_of(i),
                })
                .collect(),
            jump_hosts: cfg.jump_hosts.iter().map(Host::label).collect(),
            stages,
            artifact: art.cloned(),
            min_free_bytes: art.map(|a| min_free(cfg.min_free, a)),
            batches: b.len(),
            on_failure: cfg.on_failure,
            rollback_on_failure: cfg.rollback_on_failure,
            verify_only: cfg.verify_only,
            keep_releases: cfg.keep_releases,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batching() {
        assert_eq!(batches(5, 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(batches(3, 0), vec![vec![0, 1, 2]]);
        assert!(batches(0, 3).is_empty());
    }
}
