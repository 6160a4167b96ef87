//! The Redis backend: one multiplexed connection shared by all calls and replaced when it
//! breaks (see `connection.rs`), redis-rs's connection and response timeouts, and a circuit
//! breaker that turns a dead server into fast errors with capped exponential backoff and
//! jitter.

use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisResult, Script, Value};

use super::Probe;
use super::connection::SharedConnection;
use crate::config::{Config, Target};
use crate::error::{Error, Result};

static GET_OR_LOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/get_or_lock.lua")));
static SET_AND_UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/set_and_unlock.lua")));
static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/unlock.lua")));

#[doc(hidden)]
pub struct RedisBackend {
    conn: SharedConnection,
    command_timeout: Duration,
    breaker: Breaker,
}

impl RedisBackend {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let Target::Redis(url) = &config.target else {
            return Err(Error::Config("not a redis:// configuration".into()));
        };
        let info = url.clone().into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &config.password {
            settings = settings.set_password(&password.0);
        }
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        Ok(RedisBackend {
            conn: SharedConnection::new(client, connection_config),
            command_timeout: config.command_timeout,
            breaker: Breaker::new(config.reconnect_min_backoff, config.reconnect_max_backoff),
        })
    }

    /// Runs one command behind the breaker. redis-rs bounds it: dialling (when there is no
    /// connection) by `connect_timeout`, the answer by `command_timeout`; a second timer here
    /// would only add cost to every call.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.breaker.check()?;
        let (generation, conn) = match self.conn.get().await {
            Ok(current) => current,
            Err(e) => {
                self.breaker.failed();
                return Err(Error::Redis(e));
            }
        };
        match f(conn).await {
            Ok(value) => {
                self.breaker.succeeded();
                Ok(value)
            }
            Err(e) if e.is_timeout() => {
                // A slow answer does not mean a broken connection: keep it.
                self.breaker.failed();
                Err(Error::Timeout(self.command_timeout))
            }
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() {
                    self.conn.discard(generation);
                }
                let e = Error::Redis(e);
                if e.is_connection_failure() {
                    self.breaker.failed();
                }
                Err(e)
            }
        }
    }

    /// Runs a Lua script (`EVALSHA`, loading it on `NOSCRIPT`) behind the breaker.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let value: Option<Vec<u8>> = self
            .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        Ok(value.map(Bytes::from))
    }

    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn del(&self, key: &str) -> Result<bool> {
        let n: u64 = self
            .run(|mut c| async move { redis::cmd("DEL").arg(key).query_async(&mut c).await })
            .await?;
        Ok(n > 0)
    }

    pub(crate) async fn pttl(&self, key: &str) -> Result<Option<Duration>> {
        let ms: i64 = self
            .run(|mut c| async move { redis::cmd("PTTL").arg(key).query_async(&mut c).await })
            .await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    pub(crate) async fn get_or_lock(
        &self,
        key: &str,
        lock_key: &str,
        token: &str,
        lock_ttl: Duration,
    ) -> Result<Probe> {
        let reply: Value = self
            .run(|mut c| async move {
                GET_OR_LOCK
                    .key(key)
                    .key(lock_key)
                    .arg(token)
                    .arg(millis(lock_ttl))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        parse_probe(reply)
    }

    pub(crate) async fn set_and_unlock(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        lock_key: &str,
        token: &str,
    ) -> Result<bool> {
        let released: i64 = self
            .run(|mut c| async move {
                SET_AND_UNLOCK
                    .key(key)
                    .key(lock_key)
                    .arg(value)
                    .arg(millis(ttl))
                    .arg(token)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(released == 1)
    }

    pub(crate) async fn unlock(&self, lock_key: &str, token: &str) -> Result<bool> {
        let released: i64 = self
            .run(|mut c| async move { UNLOCK.key(lock_key).arg(token).invoke_async(&mut c).await })
            .await?;
        Ok(released == 1)
    }
}

fn parse_probe(reply: Value) -> Result<Probe> {
    let unexpected = || {
        Error::Redis(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "unexpected reply from the get_or_lock script",
        )))
    };
    let Value::Array(items) = reply else {
        return Err(unexpected());
    };
    match items.as_slice() {
        [Value::Int(1), Value::BulkString(bytes)] => Ok(Probe::Value(Bytes::from(bytes.clone()))),
        [Value::Int(2)] => Ok(Probe::Acquired),
        [Value::Int(3)] => Ok(Probe::Held),
        _ => Err(unexpected()),
    }
}

/// Milliseconds for `PX`, at least 1 (Redis rejects 0).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Consecutive connection failures before the breaker opens.
const FAILURE_THRESHOLD: u32 = 3;

/// A circuit breaker: after [`FAILURE_THRESHOLD`] consecutive connection failures, calls fail
/// at once for a backoff that doubles (with jitter) from `min` up to `max`; when it elapses
/// one probe call goes through, and its success closes the breaker.
struct Breaker {
    origin: Instant,
    failures: AtomicU32,
    /// Milliseconds since `origin` until which calls are refused; 0 when closed.
    open_until_ms: AtomicU64,
    min: Duration,
    max: Duration,
}

impl Breaker {
    fn new(min: Duration, max: Duration) -> Self {
        Breaker {
            origin: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            min,
            max,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn check(&self) -> Result<()> {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Ok(());
        }
        let now = self.now_ms();
        if now < until {
            return Err(Error::Unavailable {
                retry_in: Duration::from_millis(until - now),
            });
        }
        // The backoff elapsed: let exactly one caller probe, and hold the others off for as
        // long as the probe may take.
        let probe_window = u64::try_from(self.min.as_millis())
            .unwrap_or(u64::MAX)
            .max(100);
        match self.open_until_ms.compare_exchange(
            until,
            now + probe_window,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::Unavailable {
                retry_in: Duration::from_millis(probe_window),
            }),
        }
    }

    fn succeeded(&self) {
        // Reads first, so the hot path does not write a shared cache line.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until_ms.load(Ordering::Relaxed) != 0 {
            self.open_until_ms.store(0, Ordering::Release);
            tracing::info!(target: "redis_patterns", "Redis is reachable again");
        }
    }

    fn failed(&self) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures < FAILURE_THRESHOLD {
            return;
        }
        let exponent = (failures - FAILURE_THRESHOLD).min(20);
        let backoff = self.min.saturating_mul(1 << exponent).min(self.max);
        // Full jitter over the upper half, so that many clients do not retry in lockstep.
        let jittered = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
        let until = self.now_ms() + u64::try_from(jittered.as_millis()).unwrap_or(0).max(1);
        self.open_until_ms.store(until, Ordering::Release);
        if failures == FAILURE_THRESHOLD {
            tracing::warn!(
                target: "redis_patterns",
                backoff_ms = jittered.as_millis() as u64,
                "Redis failed {failures} times in a row; failing fast until the backoff elapses"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_probes_once() {
        let b = Breaker::new(Duration::from_millis(20), Duration::from_millis(40));
        for _ in 0..FAILURE_THRESHOLD - 1 {
            b.failed();
            assert!(b.check().is_ok());
        }
        b.failed();
        assert!(matches!(b.check(), Err(Error::Unavailable { .. })));
        std::thread::sleep(Duration::from_millis(45));
        assert!(b.check().is_ok(), "one probe goes through");
        assert!(b.check().is_err(), "others are held off during the probe");
        b.succeeded();
        assert!(b.check().is_ok());
        assert!(b.check().is_ok());
    }

    #[test]
    fn breaker_backoff_is_capped() {
        let b = Breaker::new(Duration::from_millis(10), Duration::from_millis(30));
        for _ in 0..50 {
            b.failed();
        }
        let until = b.open_until_ms.load(Ordering::Relaxed);
        assert!(until <= b.now_ms() + 30, "{until}");
    }

    #[test]
    fn probe_replies_are_parsed() {
        let v = Value::Array(vec![Value::Int(1), Value::BulkString(b"x".to_vec())]);
        assert_eq!(
            parse_probe(v).unwrap(),
            Probe::Value(Bytes::from_static(b"x"))
        );
        assert_eq!(
            parse_probe(Value::Array(vec![Value::Int(2)])).unwrap(),
            Probe::Acquired
        );
        assert_eq!(
            parse_probe(Value::Array(vec![Value::Int(3)])).unwrap(),
            Probe::Held
        );
        assert!(parse_probe(Value::Nil).is_err());
    }
}
