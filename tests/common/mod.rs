//! Test harness: starts its own `redis-server` processes on free loopback ports (never 6379,
//! never a server it did not start) and hands out clients with a namespace of their own, so
//! tests run in parallel without seeing each other's keys.
//!
//! The binary is `redis-server` from `PATH`, or `$REDIS_SERVER_BIN`. Servers are spawned by
//! one long-lived thread with `PR_SET_PDEATHSIG`, so they die with the test process even if it
//! crashes.

#![allow(dead_code)]

pub mod children;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod proxy;
#[cfg(feature = "sentinel")]
pub mod sentinel;
pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis_patterns::{Client, Config};

/// A `redis-server` this harness started.
pub struct RedisServer {
    /// `None` while stopped; behind a lock so that a server shared by a test binary can be
    /// killed and restarted.
    child: Mutex<Option<Child>>,
    port: u16,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    /// Serves TLS only, with these certificates.
    tls: Option<tls::ServerFiles>,
}

fn binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns children from one thread that lives as long as the process, so that
/// `PR_SET_PDEATHSIG` (which follows the spawning thread) fires only when the process ends.
fn spawn(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
            // The sender lives in a static, so this point is reached only at exit; keep the
            // thread alive regardless.
            loop {
                std::thread::park();
            }
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((cmd, reply_tx))
        .expect("spawner thread is alive");
    reply_rx.recv().expect("spawner thread replies")
}

fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral loopback port")
            .port();
        if port != 6379 {
            return port;
        }
    }
}

impl RedisServer {
    /// Starts a fresh server on a free loopback port and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments, e.g. `["--cluster-enabled", "yes"]`.
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        let mut last_error = String::new();
        for _ in 0..5 {
            let server = RedisServer {
                child: Mutex::new(None),
                port: free_port(),
                dir: tempfile::tempdir().expect("create a temp dir for redis-server"),
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
                tls: None,
            };
            match server.launch() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    /// Starts a server that speaks TLS only (`--port 0 --tls-port …`), with a certificate for
    /// `127.0.0.1` signed by `files`' CA; client certificates are optional.
    pub fn start_tls(files: tls::ServerFiles) -> RedisServer {
        let server = RedisServer {
            child: Mutex::new(None),
            port: free_port(),
            dir: tempfile::tempdir().expect("create a temp dir for redis-server"),
            extra_args: Vec::new(),
            tls: Some(files),
        };
        server.launch().expect("start a TLS redis-server");
        server
    }

    fn launch(&self) -> Result<(), String> {
        let log = self.dir.path().join("redis.log");
        let mut cmd = Command::new(binary());
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            // `DEBUG SLEEP` simulates a stalled server in the timeout tests.
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra_args)
            .args(
                self.tls
                    .as_ref()
                    .map_or(Vec::new(), |tls| tls.args(self.port)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn(cmd).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "`{}` was not found. Install it (Debian/Ubuntu: `apt-get install redis-server`) \
                     or point REDIS_SERVER_BIN at the binary; `scripts/test` installs it for you.",
                    binary().display()
                )
            } else {
                format!("spawning {}: {e}", binary().display())
            }
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut stderr);
                }
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("redis-server exited ({status}): {stderr}\n{log}"));
            }
            let ready = match self.tls {
                // Listening is enough: a plain PING cannot cross TLS.
                Some(_) => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
                None => ping(self.port),
            };
            if ready {
                *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "redis-server did not answer PING within 10 s; log:\n{log}"
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and waits until the port is closed.
    pub fn stop(&self) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server process is running (it may not have been started, or been stopped).
    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    pub fn restart(&self) {
        self.stop();
        self.launch()
            .expect("restart redis-server on the same port");
    }

    /// Blocks the (single-threaded) server for `seconds` with `DEBUG SLEEP`, from a thread of
    /// its own; join the handle to wait until it answers again.
    /// Returns once the server has stopped answering, so that the caller's next command meets
    /// the stall.
    pub fn stall(&self, seconds: u32) -> std::thread::JoinHandle<()> {
        let mut conn = self.redis();
        let stalling = std::thread::spawn(move || {
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query::<()>(&mut conn)
                .expect("DEBUG SLEEP");
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        while ping(self.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        stalling
    }

    /// The ids of the connections in `CLIENT TRACKING` mode (flag `t`).
    pub fn tracking_clients(&self) -> Vec<String> {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.redis())
            .expect("CLIENT LIST");
        tracking_client_ids(&list)
    }

    /// Closes the connections in `CLIENT TRACKING` mode; how many there were.
    pub fn kill_tracking_clients(&self) -> usize {
        let ids = self.tracking_clients();
        let mut conn = self.redis();
        for id in &ids {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query::<()>(&mut conn)
                .expect("CLIENT KILL ID");
        }
        ids.len()
    }

    /// Closes every client connection but the caller's (`CLIENT KILL TYPE normal`).
    pub fn kill_clients(&self) {
        redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
            .query::<u64>(&mut self.redis())
            .expect("CLIENT KILL");
    }

    /// Makes every write fail with OOM (`maxmemory` 1 byte, `noeviction`), or undoes it.
    pub fn out_of_memory(&self, on: bool) {
        let mut conn = self.redis();
        redis::cmd("CONFIG")
            .arg(&["SET", "maxmemory-policy", "noeviction"])
            .query::<()>(&mut conn)
            .expect("CONFIG SET maxmemory-policy");
        redis::cmd("CONFIG")
            .arg(&["SET", "maxmemory", if on { "1" } else { "0" }])
            .query::<()>(&mut conn)
            .expect("CONFIG SET maxmemory");
    }

    /// Forgets every loaded script (`SCRIPT FLUSH`), as a restart or failover would.
    pub fn script_flush(&self) {
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query::<()>(&mut self.redis())
            .expect("SCRIPT FLUSH");
    }

    /// Every key under `namespace` (`SCAN MATCH namespace:*`).
    pub fn keys(&self, namespace: &str) -> Vec<String> {
        let mut conn = self.redis();
        let iter: redis::Iter<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{namespace}:*"))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter(&mut conn)
            .expect("SCAN");
        iter.map(|k| k.expect("a key name")).collect()
    }

    /// The keys under `namespace` that have no TTL (`PTTL` = -1); the library writes none.
    pub fn keys_without_ttl(&self, namespace: &str) -> Vec<String> {
        let mut conn = self.redis();
        self.keys(namespace)
            .into_iter()
            .filter(|key| {
                redis::cmd("PTTL")
                    .arg(key)
                    .query::<i64>(&mut conn)
                    .expect("PTTL")
                    == -1
            })
            .collect()
    }

    /// A blocking raw connection for checks that bypass the library.
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Ids of the clients in a `CLIENT LIST` reply that track keys (flag `t`): the near tier's and
/// the key watches' tracking connections.
pub fn tracking_client_ids(client_list: &str) -> Vec<String> {
    client_list
        .lines()
        .filter(|line| {
            line.split(' ').any(|field| {
                field
                    .strip_prefix("flags=")
                    .is_some_and(|f| f.contains('t'))
            })
        })
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

/// The server shared by the tests of this binary.
pub fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

/// A namespace no other test uses.
pub fn namespace(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Counts how often a function body ran; each test passes its own.
#[derive(Clone, Default)]
pub struct Calls(std::sync::Arc<AtomicU64>);

impl Calls {
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> u32 {
        u32::try_from(self.0.load(Ordering::SeqCst)).expect("few calls")
    }
}

/// Which backend a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Memory,
    /// The binary's shared Redis Cluster (root feature `cluster`).
    #[cfg(feature = "cluster")]
    Cluster,
    /// The binary's Sentinel group (root feature `sentinel`).
    #[cfg(feature = "sentinel")]
    Sentinel,
}

/// A client on the shared server (or a private in-memory store) with a fresh namespace.
pub fn client(kind: Kind, test: &str) -> Client {
    let ns = namespace(test);
    clients(kind, &ns, 1).pop().unwrap()
}

/// `n` independent clients (separate connections, separate in-process single-flight) that
/// share one store: the shared server, or one named in-memory store.
pub fn clients(kind: Kind, ns: &str, n: usize) -> Vec<Client> {
    (0..n)
        .map(|_| Client::new(config(kind, ns)).unwrap())
        .collect()
}

/// The configuration of [`clients`]: the shared server (or the in-memory store named `ns`),
/// namespace `ns`, a 2 s command timeout.
pub fn config(kind: Kind, ns: &str) -> Config {
    let url = match kind {
        Kind::Redis => server().url(),
        Kind::Memory => format!("mem://{ns}"),
        #[cfg(feature = "cluster")]
        Kind::Cluster => cluster::cluster().url(),
        #[cfg(feature = "sentinel")]
        Kind::Sentinel => sentinel::group().url(),
    };
    Config::from_url(&url)
        .unwrap()
        .namespace(ns)
        .command_timeout(Duration::from_secs(2))
}

/// A client of `url` with a fresh namespace of its own and the given command timeout, for
/// tests that talk through a [`proxy::FaultProxy`] or to a server of their own.
pub fn client_at(url: &str, test: &str, command_timeout: Duration) -> Client {
    client_in(url, &namespace(test), command_timeout)
}

/// A client of `url` in namespace `ns` with the given command timeout.
pub fn client_in(url: &str, ns: &str, command_timeout: Duration) -> Client {
    let config = Config::from_url(url)
        .unwrap()
        .namespace(ns)
        .connect_timeout(Duration::from_millis(500))
        .command_timeout(command_timeout);
    Client::new(config).unwrap()
}

/// Defines `on_redis::<name>` and `on_memory::<name>` tests that call `name(kind)`, and with
/// the root features `cluster` and `sentinel`, `on_cluster::<name>` on the binary's Redis
/// Cluster and `on_sentinel::<name>` behind its Sentinel group.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "sentinel")]
        mod on_sentinel {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Kind::Sentinel).await;
                }
            )*
        }
        #[cfg(feature = "cluster")]
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Kind::Cluster).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Kind::Redis).await;
                }
            )*
        }
        mod on_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Kind::Memory).await;
                }
            )*
        }
    };
}

/// Waits up to 20 s for `done`, polling every 10 ms; fails naming `what` after that.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 20 s: {what}");
}

/// Defines `on_redis::<name>` and, with the root feature `cluster`, `on_cluster::<name>`
/// tests that call `name(url)` with the shared server's or the binary's cluster's URL: for
/// tests whose child processes connect by URL.
#[macro_export]
macro_rules! on_servers {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::server().url()).await;
                }
            )*
        }
        #[cfg(feature = "cluster")]
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::cluster::cluster().url()).await;
                }
            )*
        }
    };
}

/// Runs `work` on a runtime of its own in a thread, keeps that runtime going for `hold` after
/// `work` returns (what `work` spawned runs on), then shuts it down without letting anything
/// finish, as a crashed process leaves its connections, claims and leases. Join the handle to
/// wait for the crash.
pub fn crash_after<F>(
    hold: Duration,
    work: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<()>
where
    F: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            work().await;
            tokio::time::sleep(hold).await;
        });
        runtime.shutdown_background();
    })
}
