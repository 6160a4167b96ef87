//! A Redis Cluster of 3 primaries and 3 replicas on free loopback ports, spawned once per test
//! binary from the installed `redis-server` and `redis-cli` (`redis-cli --cluster create`),
//! ready when every node reports `cluster_state:ok` with all slots assigned and every replica
//! is in sync with its primary.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::RedisServer;

pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

fn cli() -> String {
    std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".into())
}

/// `command` (e.g. `"CLUSTER INFO"`) on `node`, as text; empty if it failed.
fn info(node: &RedisServer, command: &str) -> String {
    let mut words = command.split_whitespace();
    let mut cmd = redis::cmd(words.next().unwrap_or(command));
    for word in words {
        cmd.arg(word);
    }
    cmd.query(&mut node.redis()).unwrap_or_default()
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                    // A replica that never synced is promoted anyway after a failover test.
                    "--cluster-replica-validity-factor",
                    "0",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = Command::new(cli())
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("running {} (apt-get install redis-tools): {e}", cli()));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Cluster { nodes };
        cluster.wait_until_ready(Duration::from_secs(30));
        cluster
    }

    /// Every node sees all slots served and every replica's link to its primary is up.
    pub fn wait_until_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let settled = self.nodes.iter().all(|node| {
                let cluster = info(node, "CLUSTER INFO");
                let replication = info(node, "INFO replication");
                cluster.contains("cluster_state:ok")
                    && cluster.contains("cluster_slots_ok:16384")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            });
            if settled {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not settle within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The port of the primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let mut conn = self.nodes[0].redis();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .expect("CLUSTER KEYSLOT");
        let shards: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut conn)
            .expect("CLUSTER SLOTS");
        for shard in shards {
            let redis::Value::Array(fields) = shard else {
                continue;
            };
            let (
                Some(redis::Value::Int(start)),
                Some(redis::Value::Int(end)),
                Some(redis::Value::Array(primary)),
            ) = (fields.first(), fields.get(1), fields.get(2))
            else {
                continue;
            };
            if (*start..=*end).contains(&i64::from(slot))
                && let Some(redis::Value::Int(port)) = primary.get(1)
            {
                return u16::try_from(*port).expect("a port");
            }
        }
        panic!("no primary serves slot {slot}");
    }
}

impl Cluster {
    /// The node that replicates the primary on `primary_port`.
    pub fn replica_of(&self, primary_port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| {
                let replication = info(node, "INFO replication");
                replication.contains("role:slave")
                    && replication.contains(&format!("master_port:{primary_port}\r\n"))
            })
            .unwrap_or_else(|| panic!("no replica of the primary on {primary_port}"))
    }
}

/// The cluster shared by the tests of this binary.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}
