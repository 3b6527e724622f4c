//! Goose's web UI (`--dashboard`) in a real browser: a load test runs against its own embedded
//! PostgreSQL, headless Chromium opens the dashboard and, driven over the DevTools protocol
//! (`--remote-debugging-pipe`, so no extra crate), reads the Requests table as the page renders
//! it once the live stream has delivered data. A plain `--dump-dom` is not enough: it dumps the
//! empty shell at the load event, and with `--virtual-time-budget` it never returns, because the
//! dashboard's server-sent-event stream stays open. The test also checks that the dashboard
//! listens on loopback only, and leaves a screenshot in `CARGO_TARGET_TMPDIR/dashboard.png`.

use std::fs::File;
use std::io::{BufRead, BufReader, PipeWriter, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use pgvector_loadtest::workload::ops::Op;

use crate::util::{free_port, temp_dir, Pg, BIN, SMALL_DATA};

/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Headless Chromium's flags, shared with `report_html.rs`.
pub const HEADLESS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    // Without these Chromium dials out at start, and this network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
];
/// Seeding the small dataset and starting Goose take seconds; this bounds the wait for the
/// dashboard's port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the page may take to show every operation after it is opened.
const RENDER_TIMEOUT: Duration = Duration::from_secs(40);
/// No single DevTools call may take longer.
const CDP_TIMEOUT: Duration = Duration::from_secs(15);

/// The rows of the Requests table, each as the texts of its cells, or `null` while the table is
/// not displayed. Only rendered rows count: `checkVisibility()` is false for anything
/// `display: none`, and `innerText` is the text as laid out.
const READ_REQUESTS: &str = r##"(() => {
  const section = document.getElementById("requests");
  if (!section || !section.checkVisibility()) return null;
  return Array.from(document.querySelectorAll("#requests-body tr"))
    .filter((tr) => tr.checkVisibility())
    .map((tr) => Array.from(tr.cells, (td) => td.innerText.trim()));
})()"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium_shows_sql_operations_on_loopback() {
    // Checked first: CI installs Chromium, so a missing one is a broken environment.
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; \
         scripts/test does) to test the web UI"
    );
    let pg = Pg::start().await;
    let dir = temp_dir();
    let port = free_port();
    let mut loadtest = LoadTest::spawn(&pg.url(), dir.path(), port);

    // Loopback by default: Goose says so, and the socket table agrees.
    let line = loadtest.wait_listening(port);
    assert!(
        line.contains(&format!("listening on http://127.0.0.1:{port} (read-only)")),
        "unexpected dashboard line: {line}"
    );
    assert_eq!(
        listeners(port),
        vec![format!("127.0.0.1:{port}")],
        "the dashboard must listen on 127.0.0.1 only"
    );

    let mut browser = Browser::launch(
        &dir.path().join("chromium-profile"),
        &dir.path().join("chromium.log"),
    );
    let page = browser.open(&format!("http://127.0.0.1:{port}/"));
    // Every operation of the default mix (the four of `VectorSearchUser` and `bulk_insert`; the
    // filtered search has weight 0 by default), as Goose names them: method `SQL`, name
    // `Op::name()`.
    let ops: Vec<&str> = Op::ALL
        .iter()
        .filter(|op| **op != Op::FilteredSearch)
        .map(|op| op.name())
        .collect();
    let deadline = Instant::now() + RENDER_TIMEOUT;
    let rows = loop {
        let rows = browser.eval(&page, READ_REQUESTS);
        let rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap_or_default();
        if ops.iter().all(|op| request_count(&rows, op) > 0) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "after {RENDER_TIMEOUT:?} the dashboard's Requests table lacks one of {ops:?} with a \
             request count > 0; rendered rows: {rows:?}\n--- loadtest output ---\n{}",
            loadtest.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // A row reads: Method, Name, #reqs, #fails, req/s, ...; the counts are what the user sees.
    for &op in &ops {
        let row = rows
            .iter()
            .find(|r| {
                r.first().map(String::as_str) == Some("SQL")
                    && r.get(1).map(String::as_str) == Some(op)
            })
            .expect("row found above");
        assert!(row.len() >= 5, "short row for {op}: {row:?}");
        assert_eq!(row[3], "0", "{op} has failures on the dashboard: {row:?}");
    }
    assert!(
        rows.iter()
            .all(|r| r.first().map(String::as_str) == Some("SQL")),
        "every request is an SQL operation: {rows:?}"
    );

    // A screenshot of the Requests table, for people (and CI artifacts) to look at.
    browser.eval(
        &page,
        r#"document.getElementById("requests").scrollIntoView(); true"#,
    );
    let shot = browser.call(
        Some(&page),
        "Page.captureScreenshot",
        json!({ "format": "png" }),
    );
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a screenshot: {} bytes",
        png.len()
    );
    let shot_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&shot_path, &png).expect("write the screenshot");
    println!("dashboard screenshot: {}", shot_path.display());

    drop(browser);
    loadtest.stop();
    pg.stop().await;
}

/// The `#reqs` the row `SQL <op>` shows, 0 when there is no such row.
fn request_count(rows: &[Vec<String>], op: &str) -> u64 {
    rows.iter()
        .find(|r| r.len() > 2 && r[0] == "SQL" && r[1] == op)
        .and_then(|r| r[2].replace(',', "").parse().ok())
        .unwrap_or(0)
}

/// The binary running a load test with the dashboard, its stdout and stderr in a file; killed
/// on drop.
struct LoadTest {
    child: Option<Child>,
    log: PathBuf,
}

impl LoadTest {
    fn spawn(url: &str, dir: &Path, port: u16) -> LoadTest {
        let log = dir.join("loadtest.log");
        let out = File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("PG") || key == "DATABASE_URL" || key == "METRICS_PORT" {
                cmd.env_remove(key);
            }
        }
        let reports = dir.join("reports");
        let port = port.to_string();
        cmd.args(["--database-url", url])
            .args(SMALL_DATA)
            .args(["--users", "5", "--hatch-rate", "5", "--run-time", "40s"])
            .args([
                "--dashboard",
                "--dashboard-port",
                &port,
                "--no-print-metrics",
            ])
            .arg("--report-dir")
            .arg(&reports)
            // Goose writes a `goose-runs/` folder into the working directory.
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out);
        LoadTest {
            child: Some(cmd.spawn().expect("spawn the binary")),
            log,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until Goose has logged the dashboard's address and the port accepts connections;
    /// returns the logged line.
    fn wait_listening(&mut self, port: u16) -> String {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "the binary exited ({status}) before serving the dashboard:\n{}",
                    self.output()
                );
            }
            let line = self
                .output()
                .lines()
                .find(|l| l.contains("[dashboard]: listening on"))
                .map(str::to_string);
            if let Some(line) = line {
                if TcpStream::connect_timeout(
                    &(Ipv4Addr::LOCALHOST, port).into(),
                    Duration::from_secs(1),
                )
                .is_ok()
                {
                    return line;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no dashboard on port {port} after {LISTEN_TIMEOUT:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGINT, then SIGKILL if it has not exited within 10 s. With `--dashboard` Goose stays
    /// up after the run ("Press Ctrl-C to exit"), so the test always ends it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for LoadTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The addresses listening on TCP `port`, from the kernel's socket tables (IPv4 and IPv6).
fn listeners(port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((addr, port_hex)) = local.split_once(':') else {
                continue;
            };
            if *state != LISTEN || u16::from_str_radix(port_hex, 16) != Ok(port) {
                continue;
            }
            found.push(format!("{}:{port}", proc_addr(addr)));
        }
    }
    found
}

/// A `/proc/net/tcp{,6}` address (32-bit words in host byte order, hex) as text.
fn proc_addr(hex: &str) -> String {
    let words: Vec<[u8; 4]> = (0..hex.len() / 8)
        .map(|i| {
            u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16)
                .unwrap_or(0)
                .to_ne_bytes()
        })
        .collect();
    match words.as_slice() {
        [v4] => std::net::Ipv4Addr::from(*v4).to_string(),
        v6 => {
            let bytes: Vec<u8> = v6.iter().flatten().copied().collect();
            let bytes: [u8; 16] = bytes.try_into().unwrap_or([0; 16]);
            format!("[{}]", std::net::Ipv6Addr::from(bytes))
        }
    }
}

/// Headless Chromium driven over `--remote-debugging-pipe`: JSON messages, each ended by a NUL,
/// written to its fd 3 and read from its fd 4. The whole process group is killed on drop.
struct Browser {
    child: Child,
    commands: PipeWriter,
    messages: Receiver<Value>,
    next_id: u64,
    log: PathBuf,
}

impl Browser {
    fn launch(profile: &Path, log: &Path) -> Browser {
        let (theirs_in, commands) = std::io::pipe().expect("pipe");
        let (replies, theirs_out) = std::io::pipe().expect("pipe");
        let (fd_in, fd_out) = (theirs_in.as_raw_fd(), theirs_out.as_raw_fd());
        let mut cmd = Command::new(CHROMIUM);
        cmd.args(HEADLESS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).expect("chromium log"))
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Copy both ends above 4 first, as either may already be fd 3 or 4; the copies
                // and dup2's results are not close-on-exec, the originals are.
                let (r, w) = (
                    libc::fcntl(fd_in, libc::F_DUPFD, 10),
                    libc::fcntl(fd_out, libc::F_DUPFD, 10),
                );
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn chromium");
        // Our copies of Chromium's ends must go, or the reader never sees end-of-file.
        drop((theirs_in, theirs_out));
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies);
            let mut buf = Vec::new();
            while matches!(reader.read_until(0, &mut buf), Ok(n) if n > 0) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(message) = serde_json::from_slice::<Value>(&buf) {
                    if tx.send(message).is_err() {
                        return;
                    }
                }
                buf.clear();
            }
        });
        Browser {
            child,
            commands,
            messages,
            next_id: 0,
            log: log.to_path_buf(),
        }
    }

    /// Sends `method` (to the page of `session`, or to the browser) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        if let Err(e) = self.commands.write_all(&bytes) {
            panic!(
                "{method}: cannot write to Chromium ({e}); its log:\n{}",
                self.log()
            );
        }
        let deadline = Instant::now() + CDP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                // Events and other replies are not ours.
                Ok(reply) if reply["id"] != json!(id) => continue,
                Ok(reply) if reply.get("error").is_some() => {
                    panic!("{method} failed: {}", reply["error"])
                }
                Ok(mut reply) => return reply["result"].take(),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{method}: no reply in {CDP_TIMEOUT:?}; Chromium's log:\n{}",
                    self.log()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{method}: Chromium is gone; its log:\n{}", self.log())
                }
            }
        }
    }

    /// Opens `url` in a new tab and returns the tab's session.
    fn open(&mut self, url: &str) -> String {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        let nav = self.call(Some(&session), "Page.navigate", json!({ "url": url }));
        assert!(nav.get("errorText").is_none(), "navigating to {url}: {nav}");
        session
    }

    /// The value of the JavaScript `expression` evaluated in the page.
    fn eval(&mut self, session: &str, expression: &str) -> Value {
        let mut reply = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        if let Some(e) = reply.get("exceptionDetails") {
            panic!("{expression} threw: {e}");
        }
        reply["result"]["value"].take()
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group holds Chromium's zygote, GPU and renderer processes too.
        let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot's encoding), padding allowed.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c:#x}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&bits.to_be_bytes()[1..chunk.len()]);
    }
    out
}
