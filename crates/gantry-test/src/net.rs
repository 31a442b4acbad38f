//! Small network helpers for tests: free loopback ports and waiting for a listener.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something accepts TCP connections on `addr`, up to `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Whether a program is on `PATH` (or is an existing path).
#[allow(clippy::disallowed_methods)] // test harness reads PATH directly
pub fn have_program(name: &str) -> bool {
    if name.contains('/') {
        return std::path::Path::new(name).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Skips the current test with a printed reason (`SKIP: …`). Use only when a component cannot
/// start here; `.ci/run` installs the components so that CI runs these tests.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIP: {}", format!($($arg)*));
        }
        return;
    }};
}
