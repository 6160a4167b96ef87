//! Conformance checks of the stream's operations (`ops.rs`): appends with growing ids and a
//! length cap, and the length; those of consumer groups are in `conformance/group.rs`.

mod failure;
mod group;

use super::ops::{Append, Length, TRIM_SLACK};
use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    let mut checks = vec![
        check!(
            "stream/append: ids grow; the oldest events are trimmed beyond the cap (within a node)",
            append_grows_and_trims,
        ),
        check!(
            "stream/length: none for a missing stream, then each event",
            length_counts
        ),
    ];
    checks.extend(group::checks());
    checks
}

async fn append_grows_and_trims(client: &Client) -> CheckResult {
    let key = format!("{}:stream", scratch_key(client));
    let mut last = None;
    for i in 0..250u32 {
        let payload = i.to_string();
        let op = Append {
            key: &key,
            payload: payload.as_bytes(),
            cap: 10,
        };
        let id = client.backend().exec(&op).await?;
        ensure!(last.is_none_or(|l| l < id), "id {id} after {last:?}");
        last = Some(id);
    }
    let len = client.backend().exec(&Length { key: &key }).await?;
    ensure!(
        (10..=10 + TRIM_SLACK).contains(&len),
        "{len} events kept under a cap of 10"
    );
    Ok(())
}

async fn length_counts(client: &Client) -> CheckResult {
    let key = format!("{}:stream", scratch_key(client));
    ensure_eq!(
        client.backend().exec(&Length { key: &key }).await?,
        0,
        "missing"
    );
    for expected in 1..=3 {
        let op = Append {
            key: &key,
            payload: b"{}",
            cap: 1_000,
        };
        client.backend().exec(&op).await?;
        ensure_eq!(
            client.backend().exec(&Length { key: &key }).await?,
            expected,
            "after {expected} appends"
        );
    }
    Ok(())
}
