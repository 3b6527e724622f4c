//! The binary as a background child, for tests that act on it while it runs (inject a fault,
//! send a signal): its output is collected as it comes, so a test can wait for a line, and it
//! is killed if it outlives its bound or the test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use crate::util::Run;

/// A running binary.
pub struct Child {
    child: tokio::process::Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut from: R,
    into: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl Child {
    /// Spawns the binary with `args`, a clean PG*/DATABASE_URL/METRICS_PORT environment plus
    /// `env`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut cmd = crate::util::bin_command(args, env);
        let mut child = cmd.spawn().expect("spawn the binary");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Child {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Process id.
    pub fn pid(&self) -> i32 {
        self.child.id().expect("child still running") as i32
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stderr contains one of `needles` (returns which), panicking after `limit`
    /// or when the child exits first.
    pub async fn wait_for(&mut self, needles: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.stderr();
            if let Some(n) = needles.iter().find(|n| text.contains(**n)) {
                return n.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before printing {needles:?}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needles:?} on stderr after {limit:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).expect("kill");
    }

    /// Waits for the exit (killing it and panicking after `limit`); returns the output and
    /// how long the wait took.
    pub async fn finish(mut self, limit: Duration) -> (Run, Duration) {
        let waited = Instant::now();
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for the binary"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "still running after {limit:?}; killed. stderr:\n{}",
                    self.stderr()
                );
            }
        };
        let took = waited.elapsed();
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        let run = Run {
            code: status
                .code()
                .unwrap_or_else(|| panic!("killed by a signal: {status}")),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        };
        (run, took)
    }
}
