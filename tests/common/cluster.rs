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
    // A failover or a restart may refuse or cut the connection: that reads as empty.
    redis::Client::open(node.url())
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| cmd.query(&mut conn))
        .unwrap_or_default()
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

    /// Every node that is running sees all slots served, and every running replica's link to
    /// its primary is up. (A stopped node is skipped: after a primary was killed, this is the
    /// moment its replica took over.)
    pub fn wait_until_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let settled = self
                .nodes
                .iter()
                .filter(|node| node.is_running())
                .all(|node| {
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

    /// A running node to ask about the cluster.
    fn any_running(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.is_running())
            .expect("a running cluster node")
    }

    /// The hash slot of `key`.
    pub fn slot_of(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.any_running().redis())
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        self.primary_of_slot(self.slot_of(key))
    }

    /// The port of the primary serving `slot`, as a running node sees it.
    pub fn primary_of_slot(&self, slot: u16) -> u16 {
        let shards: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.any_running().redis())
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

    /// The node listening on `port`.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on {port}"))
    }

    /// The primaries' ports.
    pub fn primaries(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| {
                node.is_running() && info(node, "INFO replication").contains("role:master")
            })
            .map(RedisServer::port)
            .collect()
    }

    /// Moves `slot` to the primary on `to` the way `redis-cli --cluster reshard` does:
    /// `IMPORTING` on the target, `MIGRATING` on the source, then `MIGRATE` of its keys one at
    /// a time with `pause` in between (clients meanwhile get `ASK` for keys already moved and
    /// `TRYAGAIN` for scripts whose keys are split), and finally `SETSLOT … NODE` everywhere.
    pub fn migrate_slot(&self, slot: u16, to: u16, pause: Duration) {
        let from = self.primary_of_slot(slot);
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let id = |port: u16| -> String {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut self.node(port).redis())
                .expect("CLUSTER MYID")
        };
        let (from_id, to_id) = (id(from), id(to));
        let mut source = self.node(from).redis();
        let mut target = self.node(to).redis();
        let setslot = |conn: &mut redis::Connection, state: &str, node: &str| {
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(state)
                .arg(node)
                .query::<()>(conn)
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {state}: {e}"));
        };
        setslot(&mut target, "IMPORTING", &from_id);
        setslot(&mut source, "MIGRATING", &to_id);
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(1)
                .query(&mut source)
                .expect("CLUSTER GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("REPLACE")
                .arg("KEYS")
                .arg(&keys)
                .query::<()>(&mut source)
                .expect("MIGRATE");
            std::thread::sleep(pause);
        }
        setslot(&mut target, "NODE", &to_id);
        setslot(&mut source, "NODE", &to_id);
        // The other primaries (replicas learn it from their primaries).
        for port in self.primaries() {
            if ![from, to].contains(&port) {
                setslot(&mut self.node(port).redis(), "NODE", &to_id);
            }
        }
    }
}

impl Cluster {
    /// `ACL SETUSER user rules…` on every running node: ACL users are per node.
    pub fn set_user(&self, user: &str, rules: &[&str]) {
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            redis::cmd("ACL")
                .arg("SETUSER")
                .arg(user)
                .arg(rules)
                .query::<()>(&mut node.redis())
                .unwrap_or_else(|e| panic!("ACL SETUSER on {}: {e}", node.port()));
        }
    }

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
