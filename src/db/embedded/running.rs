//! The embedded servers this process is running, and how one is stopped: a registry that a
//! second signal, which exits without running destructors, uses to stop them first.

use std::io;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Servers this process started and has not stopped. They run in their own process group, so
/// a terminal's Ctrl-C does not reach them, and a second signal exits at once without running
/// destructors: it stops these first, also while `Endpoints::open` is still starting them.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The pids of the embedded servers running now.
pub fn running_pids() -> Vec<u32> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

pub(super) fn set_running(pid: u32, running: bool) {
    let mut pids = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    pids.retain(|p| *p != pid);
    if running {
        pids.push(pid);
    }
}

/// SIGINT (fast shutdown), then SIGKILL if the server outlives `timeout`.
pub(super) fn shutdown(mut child: Child, timeout: Duration) -> io::Result<()> {
    set_running(child.id(), false);
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
