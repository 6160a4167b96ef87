//! Default keys of methods start with the `Self` type: in plain and generic `impl`s, for
//! associated functions that name `Self`, for every attribute. A free function whose signature
//! has a `self::` path has no `Self` and keeps the module path.

use redis_patterns::lock::LockError;
use redis_patterns::{cached, rate_limited, with_lock};
use redis_patterns::rate_limit::RateLimited;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
}

impl redis_patterns::KeyPart for User {
    fn write_key_part(&self, out: &mut redis_patterns::KeyWriter<'_>) {
        out.write_display(&self.id);
    }
}

#[derive(Debug)]
enum Error {
    Busy,
}

impl From<RateLimited> for Error {
    fn from(_: RateLimited) -> Self {
        Error::Busy
    }
}

impl From<LockError> for Error {
    fn from(_: LockError) -> Self {
        Error::Busy
    }
}

impl User {
    #[cached(ttl = "1m")]
    async fn load(id: u64) -> Option<Self> {
        Some(User { id })
    }

    #[cached(ttl = "1m")]
    async fn name(&self, suffix: String) -> String {
        format!("{}{suffix}", self.id)
    }

    #[rate_limited(limit = 1, window = "1m")]
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }

    #[with_lock(ttl = "10s")]
    async fn migrate(&self) -> Result<(), Error> {
        Ok(())
    }
}

struct Repo<T>(std::marker::PhantomData<T>);

impl<T: Sync> Repo<T> {
    #[cached(ttl = "1m")]
    async fn count(&self) -> u64 {
        0
    }
}

#[cached(ttl = "1m")]
async fn by_user(user: self::User) -> u64 {
    user.id
}

fn main() {
    let _ = User::load(1);
    let _: String = User::load_key(1);
    let user = User { id: 1 };
    let _ = user.name("x".into());
    let _: String = User::name_key("x".into());
    let _ = user.ping();
    let _ = user.migrate();
    let repo = Repo::<u8>(std::marker::PhantomData);
    let _ = repo.count();
    let _: String = Repo::<u8>::count_key();
    let _ = by_user(User { id: 1 });
}
