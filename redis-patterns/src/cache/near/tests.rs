use super::*;

const LIFE: Duration = Duration::from_secs(30);

fn armed(capacity: usize) -> NearTier {
    let tier = NearTier::new(NearCache::max_entries(capacity));
    arm(&tier);
    tier
}

/// Arms `tier` with every key covered and no lease.
fn arm(tier: &NearTier) {
    tier.armed(&[String::new()], None);
}

fn ticket_for(tier: &NearTier, key: &str) -> Ticket {
    tier.ticket(key).expect("every key is covered")
}

#[test]
fn a_value_is_served_within_its_lifetime_only() {
    let tier = armed(10);
    let now = Instant::now();
    let ticket = ticket_for(&tier, "k");
    assert!(tier.insert(ticket, "k", 7u64, 0, Duration::from_secs(1), now));
    assert_eq!(tier.get::<u64>("k", now), Some(7));
    assert_eq!(
        tier.get::<u64>("k", now + Duration::from_millis(999)),
        Some(7)
    );
    assert_eq!(tier.get::<u64>("k", now + Duration::from_secs(1)), None);
    // Another type under the key is not served as this one.
    let ticket = ticket_for(&tier, "s");
    assert!(tier.insert(ticket, "s", String::from("x"), 0, LIFE, now));
    assert_eq!(tier.get::<u64>("s", now), None);
}

#[test]
fn an_invalidation_that_overtakes_the_reply_wins() {
    let tier = armed(10);
    let now = Instant::now();
    let ticket = ticket_for(&tier, "k");
    // The server changed the key, and its message arrived before our read's reply.
    tier.invalidate_key("k");
    assert!(!tier.insert(ticket, "k", 1u64, 0, LIFE, now));
    assert_eq!(tier.get::<u64>("k", now), None);
    // A read started after the invalidation may insert.
    let ticket = ticket_for(&tier, "k");
    assert!(tier.insert(ticket, "k", 2u64, 0, LIFE, now));
    assert_eq!(tier.get::<u64>("k", now), Some(2));
    // And a later invalidation removes it.
    tier.invalidate_key("k");
    assert_eq!(tier.get::<u64>("k", now), None);
}

#[test]
fn a_flush_refuses_every_read_in_flight() {
    let tier = armed(10);
    let now = Instant::now();
    let tickets: Vec<_> = (0..100)
        .map(|i| (i, ticket_for(&tier, &format!("k{i}"))))
        .collect();
    tier.flush();
    for (i, ticket) in tickets {
        assert!(!tier.insert(ticket, &format!("k{i}"), i, 0, LIFE, now));
    }
    assert_eq!(tier.len(), 0);
}

#[test]
fn nothing_is_served_or_stored_while_disarmed() {
    let tier = NearTier::new(NearCache::max_entries(10));
    let now = Instant::now();
    assert!(
        tier.ticket("k").is_none(),
        "no key is covered before tracking is armed"
    );
    arm(&tier);
    assert!(tier.insert(ticket_for(&tier, "k"), "k", 1u64, 0, LIFE, now));
    let in_flight = ticket_for(&tier, "j");
    tier.disarmed();
    assert_eq!(tier.get::<u64>("k", now), None);
    assert_eq!(tier.len(), 0, "flushed");
    arm(&tier);
    assert!(
        !tier.insert(in_flight, "j", 1u64, 0, LIFE, now),
        "read before the outage"
    );
    assert_eq!(
        tier.get::<u64>("k", now),
        None,
        "nothing from before the outage"
    );
}

#[test]
fn the_tier_is_bounded() {
    let tier = armed(100);
    let now = Instant::now();
    for i in 0..10_000u64 {
        let key = format!("k{i}");
        tier.insert(ticket_for(&tier, &key), &key, i, 0, LIFE, now);
    }
    assert!(tier.len() <= 100, "{}", tier.len());
}

#[test]
fn invalidations_racing_inserts_never_leave_a_stale_value() {
    // Each value records the epoch of the ticket it was read under. Right after an
    // invalidation, whatever is served must have been read after it.
    let tier = Arc::new(armed(1_000));
    let now = Instant::now();
    // Eight keys of eight different shards: every epoch change of a key's shard is then an
    // invalidation of that key.
    let mut shards = std::collections::HashSet::new();
    let keys: Vec<String> = (0..)
        .map(|i| format!("k{i}"))
        .filter(|key| shards.insert(tier.shard(key)))
        .take(8)
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (tier, keys) = (Arc::clone(&tier), &keys);
            scope.spawn(move || {
                for i in 0..20_000u64 {
                    let key = &keys[(i % 8) as usize];
                    if i % 3 == 0 {
                        tier.invalidate_key(key);
                        let after = ticket_for(&tier, key).epoch;
                        if let Some(read_under) = tier.get::<u64>(key, now) {
                            assert!(read_under >= after, "{read_under} < {after}");
                        }
                    } else {
                        let ticket = ticket_for(&tier, key);
                        tier.insert(ticket, key, ticket.epoch, 0, LIFE, now);
                    }
                }
            });
        }
    });
}

#[test]
fn values_are_served_only_within_the_lease_of_the_last_heartbeat() {
    let tier = NearTier::new(NearCache::max_entries(10));
    let now = Instant::now();
    tier.armed(
        &[String::from("ns:{a:#")],
        Some(now + Duration::from_secs(1)),
    );
    assert!(tier.insert(
        ticket_for(&tier, "ns:{a:#1}"),
        "ns:{a:#1}",
        1u64,
        0,
        LIFE,
        now
    ));
    assert_eq!(
        tier.get::<u64>("ns:{a:#1}", now + Duration::from_millis(900)),
        Some(1)
    );
    assert_eq!(
        tier.get::<u64>("ns:{a:#1}", now + Duration::from_millis(1_100)),
        None,
        "lease ran out"
    );
    tier.renew(now + Duration::from_secs(2));
    assert_eq!(
        tier.get::<u64>("ns:{a:#1}", now + Duration::from_millis(1_100)),
        Some(1),
        "renewed"
    );
    // A heartbeat that was in flight while tracking was lost does not re-arm the tier.
    tier.disarmed();
    tier.renew(now + Duration::from_secs(3));
    assert!(tier.ticket("ns:{a:#1}").is_none());
    assert_eq!(tier.get::<u64>("ns:{a:#1}", now), None);
}

#[test]
fn only_tracked_prefixes_get_tickets_and_invalidations() {
    let tier = NearTier::new(NearCache::max_entries(10));
    let now = Instant::now();
    tier.armed(&[String::from("ns:{a:#")], None);
    assert!(tier.ticket("ns:{b:#1}").is_none(), "not tracked yet");
    tier.covering("ns:{b:#");
    let ticket = ticket_for(&tier, "ns:{b:#1}");
    // A change of a key nobody tracks (a rate limit's) refuses nothing.
    tier.invalidate(b"ns:{limit:#x}");
    assert!(tier.insert(ticket, "ns:{b:#1}", 1u64, 0, LIFE, now));
    tier.invalidate(b"ns:{b:#1}");
    assert_eq!(tier.get::<u64>("ns:{b:#1}", now), None);
    // FLUSHDB.
    assert!(tier.insert(
        ticket_for(&tier, "ns:{a:#1}"),
        "ns:{a:#1}",
        1u64,
        0,
        LIFE,
        now
    ));
    tier.invalidate_all();
    assert_eq!(tier.len(), 0);
}

#[test]
fn a_byte_bound_limits_bytes_and_entries() {
    let tier = NearTier::new(NearCache::max_entries(1_000).max_bytes(10_000));
    arm(&tier);
    let now = Instant::now();
    for i in 0..1_000u64 {
        let key = format!("k{i}");
        tier.insert(ticket_for(&tier, &key), &key, i, 1_000, LIFE, now);
    }
    assert!(
        tier.len() <= 10,
        "1,000-byte values in 10,000 bytes: {}",
        tier.len()
    );
    let tier = NearTier::new(NearCache::max_entries(10).max_bytes(1 << 30));
    arm(&tier);
    for i in 0..1_000u64 {
        let key = format!("k{i}");
        tier.insert(ticket_for(&tier, &key), &key, i, 8, LIFE, now);
    }
    assert!(
        tier.len() <= 10,
        "small values, but at most 10 entries: {}",
        tier.len()
    );
}

#[test]
fn prefixes_end_at_the_first_value() {
    assert_eq!(prefix_of("shop:{product:#42}"), "shop:{product:#");
    assert_eq!(prefix_of("{product:#42:detail:#7}"), "{product:#");
    assert_eq!(prefix_of("shop:{config}"), "shop:{config}");
}
