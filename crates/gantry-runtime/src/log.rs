//! The human log: `tracing` to stderr, redacted, plus step timings.
//!
//! Logs go to stderr so stdout stays the runner's command channel (one writer, [`Console`]).
//! Every line passes through the [`Masker`], so a secret that slipped into an error message is
//! still `***` on a laptop. `GANTRY_LOG` sets the filter (default `info`; `debug` with
//! `RUNNER_DEBUG=1`).
//!
//! [`Console`]: crate::Console

use std::io::Write;
use std::time::{Duration, Instant};

use crate::Env;
use crate::mask::Masker;

struct RedactingWriter {
    masker: Masker,
}

impl Write for RedactingWriter {
    #[allow(clippy::print_stderr)]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let red = self.masker.redact(&text);
        std::io::stderr().write_all(red.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(env: &Env, masker: &Masker) {
    let default = if env.is_debug() { "debug" } else { "info" };
    let filter = env.get("GANTRY_LOG").unwrap_or(default).to_string();
    let in_runner = env.is_actions();
    let masker = masker.clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(move || RedactingWriter {
            masker: masker.clone(),
        })
        .with_target(false)
        .with_ansi(!in_runner && env.get("NO_COLOR").is_none() && env.get("CI").is_none());
    // The runner timestamps every line itself.
    let _ = if in_runner {
        builder.without_time().try_init()
    } else {
        builder.compact().try_init()
    };
}

/// Timings of named stages, for the log and the step summary.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    stages: Vec<(String, Duration)>,
}

impl Timings {
    /// Records a stage.
    pub fn record(&mut self, name: impl Into<String>, d: Duration) {
        self.stages.push((name.into(), d));
    }

    /// Runs `f`, logs and records its duration.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let d = start.elapsed();
        tracing::info!("{name}: {}", crate::duration::human(d));
        self.record(name, d);
        out
    }

    /// Recorded stages.
    pub fn stages(&self) -> &[(String, Duration)] {
        &self.stages
    }
}
