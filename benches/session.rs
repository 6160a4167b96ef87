//! Sessions against the hand-written redis-rs code the guides show, in one run against one
//! server, both sides interleaved in every sample. The hand-written side gives less (no
//! absolute lifetime, no version check, the raw id as the key), so the ratios are what those
//! guarantees cost:
//!
//! | ours | hand-written |
//! |---|---|
//! | `create` (2 round trips: the session, then the user's index) | `MULTI; SET s:<id> json PX idle; SADD u:<user> <id>; PEXPIRE u:<user> abs; EXEC` |
//! | `load` (slides the idle timeout, capped by the absolute end) | `GETEX s:<id> PX idle` |
//! | `load` then `save` (version-checked) | `GETEX`, then `SET s:<id> json XX PX idle` |
//!
//! ```text
//! cargo bench --bench session          # or RUNS=3 scripts/bench-report session
//! ```

mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;
use redis_patterns::session::{SessionId, Sessions};
use redis_patterns::{Client, Config};
use serde::{Deserialize, Serialize};
use support::{CONCURRENCY, compare, server};
use tokio::runtime::Runtime;

const IDLE_MS: u64 = 1_800_000;

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
struct Data {
    user: String,
    roles: Vec<String>,
    cart: Vec<u64>,
}

fn data() -> Data {
    Data {
        user: "alice".into(),
        roles: vec!["customer".into()],
        cart: vec![1, 2, 3],
    }
}

#[derive(Clone)]
struct Sides {
    conn: MultiplexedConnection,
    sessions: Sessions<Data>,
    /// One session per task, on both sides.
    ids: Vec<SessionId>,
    json: Vec<u8>,
}

fn sides(rt: &Runtime) -> Sides {
    rt.block_on(async {
        let url = server().url();
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let client = Client::new(Config::from_url(&url).unwrap().namespace("bench")).unwrap();
        client.connect().await.unwrap();
        let sessions = Sessions::new(Duration::from_millis(IDLE_MS), Duration::from_secs(86_400))
            .client(client);
        let json = serde_json::to_vec(&data()).unwrap();
        let mut ids = Vec::new();
        for task in 0..CONCURRENCY {
            let id = sessions
                .create(&format!("user-{task}"), &data())
                .await
                .unwrap();
            let () = redis::cmd("SET")
                .arg(format!("s:{}", id.expose()))
                .arg(&json)
                .arg("PX")
                .arg(IDLE_MS)
                .query_async(&mut conn)
                .await
                .unwrap();
            ids.push(id);
        }
        Sides {
            conn,
            sessions,
            ids,
            json,
        }
    })
}

fn create(c: &mut Criterion) {
    compare(
        c,
        sides,
        "create",
        |mut s: Sides, task| async move {
            let id = format!("{:032x}", fastrand::u128(..));
            let user = format!("u:user-{task}");
            let () = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(format!("s:{id}"))
                .arg(&s.json)
                .arg("PX")
                .arg(IDLE_MS)
                .ignore()
                .cmd("SADD")
                .arg(&user)
                .arg(&id)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&user)
                .arg(86_400_000)
                .ignore()
                .query_async(&mut s.conn)
                .await
                .unwrap();
        },
        |s: Sides, task| async move {
            let id = s
                .sessions
                .create(&format!("user-{task}"), &data())
                .await
                .unwrap();
            std::hint::black_box(id);
        },
    );
}

fn load(c: &mut Criterion) {
    compare(
        c,
        sides,
        "load",
        |mut s: Sides, task| async move {
            let id = &s.ids[task as usize];
            let json: Vec<u8> = redis::cmd("GETEX")
                .arg(format!("s:{}", id.expose()))
                .arg("PX")
                .arg(IDLE_MS)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(serde_json::from_slice::<Data>(&json).unwrap());
        },
        |s: Sides, task| async move {
            let session = s.sessions.load(&s.ids[task as usize]).await.unwrap();
            std::hint::black_box(session.unwrap());
        },
    );
}

fn save(c: &mut Criterion) {
    compare(
        c,
        sides,
        "save",
        |mut s: Sides, task| async move {
            let id = &s.ids[task as usize];
            let json: Vec<u8> = redis::cmd("GETEX")
                .arg(format!("s:{}", id.expose()))
                .arg("PX")
                .arg(IDLE_MS)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            let data: Data = serde_json::from_slice(&json).unwrap();
            let json = serde_json::to_vec(&data).unwrap();
            let saved: Option<String> = redis::cmd("SET")
                .arg(format!("s:{}", id.expose()))
                .arg(json)
                .arg("XX")
                .arg("PX")
                .arg(IDLE_MS)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(saved);
        },
        |s: Sides, task| async move {
            // A request's read and write: a load, then the save (versus the baseline's read
            // and blind write).
            let id = &s.ids[task as usize];
            let session = s.sessions.load(id).await.unwrap().unwrap();
            std::hint::black_box(s.sessions.save(&session).await.unwrap());
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = create, load, save
}
criterion_main!(benches);
