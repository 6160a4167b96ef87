//! Sessions: [`Sessions`] creates, loads, saves, rotates and deletes typed sessions, with an
//! idle timeout that slides on every use and an absolute lifetime it never passes, and logs a
//! user out everywhere through a per-user index (never a keyspace scan).
//!
//! A session with id `s` (namespace `ns`) is a hash under `ns:{session:#<sha256(s)>}`: fields
//! `d` (the data, JSON), `v` (its version), `u` (the user), `c` (created) and `e` (the
//! absolute end, in ms since the Unix epoch). Its TTL is the idle timeout, renewed by every
//! load, touch and save, and never past `e`. A user's sessions are listed in
//! `ns:{session-user:#<user>}`, a sorted set of session hashes by absolute end, pruned of ended
//! ones on every login and expiring with the last of them.
//!
//! **Concurrent writes.** A session is saved whole, under an optimistic version check: a save
//! of a session that somebody else saved since it was loaded fails with
//! [`SessionError::Conflict`], and the caller reloads and applies its change again. Per-field
//! updates would need the data to be a map; versions keep `T` any serde type and make a lost
//! update impossible rather than unlikely.
//!
//! **Failures.** Sessions fail closed: with Redis unreachable, slow or failing, every operation
//! returns [`SessionError::Backend`] (within the client's timeouts); nobody is let in on a
//! session that could not be read.

#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod error;
mod id;
mod ops;
#[cfg(any(feature = "tower-sessions", feature = "test-util"))]
mod record;
pub(crate) mod stats;
#[cfg(feature = "tower-sessions")]
pub mod tower_sessions;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::AtomicOp;
use crate::client::Client;
use crate::error::Error;
use crate::key::KeyBuilder;

pub use self::error::SessionError;
pub use self::id::SessionId;
use self::ops::{Create, IndexAdd, IndexEnd, IndexTake, Load, Loaded, Save, SaveOutcome, Take};
pub use self::stats::SessionStats;
use self::stats::{Counters, Event};

/// The default limit of a session's serialized data: 64 KiB.
pub const DEFAULT_MAX_SIZE: usize = 64 * 1024;

/// How long past a new session's absolute end its user's index keeps listing it: the index may
/// live on another node of a cluster, whose clock may run behind. An entry of an ended
/// session only costs the index's own expiry that long.
const CLOCK_SLACK: Duration = Duration::from_secs(60);

/// A loaded session: its data, and what [`save`](Sessions::save) needs to write it back.
#[derive(Clone)]
pub struct Session<T> {
    id: SessionId,
    /// The session's data.
    pub data: T,
    user: String,
    version: u64,
    created: u64,
    ends: u64,
}

impl<T> Session<T> {
    /// The session's id (a secret: see [`SessionId`]).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The user it belongs to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Its version: 1 when created, one more at each save.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When it was created (a rotation keeps it).
    pub fn created(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.created)
    }

    /// When it ends whatever its use: creation plus the absolute lifetime.
    pub fn ends(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.ends)
    }
}

impl<T: fmt::Debug> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("version", &self.version)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// Typed sessions: `sessions.create("alice", &data)`, `sessions.load(&id)`,
/// `sessions.save(&session)`. Cheap to clone; clones share their stats.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use redis_patterns::Client;
/// use redis_patterns::session::{SessionError, SessionId, Sessions};
///
/// #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// struct Cart { items: Vec<String> }
///
/// // Logged out after 30 idle minutes, and after 12 hours whatever the activity.
/// let sessions = Sessions::<Cart>::new(Duration::from_secs(1800), Duration::from_secs(12 * 3600))
///     .client(Client::new("mem://")?); // or redis://…
/// let id = sessions.create("alice", &Cart { items: vec![] }).await?;
/// let cookie = id.expose().to_owned(); // what the browser keeps
///
/// let id = SessionId::parse(&cookie).unwrap();
/// let mut session = sessions.load(&id).await?.expect("logged in");
/// session.data.items.push("lamp".into());
/// sessions.save(&session).await?;
///
/// // A second write from a copy loaded before that save is refused, not lost.
/// session.data.items.push("desk".into());
/// assert!(matches!(sessions.save(&session).await, Err(SessionError::Conflict { .. })));
///
/// let id = sessions.rotate(&id).await?.expect("after a privilege change: a new id");
/// assert_eq!(sessions.delete_all_for("alice").await?, 1, "log out everywhere");
/// assert!(sessions.load(&id).await?.is_none());
/// # Ok(()) }
/// ```
pub struct Sessions<T> {
    settings: Arc<Settings>,
    counters: Arc<Counters>,
    data: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Sessions {
            settings: Arc::clone(&self.settings),
            counters: Arc::clone(&self.counters),
            data: PhantomData,
        }
    }
}

#[derive(Clone)]
struct Settings {
    client: Option<Client>,
    idle: Duration,
    absolute: Duration,
    max_size: usize,
}

impl<T> fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("Sessions")
            .field("idle", &s.idle)
            .field("absolute", &s.absolute)
            .field("max_size", &s.max_size)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned> Sessions<T> {
    /// Sessions that end after `idle` without use (each load, touch and save renews it) and
    /// `absolute` after their creation whatever the use. Durations below 1 ms are 1 ms; an
    /// `idle` above `absolute` is `absolute`.
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        let absolute = absolute.max(Duration::from_millis(1));
        Sessions {
            settings: Arc::new(Settings {
                client: None,
                idle: idle.clamp(Duration::from_millis(1), absolute),
                absolute,
                max_size: DEFAULT_MAX_SIZE,
            }),
            counters: Arc::new(Counters::new()),
            data: PhantomData,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        Arc::make_mut(&mut self.settings).client = Some(client);
        self
    }

    /// The largest serialized data accepted, in bytes ([`DEFAULT_MAX_SIZE`] by default):
    /// larger data is refused with [`SessionError::TooLarge`] before it reaches Redis.
    pub fn max_size(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.settings).max_size = bytes;
        self
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.settings.idle
    }

    /// The absolute lifetime.
    pub fn absolute(&self) -> Duration {
        self.settings.absolute
    }

    /// Starts a session for `user` holding `data`: a new id of 256 random bits. The session is
    /// listed in the user's index before the id is returned; if that fails, the session is
    /// deleted and the error returned, so no session escapes "log out everywhere". One round
    /// trip on one server or behind Sentinel (the two writes pipelined, the session's first);
    /// two on a cluster, where the index lives in the user's slot.
    pub async fn create(&self, user: &str, data: &T) -> Result<SessionId, SessionError> {
        let data = self.encode(data)?;
        self.start(user, &data, None).await
    }

    /// The session of `id`, its expiry slid; `None` for an unknown, expired, deleted or forged
    /// id (all alike, in the same time).
    pub async fn load(&self, id: &SessionId) -> Result<Option<Session<T>>, SessionError> {
        let key = self.key(id);
        let op = Load {
            key: &key,
            idle: self.settings.idle,
            with_data: true,
        };
        let Some(loaded) = self.run(&op).await? else {
            self.counters.count(Event::Missing);
            return Ok(None);
        };
        let data = serde_json::from_slice(&loaded.data).map_err(SessionError::Data)?;
        self.counters.count(Event::Loaded);
        Ok(Some(Session {
            id: id.clone(),
            data,
            user: loaded.user,
            version: loaded.version,
            created: loaded.created,
            ends: loaded.ends,
        }))
    }

    /// Writes `session.data` back if nobody saved the session since it was loaded, and slides
    /// its expiry. Returns the session's new version (the copy's own stays: reload to save
    /// again). [`SessionError::Conflict`] if another save came first; [`SessionError::Gone`]
    /// if the session ended meanwhile (a save never brings it back).
    pub async fn save(&self, session: &Session<T>) -> Result<u64, SessionError> {
        let data = self.encode(&session.data)?;
        let key = self.key(&session.id);
        let op = Save {
            key: &key,
            data: &data,
            version: session.version,
            idle: self.settings.idle,
        };
        match self.run(&op).await? {
            SaveOutcome::Written(version) => {
                self.counters.count(Event::Saved);
                Ok(version)
            }
            SaveOutcome::Gone => Err(SessionError::Gone),
            SaveOutcome::Conflict(current) => {
                self.counters.count(Event::Conflict);
                Err(SessionError::Conflict {
                    loaded: session.version,
                    current,
                })
            }
        }
    }

    /// Slides the expiry of `id`'s session without reading its data; `false` when there is
    /// no such session.
    pub async fn touch(&self, id: &SessionId) -> Result<bool, SessionError> {
        let key = self.key(id);
        let op = Load {
            key: &key,
            idle: self.settings.idle,
            with_data: false,
        };
        Ok(self.run(&op).await?.is_some())
    }

    /// Ends `id`'s session (logout); `false` when there was none.
    pub async fn delete(&self, id: &SessionId) -> Result<bool, SessionError> {
        let digest = id.digest();
        let key = self.key_of(&digest);
        let Some(taken) = self.run(&Take { key: &key }).await? else {
            return Ok(false);
        };
        self.counters.count(Event::Deleted);
        let index = self.index(&taken.user);
        // The session is gone already; a failure here leaves an entry pruned later.
        self.run(&IndexTake {
            index: &index,
            one: Some(&digest),
        })
        .await?;
        Ok(true)
    }

    /// Ends every session of `user` ("log out everywhere", after a password change): the ids
    /// are taken out of the user's index in one step, then each session is deleted. Sessions
    /// created while this runs may survive it; they stay indexed for the next call. Returns
    /// how many sessions were ended.
    pub async fn delete_all_for(&self, user: &str) -> Result<u64, SessionError> {
        let index = self.index(user);
        let digests = self
            .run(&IndexTake {
                index: &index,
                one: None,
            })
            .await?;
        let backend = self.resolved_client().backend();
        let keys: Vec<String> = digests.iter().map(|d| self.key_of(d)).collect();
        let deleted = futures_util::future::try_join_all(keys.iter().map(|key| backend.del(key)))
            .await
            .inspect_err(|_| self.counters.count(Event::BackendError))?;
        let ended = deleted.into_iter().filter(|&d| d).count() as u64;
        for _ in 0..ended {
            self.counters.count(Event::Deleted);
        }
        Ok(ended)
    }

    /// Gives `id`'s session a new id (after a login or a privilege change, against session
    /// fixation): the old id is dead when this returns, the data, user, creation and absolute
    /// end carry over. `None` when there was no session. If creating the new one fails, the
    /// session is ended (fail closed) and the error returned.
    pub async fn rotate(&self, id: &SessionId) -> Result<Option<SessionId>, SessionError> {
        let digest = id.digest();
        let key = self.key_of(&digest);
        let Some(taken) = self.run(&Take { key: &key }).await? else {
            return Ok(None);
        };
        let index = self.index(&taken.user);
        self.run(&IndexTake {
            index: &index,
            one: Some(&digest),
        })
        .await?;
        self.start(&taken.user, &taken.data, Some(&taken))
            .await
            .map(Some)
    }

    /// Activity of these sessions and their clones.
    pub fn stats(&self) -> SessionStats {
        self.counters.snapshot()
    }

    /// Creates a session (with a fresh id, retried on the impossible collision) and indexes it.
    async fn start(
        &self,
        user: &str,
        data: &[u8],
        kept: Option<&Loaded>,
    ) -> Result<SessionId, SessionError> {
        // A new id colliding with a live one (256 random bits) does not happen; a few tries
        // make sure it cannot stop a login.
        let backend = self.resolved_client().backend();
        let index = self.index(user);
        for _ in 0..3 {
            let id = SessionId::generate()?;
            let digest = id.digest();
            let key = self.key_of(&digest);
            let create = Create {
                key: &key,
                data,
                user,
                idle: self.settings.idle,
                absolute: self.settings.absolute,
                kept: kept.map(|k| (k.created, k.ends)),
            };
            // Listed until its absolute end: that of the session a rotation replaces, or the
            // lifetime from the index's clock, which reads it after the session's (on one
            // server), with a minute's slack for the clocks of a cluster's nodes.
            let add = IndexAdd {
                index: &index,
                digest: &digest,
                ends: match kept {
                    Some(k) => IndexEnd::At(k.ends),
                    None => IndexEnd::In(self.settings.absolute.saturating_add(CLOCK_SLACK)),
                },
            };
            // The session, then its index entry: one round trip on one server.
            let (created, indexed) = backend
                .run_in_order(&create, &add)
                .await
                .inspect_err(|_| self.counters.count(Event::BackendError))?;
            if let Ok(Some(_)) = created {
                if let Err(error) = indexed {
                    // Unlisted, it would escape "log out everywhere": end it.
                    self.counters.count(Event::BackendError);
                    let _ = backend.del(&key).await;
                    return Err(error.into());
                }
                self.counters.count(Event::Created);
                return Ok(id);
            }
            // Not created: an entry this call added lists no session of the user.
            if let Ok((true, _)) = indexed {
                let _ = backend
                    .run(&IndexTake {
                        index: &index,
                        one: Some(&digest),
                    })
                    .await;
            }
            match created {
                Err(error) => {
                    self.counters.count(Event::BackendError);
                    return Err(error.into());
                }
                // The rotated session's absolute end has passed.
                Ok(_) if kept.is_some() => return Err(SessionError::Gone),
                Ok(_) => continue,
            }
        }
        Err(SessionError::Backend(Error::Config(
            "three new session ids in a row were taken: the random source is broken".into(),
        )))
    }

    fn encode(&self, data: &T) -> Result<Vec<u8>, SessionError> {
        let bytes = serde_json::to_vec(data).map_err(SessionError::Data)?;
        if bytes.len() > self.settings.max_size {
            self.counters.count(Event::TooLarge);
            return Err(SessionError::TooLarge {
                size: bytes.len(),
                limit: self.settings.max_size,
            });
        }
        Ok(bytes)
    }

    fn resolved_client(&self) -> &Client {
        match &self.settings.client {
            Some(client) => client,
            None => Client::default_client(),
        }
    }

    fn key(&self, id: &SessionId) -> String {
        self.key_of(&id.digest())
    }

    /// `ns:{session:#<digest>}`.
    fn key_of(&self, digest: &str) -> String {
        let mut key = KeyBuilder::new(self.resolved_client().namespace());
        key.literal("session:").part(digest);
        key.finish()
    }

    /// `ns:{session-user:#<user>}`.
    fn index(&self, user: &str) -> String {
        let mut key = KeyBuilder::new(self.resolved_client().namespace());
        key.literal("session-user:").part(user);
        key.finish()
    }

    async fn run<O: AtomicOp>(&self, op: &O) -> Result<O::Output, Error> {
        self.resolved_client()
            .backend()
            .run(op)
            .await
            .inspect_err(|_| self.counters.count(Event::BackendError))
    }
}
