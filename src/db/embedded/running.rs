//! Stopping an embedded server: fast shutdown, then SIGKILL if it lingers.

use std::io;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// SIGINT (fast shutdown), then SIGKILL if the server outlives `timeout`.
pub(super) fn shutdown(mut child: Child, timeout: Duration) -> io::Result<()> {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::warn!("postgres {} ignored fast shutdown; killing it", child.id());
    child.kill()?;
    child.wait().map(drop)
}
