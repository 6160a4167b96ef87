//! Child processes of a test binary: the binary re-run with one `#[ignore]`d test selected
//! and an environment variable telling it what to do, its marked stdout lines (`@@ …`)
//! forwarded to the parent, its stdin closed to ask it to stop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process.
pub struct Process {
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl Process {
    /// Asks the child to stop (closes its stdin) and waits for it to exit successfully.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        assert!(self.child.wait().unwrap().success(), "the child failed");
    }

    /// Closes the child's stdin without waiting.
    pub fn ask_to_stop(&mut self) {
        drop(self.stdin.take());
    }
}

/// Starts `n` children running the ignored test `test` with `var=value`; their marked
/// lines arrive on the returned channel with the child's index.
pub fn spawn(
    test: &str,
    var: &str,
    value: &str,
    n: usize,
) -> (Vec<Process>, mpsc::Receiver<(usize, String)>) {
    let (tx, rx) = mpsc::channel();
    let processes = (0..n)
        .map(|index| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    test,
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(var, value)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in stdout.lines() {
                    let Ok(line) = line else { return };
                    // The test harness may have started the line ("test child ... ").
                    if let Some((_, message)) = line.split_once("@@ ")
                        && tx.send((index, message.to_owned())).is_err()
                    {
                        return;
                    }
                }
            });
            let stdin = child.stdin.take();
            Process { child, stdin }
        })
        .collect();
    (processes, rx)
}

/// Reads lines until `done` says so, failing after 60 s without one.
pub fn read_until(
    lines: &mpsc::Receiver<(usize, String)>,
    mut done: impl FnMut(usize, &[&str]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, line) = lines.recv_timeout(left).expect("the children went quiet");
        let words: Vec<&str> = line.split_whitespace().collect();
        if done(index, &words) {
            return;
        }
    }
}

/// In a child: a line to the parent, marked so that it is found after the harness's output.
pub fn print(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}").unwrap();
    out.flush().unwrap();
}

/// In a child: waits until the parent closes stdin.
pub async fn until_asked_to_stop() {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
            line.clear();
        }
    })
    .await
    .unwrap();
}

/// In a child: the server URL, namespace and visibility timeout its parent passed in `var`
/// (`"<url> <namespace> <ms>"`); `None` when not run as a child.
pub fn target(var: &str) -> Option<(String, String, Duration)> {
    let value = std::env::var(var).ok()?;
    let mut words = value.split(' ');
    let (url, ns, ms) = (words.next()?, words.next()?, words.next()?.parse().ok()?);
    Some((url.to_owned(), ns.to_owned(), Duration::from_millis(ms)))
}
