//! Cancellation: SIGTERM/SIGINT become a token every action observes.
//!
//! The runner, on cancel, sends SIGINT to the `docker` CLI, which forwards it to our PID 1; 7.5 s
//! later SIGTERM, 2.5 s after that SIGKILL. So an action has about 7 s to finish or undo its
//! critical step and release locks. A second signal while cancelling ends the process at once
//! (exit 130) — the operator insists.
//!
//! See: <https://github.com/actions/runner/blob/main/src/Runner.Sdk/ProcessInvoker.cs>

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio_util::sync::CancellationToken;

/// How long after the first signal the process may keep running.
pub const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(8);

/// A cancellation token with the signal that caused it.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    token: CancellationToken,
    signal: Arc<AtomicI32>,
}

impl Cancel {
    /// A token that is never cancelled unless [`Cancel::cancel`] is called.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs SIGTERM/SIGINT handlers that cancel this token (needs a Tokio runtime).
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    _ = term.recv() => 15,
                    _ = int.recv() => 2,
                };
                if this.is_cancelled() {
                    tracing::error!("second signal: exiting now");
                    std::process::exit(130);
                }
                tracing::warn!(
                    signal = sig,
                    "cancellation requested: finishing the critical step and cleaning up"
                );
                this.signal.store(sig, Ordering::SeqCst);
                this.token.cancel();
                // Safety net: an action that does not wind down in time still ends before the
                // runner's SIGKILL (10 s after the first signal), with a clear line in the log.
                std::thread::spawn(|| {
                    std::thread::sleep(WATCHDOG);
                    tracing::error!(
                        "cancelled: still running {}s after the signal; exiting",
                        WATCHDOG.as_secs()
                    );
                    std::process::exit(130);
                });
            }
        });
        Ok(())
    }

    /// Cancels (tests, timeouts).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when cancelled.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// The signal number that cancelled us, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// A child token, cancelled with this one (and cancellable on its own).
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
            signal: self.signal.clone(),
        }
    }

    /// The underlying token.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn child_follows_parent() {
        let c = Cancel::new();
        let k = c.child();
        assert!(!k.is_cancelled());
        c.cancel();
        k.cancelled().await;
        assert!(k.is_cancelled());
    }
}
