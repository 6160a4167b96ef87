//! Taking a lock: its keys, one attempt, and the loop that attempts, waits for releases (or
//! polls) and gives up, as the module documentation describes.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::ops::new_lock_token;
use super::ops::{Acquire, Attempt};
use super::stats::{Event, TemplateCounters};
use super::{LockError, LockGuard, count, lease_validity};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::Error;
use crate::util::jittered;

/// How a lock is taken: [`Lock`]'s settings, or `#[with_lock]`'s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    pub(crate) ttl: Duration,
    pub(crate) wait: Duration,
    pub(crate) retry: Duration,
    /// Issue the fencing token with the grant.
    pub(crate) fenced: bool,
}

/// The keys of a lock named by `key` (`ns:{name}`), built once per acquisition.
pub(crate) struct LockKeys {
    /// `ns:{name}:mutex`: holds the owner token.
    pub(crate) mutex: String,
    /// The fencing key ([`fence_key`]), for a lock that issues its token with the grant.
    pub(crate) fence: Option<String>,
    /// `ns:^{name}:waiters`: exists while someone waits; rewritten by each release, which is
    /// what waiters hear. Expires with the lease of the waiter that wrote it. The `^` before
    /// the hash tag keeps the prefix waiters track (`ns:^{template:#`, see
    /// `backend::tracking::prefix_of`) off the lock's other keys: tracking delivers the
    /// releases that rewrite marks, not every acquisition and release of every lock of the
    /// template.
    pub(crate) waiters: String,
}

/// `ns:{name}:fence` of a lock whose key is `mutex` (`ns:{name}:mutex`): the last fencing
/// token issued; expires with the lease of the holder that asked for it.
pub(crate) fn fence_key(mutex: &str) -> String {
    format!("{}:fence", mutex.strip_suffix(":mutex").unwrap_or(mutex))
}

/// `ns:^{name}:waiters` of the lock `key` (`ns:{name}`): the same hash tag, so the same slot.
fn waiters_key(key: &str) -> String {
    let at = key.find('{').unwrap_or(0);
    format!("{}^{}:waiters", &key[..at], &key[at..])
}

impl LockKeys {
    pub(crate) fn new(key: &str, fenced: bool) -> Self {
        LockKeys {
            mutex: format!("{key}:mutex"),
            fence: fenced.then(|| format!("{key}:fence")),
            waiters: waiters_key(key),
        }
    }
}

/// One attempt at the lock with `token`: a plain `SET NX PX` for a first attempt, the
/// waiter's script (which marks the lock as awaited when refused) after a refusal, and always
/// for a lock that issues its fencing token with the grant.
pub(crate) async fn try_acquire(
    backend: &Backend,
    keys: &LockKeys,
    token: &str,
    ttl: Duration,
    waiting: bool,
) -> Result<Attempt, Error> {
    if !waiting
        && keys.fence.is_none()
        && backend.set_nx(&keys.mutex, token.as_bytes(), ttl).await?
    {
        return Ok(Attempt::Acquired(None));
    }
    backend
        .run(&Acquire {
            mutex: &keys.mutex,
            waiters: &keys.waiters,
            fence: keys.fence.as_deref(),
            token,
            ttl,
        })
        .await
}

/// Takes the lock `key` (`ns:{name}`): attempts until one is granted with its lease still
/// valid when the reply arrives, another owner holds it past `wait`, or the backend fails.
/// Counted for the client and, for `#[with_lock]`, its `template`.
pub(crate) async fn acquire_key(
    client: &Client,
    key: &str,
    terms: Terms,
    template: Option<&'static TemplateCounters>,
) -> Result<LockGuard, LockError> {
    let Terms {
        ttl, wait, retry, ..
    } = terms;
    let guard = async {
        let backend = &client.inner().backend;
        let mut contended = false;
        let started = Instant::now();
        let deadline = started + wait;
        let keys = LockKeys::new(key, terms.fenced);
        let validity = lease_validity(ttl);
        let mut token = new_lock_token();
        // The watch of the waiters' mark, from the first refusal on (an uncontended
        // acquisition registers nothing).
        let mut watch: Option<crate::backend::watch::Watch> = None;
        loop {
            let mut seen = watch.as_ref().map(|w| w.before_attempt());
            // Until then: how many changes this client's tracking had heard, of any key.
            let heard = if watch.is_none() {
                client.changes_heard()
            } else {
                None
            };
            let sent = Instant::now();
            let valid_until = sent + validity;
            let attempt = tokio::time::timeout_at(
                valid_until,
                try_acquire(backend, &keys, &token, ttl, contended),
            )
            .await;
            let pause = match attempt {
                Ok(Ok(Attempt::Acquired(fencing_token))) if Instant::now() < valid_until => {
                    return Ok(LockGuard {
                        client: client.clone(),
                        template,
                        lock_key: keys.mutex,
                        waiters: keys.waiters,
                        token,
                        fencing_token: fencing_token
                            .map_or_else(std::sync::OnceLock::new, std::sync::OnceLock::from),
                        ttl,
                        valid_until: Mutex::new(valid_until),
                        armed: true,
                    });
                }
                Ok(Ok(Attempt::Acquired(_))) | Err(_) => {
                    // Granted (or perhaps granted: the reply never came) too late to be used. Give
                    // it back, and try again under a new token, so the give-back can never release
                    // a later grant.
                    let round_trip = sent.elapsed();
                    crate::backend::unlock_in_background(
                        backend,
                        keys.mutex.clone(),
                        Some(keys.waiters.clone()),
                        std::mem::replace(&mut token, new_lock_token()),
                    );
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(LockError::LeaseTooShort { ttl, round_trip });
                    }
                    jittered(retry)
                }
                Ok(Ok(Attempt::Held { remaining, marked })) => {
                    if !contended {
                        contended = true;
                        count(client, template, Event::Contended);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(LockError::Timeout {
                            waited: now - started,
                        });
                    }
                    // No point waking before the holder's lease could have run out.
                    let lease_left = remaining
                        .unwrap_or(Duration::MAX)
                        .max(Duration::from_millis(1));
                    if watch.is_none() {
                        // First refusal: watch the mark. A release between this attempt and
                        // the watch would be missing from the count the watch starts at,
                        // unless the client's tracking heard nothing at all since before the
                        // attempt: then wait from that count; else (or if it tracked nothing
                        // yet) attempt again at once. (The count is read before the check: a
                        // change heard after the check is counted after it.)
                        let w = client.watch(&keys.waiters);
                        let now_seen = w.before_attempt();
                        let quiet = heard.is_some_and(|h| client.changes_heard() == Some(h));
                        watch = Some(w);
                        if !quiet {
                            continue;
                        }
                        seen = Some(now_seen);
                    }
                    match (&watch, seen) {
                        // The release rewrites the mark, and tracking delivers that: sleep
                        // until it does (a release since `seen` returns at once) or the
                        // holder's lease runs out, which no message announces.
                        (Some(w), Some(seen)) if seen.live && marked => {
                            w.changed(seen, lease_left.min(deadline - now)).await;
                            if w.before_attempt().live {
                                continue;
                            }
                            // Woken because tracking was lost (a dropped connection, a
                            // restarting server): poll from here, starting with a pause
                            // rather than an attempt that would likely meet the outage.
                            jittered(retry)
                        }
                        // Not delivered (tracking not armed yet, lost, refused) or no mark
                        // (it could not be written): poll, woken early when tracking comes.
                        (Some(w), Some(seen)) => {
                            let pause = jittered(retry).min(lease_left);
                            w.changed(seen, pause.min(deadline - now)).await;
                            continue;
                        }
                        _ => jittered(retry).min(lease_left),
                    }
                }
                Ok(Err(error)) => {
                    if !error.is_connection_failure() {
                        return Err(LockError::Backend(error));
                    }
                    // The request may have been carried out after we stopped waiting: give
                    // back a grant nobody will use rather than block others for a lease, and
                    // go on (if at all) under a new token, which the give-back cannot release.
                    crate::backend::unlock_in_background(
                        backend,
                        keys.mutex.clone(),
                        Some(keys.waiters.clone()),
                        std::mem::replace(&mut token, new_lock_token()),
                    );
                    // A caller that was already waiting waits through a dropped connection or a
                    // restart, polling, within its `wait`; a first attempt fails at once, and
                    // so does a waiter whose backend is still unreachable at the deadline.
                    let pause = jittered(retry);
                    if !contended || Instant::now() + pause >= deadline {
                        return Err(LockError::Backend(error));
                    }
                    pause
                }
            };
            let now = Instant::now();
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(now))).await;
        }
    }
    .await;
    let count = |event| count(client, template, event);
    match &guard {
        Ok(_) => count(Event::Acquired),
        Err(LockError::Timeout { .. }) => count(Event::Timeout),
        Err(LockError::LeaseTooShort { .. }) => count(Event::LateGrant),
        Err(LockError::Backend(_)) => count(Event::BackendError),
        Err(LockError::Lost) => count(Event::Lost),
        Err(LockError::OutsideLock) => {}
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::hash_tag;
    use crate::backend::tracking::prefix_of;

    #[test]
    fn the_prefix_waiters_track_covers_no_other_key_of_a_lock() {
        for key in ["ns:{lock:#42}", "{payment:#7:#x}", "a:b:{global}"] {
            let keys = LockKeys::new(key, true);
            let prefix = prefix_of(&keys.waiters);
            let fence = keys.fence.as_deref().unwrap_or_default();
            for other in [keys.mutex.as_str(), fence] {
                assert!(!other.starts_with(prefix), "{prefix} covers {other}");
                assert_eq!(hash_tag(other), hash_tag(&keys.waiters), "{other}'s slot");
            }
        }
        // The marks of one template share a prefix, which covers no lock key of it.
        let (a, b) = (
            LockKeys::new("ns:{lock:#1}", false),
            LockKeys::new("ns:{lock:#2}", false),
        );
        assert_eq!(prefix_of(&a.waiters), "ns:^{lock:#");
        assert_eq!(prefix_of(&a.waiters), prefix_of(&b.waiters));
        assert!(!b.mutex.starts_with(prefix_of(&a.waiters)));
    }
}
