//! Connecting to the cluster: kubeconfig from an input (raw or base64, masked), a file,
//! `KUBECONFIG`/`~/.kube/config` or the in-cluster service account; the selected context; a
//! clear error for a missing exec plugin, an unreachable server or refused credentials. It must
//! never log credential values.

use std::path::Path;
use std::time::Duration;

use gantry_runtime::Step;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::{Config, KubeSource};

/// Cluster connection errors.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or parsed.
    #[error("cannot use the kubeconfig ({source_name}): {reason}")]
    Kubeconfig {
        /// Where it came from.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The context does not exist.
    #[error("kube-context `{context}` is not in the kubeconfig (contexts: {available})")]
    NoContext {
        /// Asked for.
        context: String,
        /// Known.
        available: String,
    },
    /// The user needs an exec credential plugin that is not installed.
    #[error(
        "the kubeconfig user `{user}` needs the credential plugin `{command}`, which is not installed in this image"
    )]
    ExecPluginMissing {
        /// User entry.
        user: String,
        /// Plugin command.
        command: String,
    },
    /// TCP/TLS failure.
    #[error("cannot reach the cluster at {server}: {reason}")]
    Unreachable {
        /// Server URL.
        server: String,
        /// Why.
        reason: String,
    },
    /// 401/403.
    #[error(
        "the cluster at {server} refused the credentials ({code} {reason}); the token or certificate may be expired or revoked"
    )]
    Unauthorized {
        /// Server URL.
        server: String,
        /// HTTP code.
        code: u16,
        /// Status reason.
        reason: String,
    },
}

/// A connected client and where it points.
pub struct Cluster {
    /// The client.
    pub client: kube::Client,
    /// Server URL (for messages).
    pub server: String,
    /// Namespace of the context (or `default`).
    pub default_namespace: String,
}

fn kubeconfig_from(
    step: &Step,
    cfg: &Config,
) -> Result<Option<(Kubeconfig, String)>, ClusterError> {
    let bad = |name: &str, e: &dyn std::fmt::Display| ClusterError::Kubeconfig {
        source_name: name.to_string(),
        reason: e.to_string(),
    };
    match &cfg.kube {
        KubeSource::Inline(s) => Kubeconfig::from_yaml(s.expose())
            .map(|k| Some((k, "input kubeconfig".to_string())))
            .map_err(|e| bad("input kubeconfig", &scrub(&e.to_string()))),
        KubeSource::File(p) => read_file(step, p).map(|k| Some((k, p.display().to_string()))),
        KubeSource::Default => {
            if let Some(list) = step.env.get("KUBECONFIG").filter(|s| !s.is_empty()) {
                let mut merged: Option<Kubeconfig> = None;
                for p in list
                    .split(':')
                    .filter(|p| !p.is_empty() && Path::new(p).is_file())
                {
                    let k = read_file(step, Path::new(p))?;
                    merged = Some(match merged {
                        None => k,
                        Some(m) => m.merge(k).map_err(|e| bad(p, &e))?,
                    });
                }
                return Ok(merged.map(|k| (k, "KUBECONFIG".to_string())));
            }
            if step.env.get("KUBERNETES_SERVICE_HOST").is_some() {
                return Ok(None);
            }
            let home = step.env.get("HOME").unwrap_or("/root");
            let p = Path::new(home).join(".kube/config");
            if p.is_file() {
                return read_file(step, &p).map(|k| Some((k, p.display().to_string())));
            }
            Err(ClusterError::Kubeconfig {
                source_name: "defaults".into(),
                reason: "no kubeconfig input, no KUBECONFIG, no ~/.kube/config and not running in a cluster".into(),
            })
        }
    }
}

fn read_file(step: &Step, p: &Path) -> Result<Kubeconfig, ClusterError> {
    let text = std::fs::read_to_string(p).map_err(|e| ClusterError::Kubeconfig {
        source_name: p.display().to_string(),
        reason: e.to_string(),
    })?;
    crate::config::mask_kubeconfig(step, &text);
    Kubeconfig::from_yaml(&text).map_err(|e| ClusterError::Kubeconfig {
        source_name: p.display().to_string(),
        reason: scrub(&e.to_string()),
    })
}

/// Error texts from YAML parsers can quote input; keep only the first line, no long tokens.
fn scrub(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|w| if w.len() > 40 { "…" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn on_path(step: &Step, cmd: &str) -> bool {
    if cmd.contains('/') {
        return Path::new(cmd).is_file();
    }
    step.env
        .get("PATH")
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
        .any(|d| !d.is_empty() && Path::new(d).join(cmd).is_file())
}

/// Builds the client and checks that the server answers and accepts the credentials.
pub async fn connect(step: &Step, cfg: &Config) -> Result<Cluster, ClusterError> {
    // Several TLS backends are linked into the binary; pick one explicitly (an error only means
    // one is installed already).
    // See: <https://docs.rs/rustls/latest/rustls/crypto/struct.CryptoProvider.html#using-the-per-process-default-cryptoprovider>
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (config, default_ns) = match kubeconfig_from(step, cfg)? {
        Some((kc, source_name)) => {
            let ctx_name = cfg
                .kube_context
                .clone()
                .or_else(|| kc.current_context.clone());
            if let Some(c) = &cfg.kube_context
                && !kc.contexts.iter().any(|x| &x.name == c)
            {
                return Err(ClusterError::NoContext {
                    context: c.clone(),
                    available: kc
                        .contexts
                        .iter()
                        .map(|x| x.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let ctx = kc
                .contexts
                .iter()
                .find(|x| Some(&x.name) == ctx_name.as_ref())
                .and_then(|x| x.context.clone());
            let ns = ctx
                .as_ref()
                .and_then(|c| c.namespace.clone())
                .unwrap_or_else(|| "default".into());
            if let Some(user_name) = ctx.as_ref().and_then(|c| c.user.clone())
                && let Some(user) = kc.auth_infos.iter().find(|u| u.name == user_name)
                && let Some(exec) = user.auth_info.as_ref().and_then(|a| a.exec.as_ref())
                && let Some(command) = &exec.command
                && !on_path(step, command)
            {
                return Err(ClusterError::ExecPluginMissing {
                    user: user_name,
                    command: command.clone(),
                });
            }
            let opts = KubeConfigOptions {
                context: cfg.kube_context.clone(),
                cluster: None,
                user: None,
            };
            let c = kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    source_name,
                    reason: scrub(&e.to_string()),
                })?;
            (c, ns)
        }
        None => {
            let c = kube::Config::incluster().map_err(|e| ClusterError::Kubeconfig {
                source_name: "in-cluster service account".into(),
                reason: e.to_string(),
            })?;
            let ns = c.default_namespace.clone();
            (c, ns)
        }
    };
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let mut config = config;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = None;
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Kubeconfig {
        source_name: "client".into(),
        reason: scrub(&e.to_string()),
    })?;
    match tokio::time::timeout(Duration::from_secs(20), client.apiserver_version()).await {
        Err(_) => {
            return Err(ClusterError::Unreachable {
                server,
                reason: "no answer within 20s".into(),
            });
        }
        Ok(Err(e)) => return Err(classify(&server, e)),
        Ok(Ok(v)) => tracing::info!("connected to {server} (Kubernetes {})", v.git_version),
    }
    Ok(Cluster {
        client,
        server,
        default_namespace: default_ns,
    })
}

/// Maps a kube error at connect time to a clear cause.
pub fn classify(server: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.code == 401 || s.code == 403 => ClusterError::Unauthorized {
            server: server.to_string(),
            code: s.code,
            reason: s.reason.clone(),
        },
        other => {
            let mut reason = other.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&other);
            while let Some(s) = src {
                reason = format!("{reason}: {s}");
                src = s.source();
            }
            if let kube::Error::Auth(_) = other {
                return ClusterError::Kubeconfig {
                    source_name: "credentials".into(),
                    reason: scrub(&reason),
                };
            }
            ClusterError::Unreachable {
                server: server.to_string(),
                reason: scrub(&reason),
            }
        }
    }
}
