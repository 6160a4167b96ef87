//! The conformance suite of the backend facade: what a [`Check`] is, the helpers the checks
//! are written with, and [`conformance_checks`], which gathers the checks each room keeps
//! next to the operations it verifies (`backend/conformance.rs` for the plain commands,
//! `cache/`, `lock/` and `rate_limit/conformance.rs` for the atomic operations).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::client::Client;
use crate::error::Error;

/// Every check of the backend facade: each plain command and each atomic operation (Lua
/// script and in-memory twin) the patterns are built from, with the exact answers and the
/// TTLs it must leave. Run them all against a client of a backend or deployment to check
/// that it behaves as redis-server and `mem://` do; each uses a key of its own under the
/// client's namespace (one hash tag per check, so they may run concurrently, on a cluster
/// too), and a few wait for expiries (up to 300 ms each).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use redis_patterns::{Client, Config};
/// use redis_patterns::test_util::conformance_checks;
///
/// let client = Client::new(Config::from_url("mem://")?.namespace("conformance"))?;
/// let mut failed = Vec::new();
/// for check in conformance_checks() {
///     if let Err(why) = check.run(&client).await {
///         failed.push(format!("{}: {why}", check.name()));
///     }
/// }
/// assert!(failed.is_empty(), "{failed:#?}");
/// # Ok(()) }
/// ```
pub fn conformance_checks() -> Vec<Check> {
    let mut checks = crate::backend::conformance::checks();
    checks.extend(crate::cache::conformance::checks());
    checks.extend(crate::lock::conformance::checks());
    checks.extend(crate::rate_limit::conformance::checks());
    checks.extend(crate::counter::conformance::checks());
    checks.extend(crate::leaderboard::conformance::checks());
    checks.extend(crate::session::conformance::checks());
    checks.extend(crate::stream::conformance::checks());
    checks.extend(crate::queue::conformance::checks());
    checks
}

/// One behaviour of one operation of the backend facade, checked against a client's backend.
/// See [`conformance_checks`].
pub struct Check {
    name: &'static str,
    run: Box<dyn for<'a> Fn(&'a Client) -> CheckFuture<'a> + Send + Sync>,
}

type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

impl Check {
    /// A check named `"<operation>: <behaviour>"`.
    pub(crate) fn new(
        name: &'static str,
        run: impl for<'a> Fn(&'a Client) -> CheckFuture<'a> + Send + Sync + 'static,
    ) -> Self {
        Check {
            name,
            run: Box::new(run),
        }
    }

    /// What is checked: the operation, then the behaviour
    /// (`"lock/release: only the owner's token releases the lock"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The operation checked: a plain command of the facade (`"backend/get"`) or an atomic
    /// operation, named as its script (`"lock/release"` is `scripts/lock/release.lua`).
    pub fn operation(&self) -> &'static str {
        self.name.split_once(':').map_or(self.name, |(op, _)| op)
    }

    /// Runs the check against `client`'s backend. `Err` says what differed from the expected
    /// behaviour (or which command failed).
    pub async fn run(&self, client: &Client) -> Result<(), String> {
        (self.run)(client).await.map_err(|failure| failure.0)
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a check failed; backend errors convert with `?`.
pub(crate) struct Failure(pub(crate) String);

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure(format!("the backend failed: {error}"))
    }
}

/// What a check's body returns.
pub(crate) type CheckResult = Result<(), Failure>;

/// A key of its own for one run of a check, under the client's namespace:
/// `ns:{conformance:#<random>}`. Append suffixes to it for more keys in the same hash slot.
pub(crate) fn scratch_key(client: &Client) -> String {
    let name = format!("conformance:{}", crate::util::new_token());
    crate::key::name_key(client.namespace(), &name)
}

/// Fails the check with the message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::test_util::conformance::Failure(format!($($message)+)));
        }
    };
}

/// Fails the check unless both sides are equal, saying what each was.
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($message:tt)+) => {
        match (&$got, &$expected) {
            (got, expected) => {
                if got != expected {
                    return Err($crate::test_util::conformance::Failure(format!(
                        "{}: got {:?}, expected {:?}",
                        format_args!($($message)+),
                        got,
                        expected
                    )));
                }
            }
        }
    };
}

/// A [`Check`] running the async fn `$body(client, $args…)`.
macro_rules! check {
    ($name:expr, $body:path $(, $arg:expr)* $(,)?) => {
        $crate::test_util::Check::new($name, move |client| Box::pin($body(client $(, $arg)*)))
    };
}

pub(crate) use {check, ensure, ensure_eq};

#[cfg(test)]
mod tests {
    use super::conformance_checks;

    /// Every script is an atomic operation; each must have a check, or a new backend could
    /// get it wrong unnoticed. (A file whose name starts with `_` is Lua prepended to the
    /// scripts that use it, checked through them.)
    #[test]
    fn every_script_has_a_check() {
        let checks = conformance_checks();
        let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts");
        let mut seen = 0;
        for room in std::fs::read_dir(scripts).unwrap() {
            let room = room.unwrap().path();
            for script in std::fs::read_dir(&room).unwrap() {
                let script = script.unwrap().path();
                let prelude = script
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('_'));
                if prelude {
                    continue;
                }
                let operation = format!(
                    "{}/{}",
                    room.file_name().unwrap().to_string_lossy(),
                    script.file_stem().unwrap().to_string_lossy()
                );
                assert!(
                    checks.iter().any(|c| c.operation() == operation),
                    "no conformance check for {operation}"
                );
                seen += 1;
            }
        }
        assert!(seen >= 9, "found the scripts");
    }

    #[test]
    fn check_names_are_unique_and_name_their_operation() {
        let checks = conformance_checks();
        let mut names: Vec<_> = checks.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), checks.len(), "{names:#?}");
        for check in &checks {
            assert!(check.name().contains(": "), "{check:?}");
            assert!(check.operation().contains('/'), "{check:?}");
        }
    }
}
