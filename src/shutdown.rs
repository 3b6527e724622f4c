//! One owner of shutdown, created by [`crate::run`] and passed down: a cancellation token that
//! the first SIGINT/SIGTERM cancels (the users stop, every report is still written), the time
//! of that first signal, and the child processes (embedded servers) to stop when a second
//! signal exits at once.
//!
//! Nothing here is process-wide state of ours: a second `Shutdown` in the same process (a test
//! calling the library) simply does not get the signal handler, which the `ctrlc` crate allows
//! once per process. Goose's killswitch is Goose's own global; the first signal pulls it so
//! that Goose's users stop too.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// The run's shutdown state; clones share it.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    token: CancellationToken,
    first_signal: OnceLock<Instant>,
    children: Children,
}

/// Child processes to stop before a hard exit: registered when spawned, removed when stopped,
/// so that a second signal also stops a server that is still starting.
#[derive(Clone, Default)]
pub struct Children(Arc<Mutex<Vec<u32>>>);

impl Children {
    /// `pid` runs now.
    pub fn register(&self, pid: u32) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
    }

    /// `pid` is stopped (or being stopped).
    pub fn unregister(&self, pid: u32) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != pid);
    }

    /// The processes running now.
    pub fn pids(&self) -> Vec<u32> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Shutdown {
    /// A shutdown that nothing has triggered yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Routes SIGINT/SIGTERM here: the first [`Shutdown::trigger`]s, the second stops the
    /// registered children and exits with 130. Returns false when the process already has a
    /// handler (one per process).
    pub fn handle_signals(&self) -> bool {
        let this = self.clone();
        ctrlc::set_handler(move || {
            if this.is_triggered() {
                eprintln!("second signal: exiting now");
                for pid in this.inner.children.pids() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGINT,
                    );
                }
                std::process::exit(crate::Exit::Interrupted.code().into());
            }
            eprintln!("signal received: stopping users and writing reports (again to exit now)");
            this.trigger();
        })
        .is_ok()
    }

    /// What the first signal does: note the time, cancel the token, stop Goose's users.
    pub fn trigger(&self) {
        let _ = self.inner.first_signal.set(Instant::now());
        self.inner.token.cancel();
        goose::trigger_killswitch("signal received");
    }

    /// Whether the run was asked to stop.
    pub fn is_triggered(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Completes when the run is asked to stop.
    pub async fn triggered(&self) {
        self.inner.token.cancelled().await
    }

    /// The token, for tasks that select on it.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.clone()
    }

    /// When the first signal arrived, if one did.
    pub fn triggered_at(&self) -> Option<Instant> {
        self.inner.first_signal.get().copied()
    }

    /// The registry of child processes to stop on a hard exit.
    pub fn children(&self) -> Children {
        self.inner.children.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_register_and_unregister() {
        let children = Children::default();
        children.register(10);
        children.register(11);
        children.unregister(10);
        assert_eq!(children.pids(), vec![11]);
    }

    #[test]
    fn each_shutdown_has_its_own_state() {
        let (a, b) = (Shutdown::new(), Shutdown::new());
        a.inner.token.cancel();
        assert!(a.is_triggered());
        assert!(!b.is_triggered());
        assert!(b.triggered_at().is_none());
    }
}
