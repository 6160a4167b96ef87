//! The fault proxy: a TCP proxy between a client under test and a `redis-server`, whose
//! behaviour can be switched at any moment (see `../shared/TESTING.md`):
//!
//! * [`FaultProxy::pass`]: forward everything;
//! * [`FaultProxy::delay`]: hold every chunk for a while in each direction (a slow network);
//! * [`FaultProxy::blackhole`]: stop forwarding on the connections that exist now while
//!   keeping their sockets open (a silently dead path: a NAT or firewall that forgot the
//!   connection); connections opened later pass;
//! * [`FaultProxy::reset`]: close every current connection.
//!
//! It runs on a thread and runtime of its own, so it outlives the runtime of any one test and
//! keeps forwarding while a test's runtime is blocked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, Default)]
struct Delays {
    up: Duration,
    down: Duration,
}

#[derive(Default)]
struct Shared {
    delays: Mutex<Delays>,
    /// Ids handed to connections, in order of acceptance.
    next_id: AtomicU64,
    /// Connections with an id below this one forward nothing any more.
    blackholed_below: AtomicU64,
    /// The forwarding tasks of every open connection, by id.
    tasks: Mutex<HashMap<u64, Vec<AbortHandle>>>,
}

/// A fault-injecting TCP proxy in front of one upstream port on 127.0.0.1.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port that forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FaultProxy {
        let shared = Arc::new(Shared::default());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build the proxy's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the proxy");
                bound_tx
                    .send(listener.local_addr().expect("proxy address").port())
                    .expect("report the proxy's port");
                tokio::select! {
                    _ = stopped => {}
                    () = accept_loop(listener, upstream, state) => {}
                }
            });
            // Dropping the runtime here, off any async context, cancels every forwarding task.
        });
        let port = bound_rx.recv().expect("the proxy starts");
        FaultProxy {
            port,
            shared,
            shutdown: Some(shutdown),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL a client under test connects to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Forward without delay (connections blackholed earlier stay dead).
    pub fn pass(&self) {
        *self.shared.delays.lock().unwrap() = Delays::default();
    }

    /// Hold each chunk `up` (client → server) and `down` (server → client) before forwarding
    /// it; order is kept.
    pub fn delay(&self, up: Duration, down: Duration) {
        *self.shared.delays.lock().unwrap() = Delays { up, down };
    }

    /// Stop forwarding, silently and for good, on every connection open now.
    pub fn blackhole(&self) {
        let next = self.shared.next_id.load(Ordering::SeqCst);
        self.shared.blackholed_below.store(next, Ordering::SeqCst);
    }

    /// Close every connection open now.
    pub fn reset(&self) {
        let tasks = std::mem::take(&mut *self.shared.tasks.lock().unwrap());
        for handle in tasks.into_values().flatten() {
            handle.abort();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            continue; // the client sees its connection closed, as with a dead server
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let up = forward(
            id,
            client_read,
            server_write,
            Direction::Up,
            Arc::clone(&shared),
        );
        let down = forward(
            id,
            server_read,
            client_write,
            Direction::Down,
            Arc::clone(&shared),
        );
        shared.tasks.lock().unwrap().insert(id, [up, down].concat());
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Spawns the two halves of one direction: a reader that stamps each chunk with its arrival,
/// and a writer that forwards it once its delay has passed. Returns their abort handles.
fn forward(
    id: u64,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    direction: Direction,
    shared: Arc<Shared>,
) -> Vec<AbortHandle> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let dead = {
        let shared = Arc::clone(&shared);
        move || id < shared.blackholed_below.load(Ordering::SeqCst)
    };
    let reader_dead = dead.clone();
    let reader_shared = Arc::clone(&shared);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // A blackholed path swallows data but keeps the socket open.
                    if reader_dead() {
                        continue;
                    }
                    let delays = *reader_shared.delays.lock().unwrap();
                    let delay = match direction {
                        Direction::Up => delays.up,
                        Direction::Down => delays.down,
                    };
                    let due = Instant::now() + delay;
                    if tx.send((due, Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        break;
                    }
                }
            }
        }
        // The peer closed: dropping `tx` lets the writer close this direction too.
    });
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if dead() {
                continue;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    vec![reader.abort_handle(), writer.abort_handle()]
}
