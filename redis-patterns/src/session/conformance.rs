//! Conformance checks of the sessions' atomic operations (`ops.rs`): creation never
//! overwrites, loads slide the expiry within the absolute end, saves check the version and
//! never resurrect, takes delete, and the user index adds, prunes and takes.

use std::time::Duration;

use super::ops::{Create, IndexAdd, IndexEnd, IndexTake, Load, Save, SaveOutcome, Take};
use super::record::{Condition, PutRecord};
use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "session/create: creates with the idle TTL, never over an existing key",
            create_never_overwrites,
        ),
        check!(
            "session/load: reads and slides the TTL, never past the absolute end; touch reads no data",
            load_slides_within_the_absolute_end,
        ),
        check!(
            "session/save: writes only the version read, bumps it, and never recreates a gone session",
            save_checks_the_version,
        ),
        check!(
            "session/take: deletes and returns what the session held",
            take_deletes,
        ),
        check!(
            "session/index_add: indexes by absolute end, prunes ended sessions, expires with the last",
            index_add_prunes,
        ),
        check!(
            "session/index_take: takes one session, or all of them at once",
            index_take_one_or_all,
        ),
        check!(
            "session/put_record: NX never overwrites, XX never creates, the absolute expiry is kept",
            put_record_conditions,
        ),
    ]
}

const HOUR: Duration = Duration::from_secs(3600);

fn create<'a>(key: &'a str, data: &'a [u8], idle: Duration, absolute: Duration) -> Create<'a> {
    Create {
        key,
        data,
        user: "alice",
        idle,
        absolute,
        kept: None,
    }
}

async fn create_never_overwrites(client: &Client) -> CheckResult {
    let key = scratch_key(client);
    let made = client
        .backend()
        .run(&create(&key, b"{}", Duration::from_secs(60), HOUR))
        .await?;
    ensure!(made.is_some(), "a new session was not created");
    let ttl = client.backend().pttl(&key).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::from_secs(55) && t <= Duration::from_secs(60)),
        "the TTL {ttl:?} is not the idle timeout"
    );
    let again = client
        .backend()
        .run(&create(&key, b"other", Duration::from_secs(60), HOUR))
        .await?;
    ensure_eq!(again, None, "creating over an existing session");
    let load = Load {
        key: &key,
        idle: Duration::from_secs(60),
        with_data: true,
    };
    let loaded = client
        .backend()
        .run(&load)
        .await?
        .map(|l| (l.data, l.version, l.user));
    ensure_eq!(
        loaded,
        Some((b"{}".to_vec(), 1, "alice".to_owned())),
        "the first session's data, version and user"
    );
    Ok(())
}

async fn load_slides_within_the_absolute_end(client: &Client) -> CheckResult {
    let key = scratch_key(client);
    let absolute = Duration::from_millis(400);
    client
        .backend()
        .run(&create(&key, b"1", Duration::from_millis(300), absolute))
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let touch = Load {
        key: &key,
        idle: Duration::from_millis(300),
        with_data: false,
    };
    let touched = client.backend().run(&touch).await?;
    ensure!(
        touched
            .as_ref()
            .is_some_and(|l| l.data.is_empty() && l.version == 1),
        "a touch read {touched:?}"
    );
    let ttl = client.backend().pttl(&key).await?;
    ensure!(
        ttl.is_some_and(|t| t <= Duration::from_millis(210)),
        "a load slid the TTL to {ttl:?}, past the absolute end"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure_eq!(
        client.backend().run(&touch).await?,
        None,
        "a session past its absolute end"
    );
    Ok(())
}

async fn save_checks_the_version(client: &Client) -> CheckResult {
    let key = scratch_key(client);
    client
        .backend()
        .run(&create(&key, b"1", Duration::from_secs(60), HOUR))
        .await?;
    let save = |data: &'static [u8], version| Save {
        key: &key,
        data,
        version,
        idle: Duration::from_secs(60),
    };
    ensure_eq!(
        client.backend().run(&save(b"2", 1)).await?,
        SaveOutcome::Written(2),
        "saving version 1"
    );
    ensure_eq!(
        client.backend().run(&save(b"3", 1)).await?,
        SaveOutcome::Conflict(2),
        "saving a stale copy"
    );
    client.backend().run(&Take { key: &key }).await?;
    ensure_eq!(
        client.backend().run(&save(b"4", 2)).await?,
        SaveOutcome::Gone,
        "saving a deleted session"
    );
    ensure_eq!(
        client.backend().get(&key).await?,
        None,
        "a save after delete recreated the key"
    );
    ensure_eq!(
        client.backend().pttl(&key).await?,
        None,
        "the key exists after a gone save"
    );
    Ok(())
}

async fn take_deletes(client: &Client) -> CheckResult {
    let key = scratch_key(client);
    client
        .backend()
        .run(&create(&key, b"data", Duration::from_secs(60), HOUR))
        .await?;
    let taken = client.backend().run(&Take { key: &key }).await?;
    ensure_eq!(
        taken.map(|t| (t.data, t.user)),
        Some((b"data".to_vec(), "alice".to_owned())),
        "what the session held"
    );
    ensure_eq!(
        client.backend().run(&Take { key: &key }).await?,
        None,
        "taking it again"
    );
    Ok(())
}

async fn index_add_prunes(client: &Client) -> CheckResult {
    let index = scratch_key(client);
    let now = crate::util::whole_millis(crate::util::window::now());
    let add = |digest: &'static str, ends: u64| IndexAdd {
        index: &index,
        digest,
        ends: IndexEnd::At(ends),
    };
    ensure_eq!(
        client.backend().run(&add("a", now + 200)).await?,
        (true, 1),
        "one session"
    );
    ensure_eq!(
        client.backend().run(&add("b", now + 60_000)).await?,
        (true, 2),
        "two sessions"
    );
    ensure_eq!(
        client.backend().run(&add("b", now + 60_000)).await?,
        (false, 2),
        "b again"
    );
    let ttl = client.backend().pttl(&index).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::from_secs(55) && t <= Duration::from_secs(60)),
        "the index's TTL {ttl:?} is not its last session's end"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure_eq!(
        client.backend().run(&add("c", now + 30_000)).await?,
        (true, 2),
        "a ended, c added"
    );
    let lifetime = IndexAdd {
        index: &index,
        digest: "d",
        ends: IndexEnd::In(Duration::from_secs(90)),
    };
    ensure_eq!(
        client.backend().run(&lifetime).await?,
        (true, 3),
        "d for 90 s from now"
    );
    let ttl = client.backend().pttl(&index).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::from_secs(85) && t <= Duration::from_secs(90)),
        "the index's TTL {ttl:?} is not d's lifetime"
    );
    Ok(())
}

async fn index_take_one_or_all(client: &Client) -> CheckResult {
    let index = scratch_key(client);
    let now = crate::util::whole_millis(crate::util::window::now());
    for (digest, ends) in [
        ("x", now + 50_000),
        ("y", now + 40_000),
        ("z", now + 60_000),
    ] {
        client
            .backend()
            .run(&IndexAdd {
                index: &index,
                digest,
                ends: IndexEnd::At(ends),
            })
            .await?;
    }
    let take = |one| IndexTake { index: &index, one };
    ensure_eq!(
        client.backend().run(&take(Some("x"))).await?,
        vec!["x"],
        "taking x"
    );
    ensure_eq!(
        client.backend().run(&take(Some("x"))).await?,
        Vec::<String>::new(),
        "taking x again"
    );
    ensure_eq!(
        client.backend().run(&take(None)).await?,
        vec!["y", "z"],
        "taking all, by end"
    );
    ensure_eq!(
        client.backend().run(&take(None)).await?,
        Vec::<String>::new(),
        "an empty index"
    );
    Ok(())
}

async fn put_record_conditions(client: &Client) -> CheckResult {
    let key = scratch_key(client);
    let at = crate::util::window::now() + Duration::from_secs(100);
    let put = |value: &'static [u8], condition, at| PutRecord {
        key: &key,
        value,
        at,
        condition,
    };
    ensure_eq!(
        client
            .backend()
            .exec(&put(b"1", Condition::Existing, at))
            .await?,
        false,
        "XX on a missing key"
    );
    ensure_eq!(
        client.backend().get(&key).await?,
        None,
        "XX created the key"
    );
    ensure_eq!(
        client
            .backend()
            .exec(&put(b"1", Condition::Missing, at))
            .await?,
        true,
        "NX on a missing key"
    );
    ensure_eq!(
        client
            .backend()
            .exec(&put(b"2", Condition::Missing, at))
            .await?,
        false,
        "NX on an existing key"
    );
    ensure_eq!(
        client
            .backend()
            .exec(&put(b"3", Condition::Existing, at))
            .await?,
        true,
        "XX on an existing key"
    );
    ensure_eq!(
        client.backend().get(&key).await?.as_deref(),
        Some(&b"3"[..]),
        "the value"
    );
    let ttl = client.backend().pttl(&key).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::from_secs(95) && t <= Duration::from_secs(100)),
        "the TTL {ttl:?} is not the absolute expiry"
    );
    let past = crate::util::window::now() - Duration::from_secs(1);
    client
        .backend()
        .exec(&put(b"4", Condition::Existing, past))
        .await?;
    ensure_eq!(
        client.backend().get(&key).await?,
        None,
        "a record whose expiry has passed"
    );
    Ok(())
}
