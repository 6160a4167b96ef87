//! A Sentinel group on free loopback ports, spawned once per test binary from the installed
//! `redis-server`: one primary, one replica, and three sentinels monitoring the primary as
//! `mymaster` (quorum 2, `down-after-milliseconds` 1000).

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{RedisServer, binary, free_port, ping, spawn};

pub const SERVICE: &str = "mymaster";

pub struct SentinelGroup {
    pub primary: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<SentinelProcess>,
}

/// A `redis-server --sentinel` this harness started.
pub struct SentinelProcess {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `args` on the server or sentinel on `port`, on a connection of its own (an error, never a
/// panic, when a failover kills the connection).
pub fn query(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut conn)
}

impl SentinelProcess {
    fn start(primary: u16) -> SentinelProcess {
        let dir = tempfile::tempdir().expect("a temp dir for a sentinel");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {SERVICE} 1000\n\
                 sentinel failover-timeout {SERVICE} 5000\n\
                 sentinel parallel-syncs {SERVICE} 1\n",
                dir = dir.path().display()
            ),
        )
        .expect("write sentinel.conf");
        let mut cmd = Command::new(binary());
        cmd.arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn(cmd).expect("spawn redis-server --sentinel");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(port) {
            assert!(
                Instant::now() < deadline,
                "the sentinel on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SentinelProcess {
            child,
            port,
            _dir: dir,
        }
    }

    /// The primary's port as this sentinel sees it.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = query(self.port, &["SENTINEL", "get-master-addr-by-name", SERVICE]).ok()?;
        let redis::Value::Array(fields) = reply else {
            return None;
        };
        match fields.get(1)? {
            redis::Value::BulkString(port) => std::str::from_utf8(port).ok()?.parse().ok(),
            _ => None,
        }
    }
}

impl SentinelGroup {
    pub fn start() -> SentinelGroup {
        let primary = RedisServer::start();
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()]);
        let sentinels = (0..3)
            .map(|_| SentinelProcess::start(primary.port()))
            .collect();
        let group = SentinelGroup {
            primary,
            replica,
            sentinels,
        };
        group.wait_until_ready(Duration::from_secs(30));
        group
    }

    /// The replica is in sync and every sentinel names the primary and knows the others.
    pub fn wait_until_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            // Whichever server is not the primary now (failover tests swap them) is in sync.
            let primary = self.sentinels[0].primary_port();
            let replica = if primary == Some(self.replica.port()) {
                &self.primary
            } else {
                &self.replica
            };
            let synced = query(replica.port(), &["INFO", "replication"])
                .ok()
                .and_then(|v| redis::from_redis_value::<String>(v).ok())
                .is_some_and(|info| info.contains("master_link_status:up"));
            let known = self.sentinels.iter().all(|s| {
                s.primary_port().is_some()
                    && query(s.port, &["SENTINEL", "sentinels", SERVICE])
                        .is_ok_and(|v| matches!(v, redis::Value::Array(a) if a.len() == 2))
            });
            if synced && known {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel group did not settle within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The data server (primary or replica) listening on `port`.
    pub fn server(&self, port: u16) -> &RedisServer {
        [&self.primary, &self.replica]
            .into_iter()
            .find(|server| server.port() == port)
            .unwrap_or_else(|| panic!("no server of the group on {port}"))
    }

    /// `redis+sentinel://…/mymaster` with every sentinel.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}", nodes.join(","))
    }
}

/// The Sentinel group shared by the tests of this binary.
pub fn group() -> &'static SentinelGroup {
    static GROUP: OnceLock<SentinelGroup> = OnceLock::new();
    GROUP.get_or_init(SentinelGroup::start)
}
