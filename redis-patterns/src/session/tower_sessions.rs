//! [`RedisSessionStore`]: a [`tower_sessions`](https://docs.rs/tower-sessions) session store on
//! any redis-patterns backend (feature `tower-sessions`), for applications that already use
//! that crate's `Session` extractor and `SessionManagerLayer`.
//!
//! A record is stored as JSON under `ns:{tower-session:#<sha256 of its id>}` (Redis never holds
//! an id), expiring at the record's expiry date (`PXAT`). `create` writes only a missing key and
//! draws a new id on a collision; `save` writes only an existing key, so a session deleted
//! meanwhile (a logout in another request) is not brought back; `load` and `delete` are one
//! `GET` and one `DEL`.

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, SessionStore};

use super::record::{Condition, PutRecord};
use crate::client::Client;
use crate::key::KeyBuilder;

/// A `tower_sessions::SessionStore` on Redis, a cluster, Sentinel or `mem://`.
///
/// ```
/// use redis_patterns::Client;
/// use redis_patterns::session::tower_sessions::RedisSessionStore;
///
/// let store = RedisSessionStore::new(Client::new("mem://")?); // or redis://…
/// // let layer = tower_sessions::SessionManagerLayer::new(store);
/// # let _ = store;
/// # Ok::<(), redis_patterns::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RedisSessionStore {
    client: Client,
}

impl RedisSessionStore {
    /// A store on `client` (and its namespace).
    pub fn new(client: Client) -> Self {
        RedisSessionStore { client }
    }

    fn key(&self, id: &Id) -> String {
        let digest = Sha256::digest(id.to_string().as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push_str(&format!("{byte:02x}"));
        }
        let mut key = KeyBuilder::new(self.client.namespace());
        key.literal("tower-session:").part(hex.as_str());
        key.finish()
    }

    async fn put(&self, record: &Record, condition: Condition) -> session_store::Result<bool> {
        let value =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let at = Duration::try_from(record.expiry_date - time::OffsetDateTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let key = self.key(&record.id);
        let op = PutRecord {
            key: &key,
            value: &value,
            at,
            condition,
        };
        self.client.backend().exec(&op).await.map_err(backend)
    }
}

fn backend(error: crate::Error) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A colliding 128-bit id does not happen; a few draws make sure it cannot overwrite.
        for _ in 0..3 {
            if self.put(record, Condition::Missing).await? {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(
            "three new session ids in a row were taken".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.put(record, Condition::Existing).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let stored = self
            .client
            .backend()
            .get(&self.key(id))
            .await
            .map_err(backend)?;
        stored
            .map(|bytes| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| session_store::Error::Decode(e.to_string()))
            })
            .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.client
            .backend()
            .del(&self.key(id))
            .await
            .map(|_| ())
            .map_err(backend)
    }
}
