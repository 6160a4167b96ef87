//! A group's dead letters: events its consumers gave up on, with why.

use serde::de::DeserializeOwned;

use super::ops::{DeadLetters, FIELD, field};
use super::{EventId, EventStream};
use crate::error::Result;

/// An event a consumer group gave up on: delivered `max_deliveries` times without success,
/// claimed from a consumer that stopped during its last delivery, or not decodable as the
/// consumer's type. The event itself stays in its stream (other groups read it too).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The dead letter's own id (in the dead-letter stream).
    pub id: EventId,
    /// The event's id in its stream.
    pub event_id: Option<EventId>,
    /// The event, or why it does not decode as `T` (its JSON is kept in the dead-letter
    /// stream's field `d`).
    pub event: std::result::Result<T, String>,
    /// The consumer of the last delivery.
    pub consumer: String,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// The last error (the handler's, or why the event could not be handled).
    pub error: String,
}

impl<T: DeserializeOwned> EventStream<T> {
    /// The oldest `count` dead letters of `group` (the key `ns:{name}:dead:<group>`, a
    /// stream capped like the consumer's `dead_letter_cap`). Inspect them, append the events
    /// again once fixed, and trim the dead-letter stream with `XTRIM` or `XDEL`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let client = redis_patterns::Client::new("mem://")?;
    /// let orders = redis_patterns::stream::EventStream::<u64>::new("orders").client(client);
    /// assert!(orders.dead_letters("billing", 10).await?.is_empty());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn dead_letters(&self, group: &str, count: usize) -> Result<Vec<DeadLetter<T>>> {
        let client = self.resolved_client();
        let dead = super::dead_letter_key(client, &self.name, group);
        let letters = client
            .backend()
            .exec(&DeadLetters { dead: &dead, count })
            .await?;
        Ok(letters
            .into_iter()
            .map(|(id, fields)| {
                let text = |name: &str| {
                    field(&fields, name)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                };
                let event = match field(&fields, FIELD) {
                    Some(json) => serde_json::from_slice(json).map_err(|e| e.to_string()),
                    None => Err("the dead letter has no field `d`".to_owned()),
                };
                DeadLetter {
                    id,
                    event_id: text("id").parse().ok(),
                    event,
                    consumer: text("consumer"),
                    deliveries: text("deliveries").parse().unwrap_or(0),
                    error: text("error"),
                }
            })
            .collect())
    }
}
