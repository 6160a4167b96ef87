//! [`EventId`]: where an event stands in its stream, as Redis numbers stream entries.

use std::fmt;
use std::str::FromStr;

/// An event's id in its stream: the server's clock in milliseconds when it was appended, and
/// a sequence number among the events of that millisecond (`1700000000000-0`). Ids only grow
/// within a stream, so they order its events; a handler can use one as an idempotency key.
///
/// ```
/// use redis_patterns::stream::EventId;
///
/// let id: EventId = "1700000000000-3".parse().unwrap();
/// assert_eq!((id.millis(), id.sequence()), (1_700_000_000_000, 3));
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!(id < "1700000000001-0".parse().unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    millis: u64,
    sequence: u64,
}

impl EventId {
    pub(crate) const fn new(millis: u64, sequence: u64) -> Self {
        EventId { millis, sequence }
    }

    /// Milliseconds since the Unix epoch, on the server's clock, when the event was appended.
    pub fn millis(&self) -> u64 {
        self.millis
    }

    /// The event's place among those appended in the same millisecond.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The id after this one, as Redis would give it `now` milliseconds since the epoch.
    pub(crate) fn next(self, now: u64) -> Option<EventId> {
        if now > self.millis {
            Some(EventId::new(now, 0))
        } else {
            let sequence = self.sequence.checked_add(1)?;
            Some(EventId::new(self.millis, sequence))
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.sequence)
    }
}

/// `<ms>-<seq>` as a command argument, without a `String` per id.
impl redis::ToRedisArgs for EventId {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut millis = itoa::Buffer::new();
        let mut sequence = itoa::Buffer::new();
        let (millis, sequence) = (millis.format(self.millis), sequence.format(self.sequence));
        let mut text = [0u8; 41];
        let len = millis.len() + 1 + sequence.len();
        text[..millis.len()].copy_from_slice(millis.as_bytes());
        text[millis.len()] = b'-';
        text[millis.len() + 1..len].copy_from_slice(sequence.as_bytes());
        out.write_arg(&text[..len]);
    }
}

/// Why a text is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a stream event id (expected <milliseconds>-<sequence>, e.g. 1700000000000-0)"
)]
pub struct InvalidEventId(String);

impl FromStr for EventId {
    type Err = InvalidEventId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidEventId(text.to_owned());
        let (millis, sequence) = text.split_once('-').ok_or_else(invalid)?;
        let millis = millis.parse().map_err(|_| invalid())?;
        let sequence = sequence.parse().map_err(|_| invalid())?;
        Ok(EventId::new(millis, sequence))
    }
}

#[cfg(test)]
mod tests {
    use super::EventId;

    #[test]
    fn ids_follow_the_clock_or_count_within_a_millisecond() {
        let id = EventId::new(10, 4);
        assert_eq!(id.next(11), Some(EventId::new(11, 0)));
        assert_eq!(id.next(10), Some(EventId::new(10, 5)));
        // A clock that went back does not move ids back.
        assert_eq!(id.next(3), Some(EventId::new(10, 5)));
        assert_eq!(EventId::new(10, u64::MAX).next(10), None);
    }

    #[test]
    fn ids_are_written_as_redis_reads_them() {
        use redis::ToRedisArgs;
        for id in [
            EventId::new(0, 0),
            EventId::new(1_700_000_000_000, 42),
            EventId::new(u64::MAX, u64::MAX),
        ] {
            assert_eq!(id.to_redis_args(), vec![id.to_string().into_bytes()]);
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in ["", "12", "a-1", "1-b", "1-2-3", "-1"] {
            assert!(text.parse::<EventId>().is_err(), "{text}");
        }
    }
}
