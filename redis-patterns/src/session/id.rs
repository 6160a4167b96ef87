//! Session ids: 256 bits from the operating system's CSPRNG, written as 64 lowercase hex
//! digits. Redis never sees an id: a session is stored under the SHA-256 of its id, so neither
//! a leaked key listing (`SCAN`, a replica, a backup) nor the time a lookup takes tells anyone
//! a live id, and a forged or malformed id is just a key that does not exist.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Bytes of randomness in an id.
const BYTES: usize = 32;

/// A session's id: the secret the client holds (in a cookie, say). It never appears in
/// `Debug` output or in logs, and has no `Display`: [`expose`](Self::expose) it where it must
/// go, to the client.
///
/// ```
/// use redis_patterns::session::SessionId;
///
/// let id = SessionId::parse("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
/// assert_eq!(format!("{id:?}"), "SessionId(…)");
/// assert!(SessionId::parse("not an id").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A new id from the operating system's CSPRNG.
    pub(crate) fn generate() -> Result<SessionId> {
        let mut bytes = [0u8; BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::Config(format!(
                "no randomness from the operating system for a session id: {e}"
            ))
        })?;
        Ok(SessionId(hex(&bytes)))
    }

    /// The id a client sent back, if it has the shape of one (64 lowercase hex digits);
    /// `None` otherwise, which callers treat as "no session". Whether a session exists is
    /// only known by loading it.
    pub fn parse(text: &str) -> Option<SessionId> {
        let shaped = text.len() == 2 * BYTES
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        shaped.then(|| SessionId(text.to_owned()))
    }

    /// The id itself, to hand to the client (a cookie's value). It is a bearer secret: do not
    /// log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 of the id: what the session is stored under.
    pub(crate) fn digest(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(…)")
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_shaped_and_hashed() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.digest().len(), 64);
        assert_ne!(a.digest(), a.expose(), "stored under its hash, not itself");
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn malformed_ids_are_no_ids() {
        let upper = "A".repeat(64);
        for text in [
            "",
            "abc",
            upper.as_str(),
            &"0".repeat(63),
            &"0".repeat(65),
            &"g".repeat(64),
        ] {
            assert!(SessionId::parse(text).is_none(), "{text:?}");
        }
    }
}
