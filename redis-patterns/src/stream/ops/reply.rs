//! Stream replies read as redis-rs hands them over (RESP2 arrays, or RESP3 maps).

use bytes::Bytes;
use redis::Value;

use super::Fields;
use crate::backend::unexpected_reply;
use crate::error::Result;
use crate::stream::EventId;

/// Entries as `XRANGE` and `XREADGROUP` give them: `[[id, [field, value, …]], …]`, the fields
/// `nil` for an entry deleted since it was delivered.
pub(crate) fn parse_entries(entries: Value) -> Result<Vec<(EventId, Option<Fields>)>> {
    let Value::Array(entries) = entries else {
        return Err(unexpected_reply("stream entries"));
    };
    entries
        .into_iter()
        .map(|entry| {
            let Value::Array(mut parts) = entry else {
                return Err(unexpected_reply("stream entry"));
            };
            let (fields, id) = match (parts.pop(), parts.pop()) {
                (Some(fields), Some(id)) if parts.is_empty() => (fields, id),
                _ => return Err(unexpected_reply("stream entry")),
            };
            let id = text(id)
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| unexpected_reply("stream entry id"))?;
            let fields = match fields {
                Value::Nil => None,
                Value::Array(flat) => {
                    let mut fields = Vec::with_capacity(flat.len() / 2);
                    let mut flat = flat.into_iter();
                    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                        let name = text(name).ok_or_else(|| unexpected_reply("stream field"))?;
                        fields.push((name, bytes(value)?));
                    }
                    Some(fields)
                }
                Value::Map(pairs) => Some(
                    pairs
                        .into_iter()
                        .map(|(name, value)| {
                            let name =
                                text(name).ok_or_else(|| unexpected_reply("stream field"))?;
                            Ok((name, bytes(value)?))
                        })
                        .collect::<Result<_>>()?,
                ),
                _ => return Err(unexpected_reply("stream fields")),
            };
            Ok((id, fields))
        })
        .collect()
}

/// A reply that is text (a bulk or simple string).
pub(crate) fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

/// A reply that is a bulk string (or an integer, as Redis may store a number).
pub(crate) fn bytes(value: Value) -> Result<Bytes> {
    match value {
        Value::BulkString(bytes) => Ok(Bytes::from(bytes)),
        Value::SimpleString(text) => Ok(Bytes::from(text)),
        Value::Int(n) => Ok(Bytes::from(n.to_string())),
        _ => Err(unexpected_reply("stream field value")),
    }
}
