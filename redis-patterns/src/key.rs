//! Key encoding: how the values of a key template's placeholders become part of a Redis key.
//!
//! A call of `#[cached(key = "product:<id>")]` with `id = 42` on a client with namespace
//! `shop` is stored under `shop:{product:42}`; its stampede lock is `shop:{product:42}:lock`.
//!
//! * The braces are a Redis Cluster *hash tag*: every key written for one call hashes to the
//!   same slot, so multi-key scripts work on a cluster.
//! * Placeholder values are escaped: only ASCII letters, digits and `- _ . @ + = , /` are
//!   written as they are; every other byte of the UTF-8 text is written as `%XX`. A value can
//!   therefore never contain `:`, `{`, `}`, glob characters (`* ? [ ]`), spaces, newlines or
//!   non-ASCII text, so it can neither add a segment to the key, nor move it to another hash
//!   slot, nor match somebody else's `SCAN` pattern.
//! * Placeholders are separated by `:` (checked at compile time), so the encoding is
//!   injective: two different argument tuples of one template never share a key.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI128, NonZeroIsize, NonZeroU8,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU128, NonZeroUsize,
};
use std::rc::Rc;
use std::sync::Arc;

/// A value that can stand in a key template's placeholder, such as `<id>` in `"product:<id>"`.
///
/// Implemented for integers, `bool`, `char`, `str`, `String`, IP addresses, references, smart
/// pointers, `Cow` and `Option<T>` (`None` is written `~`). Implement it for your own types by
/// writing an *injective* representation — different values must write different text —
/// through [`KeyWriter`], which escapes whatever you give it:
///
/// ```
/// use redis_patterns::{KeyPart, KeyWriter};
///
/// struct Sku { vendor: u32, code: String }
///
/// impl KeyPart for Sku {
///     fn write_key_part(&self, out: &mut KeyWriter<'_>) {
///         // "7/AB-1": the vendor is a number, so the first `/` always ends it.
///         out.write_display(&self.vendor);
///         out.write_str("/");
///         out.write_str(&self.code);
///     }
/// }
///
/// let sku = Sku { vendor: 7, code: "AB 1".into() };
/// assert_eq!(redis_patterns::key_part_to_string(&sku), "7/AB%201");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in a cache key",
    label = "this placeholder's value must implement `redis_patterns::KeyPart`",
    note = "implement `redis_patterns::KeyPart` for `{Self}` (write an injective text through `KeyWriter`), \
            or leave the parameter out of the key and list it in `skip(...)`"
)]
pub trait KeyPart {
    /// Writes this value's key text. Everything written is escaped by `out`.
    fn write_key_part(&self, out: &mut KeyWriter<'_>);
}

/// Where a [`KeyPart`] writes its text; it escapes every byte outside `A-Z a-z 0-9 - _ . @ + = , /`.
pub struct KeyWriter<'a> {
    buf: &'a mut String,
}

impl<'a> KeyWriter<'a> {
    pub(crate) fn new(buf: &'a mut String) -> Self {
        KeyWriter { buf }
    }

    /// Appends `s`, escaped.
    ///
    /// ```
    /// assert_eq!(redis_patterns::key_part_to_string("a:b{c}"), "a%3Ab%7Bc%7D");
    /// ```
    pub fn write_str(&mut self, s: &str) {
        if s.bytes().all(is_plain) {
            self.buf.push_str(s);
        } else {
            for b in s.bytes() {
                push_escaped(self.buf, b);
            }
        }
    }

    /// Appends the `Display` text of `value`, escaped.
    pub fn write_display(&mut self, value: &dyn fmt::Display) {
        // Writing through an escaping adapter avoids a temporary String.
        let _ = write!(Escaping(self.buf), "{value}");
    }

    fn write_integer<I: itoa::Integer>(&mut self, i: I) {
        self.buf.push_str(itoa::Buffer::new().format(i));
    }
}

struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        KeyWriter { buf: self.0 }.write_str(s);
        Ok(())
    }
}

#[inline]
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+' | b'=' | b',' | b'/')
}

fn push_escaped(buf: &mut String, b: u8) {
    if is_plain(b) {
        buf.push(b as char);
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        buf.push('%');
        buf.push(HEX[usize::from(b >> 4)] as char);
        buf.push(HEX[usize::from(b & 0xF)] as char);
    }
}

/// The key text `part` writes, as it appears inside a Redis key.
///
/// ```
/// assert_eq!(redis_patterns::key_part_to_string(&42u64), "42");
/// assert_eq!(redis_patterns::key_part_to_string(&Some("x y")), "x%20y");
/// assert_eq!(redis_patterns::key_part_to_string(&None::<u8>), "~");
/// ```
pub fn key_part_to_string<P: KeyPart + ?Sized>(part: &P) -> String {
    let mut s = String::new();
    part.write_key_part(&mut KeyWriter::new(&mut s));
    s
}

macro_rules! integer_key_parts {
    ($($t:ty)*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                out.write_integer(*self);
            }
        }
    )*};
}
integer_key_parts!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

macro_rules! nonzero_key_parts {
    ($($t:ty)*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                out.write_integer(self.get());
            }
        }
    )*};
}
nonzero_key_parts!(
    NonZeroU8 NonZeroU16 NonZeroU32 NonZeroU64 NonZeroU128 NonZeroUsize
    NonZeroI8 NonZeroI16 NonZeroI32 NonZeroI64 NonZeroI128 NonZeroIsize
);

macro_rules! display_key_parts {
    ($($t:ty)*) => {$(
        impl KeyPart for $t {
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                out.write_display(self);
            }
        }
    )*};
}
display_key_parts!(IpAddr Ipv4Addr Ipv6Addr SocketAddr);

impl KeyPart for bool {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(if *self { "true" } else { "false" });
    }
}

impl KeyPart for char {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self.encode_utf8(&mut [0; 4]));
    }
}

impl KeyPart for str {
    #[inline]
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

impl KeyPart for String {
    #[inline]
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

/// `None` is written `~` (which is escaped everywhere else). `Some(v)` is written as `v`,
/// with one more `~` in front when `v`'s own text starts with `~` (a nested `None`), so that
/// `None`, `Some(None)` and `Some(Some(..))` all differ.
impl<T: KeyPart> KeyPart for Option<T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        match self {
            None => out.buf.push('~'),
            Some(v) => {
                let start = out.buf.len();
                v.write_key_part(out);
                if out.buf[start..].starts_with('~') {
                    out.buf.insert(start, '~');
                }
            }
        }
    }
}

macro_rules! deref_key_parts {
    ($($t:ty),*) => {$(
        impl<T: KeyPart + ?Sized> KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                (**self).write_key_part(out);
            }
        }
    )*};
}
deref_key_parts!(&T, &mut T, Box<T>, Rc<T>, Arc<T>);

impl<T: KeyPart + ToOwned + ?Sized> KeyPart for Cow<'_, T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key_part(out);
    }
}

/// The key of a lock (or other object) named by the program, e.g. `"report:daily"`:
/// `namespace:{name}`, with the name's `:` kept and everything that could break the hash tag
/// or match a glob escaped as in placeholder values.
pub(crate) fn name_key(namespace: Option<&str>, name: &str) -> String {
    let mut key = KeyBuilder::new(namespace);
    for b in name.bytes() {
        if b == b':' {
            key.buf.push(':');
        } else {
            push_escaped(&mut key.buf, b);
        }
    }
    key.finish()
}

/// Builds the full Redis key of one call: `namespace:{literal part literal …}`.
///
/// Used by generated code; the literals come from a template validated at compile time.
#[doc(hidden)]
pub struct KeyBuilder {
    buf: String,
}

impl KeyBuilder {
    #[inline]
    pub fn new(namespace: Option<&str>) -> Self {
        let mut buf = String::with_capacity(64);
        if let Some(ns) = namespace {
            buf.push_str(ns);
            buf.push(':');
        }
        buf.push('{');
        KeyBuilder { buf }
    }

    #[inline]
    pub fn literal(&mut self, literal: &str) -> &mut Self {
        self.buf.push_str(literal);
        self
    }

    #[inline]
    pub fn part<P: KeyPart + ?Sized>(&mut self, part: &P) -> &mut Self {
        part.write_key_part(&mut KeyWriter::new(&mut self.buf));
        self
    }

    #[inline]
    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key2<A: KeyPart, B: KeyPart>(a: A, b: B) -> String {
        let mut k = KeyBuilder::new(Some("ns"));
        k.literal("t:").part(&a).literal(":").part(&b);
        k.finish()
    }

    #[test]
    fn plain_values_are_readable() {
        assert_eq!(key2(42u64, "eu-west"), "ns:{t:42:eu-west}");
        assert_eq!(key2(-1i32, true), "ns:{t:-1:true}");
        assert_eq!(key_part_to_string(&IpAddr::from([10, 0, 0, 1])), "10.0.0.1");
    }

    #[test]
    fn special_characters_are_escaped() {
        let k = key2("a:b", "}{*?[] \n\u{e9}%~\\");
        assert_eq!(k, "ns:{t:a%3Ab:%7D%7B%2A%3F%5B%5D%20%0A%C3%A9%25%7E%5C}");
        let inner = &k["ns:{".len()..k.len() - 1];
        assert!(!inner.contains(['{', '}', '*', '?', '[', ']', ' ', '\n']));
        assert_eq!(inner.matches(':').count(), 2);
    }

    #[test]
    fn adversarial_tuples_never_collide() {
        let parts = [
            "", "a", "a:b", "a%3Ab", ":", "%", "~", "%7E", "{", "}", "a}b", "*", " ", "\n", "é",
            "%C3%A9", "b", "a:", ":b", "-", "~~",
        ];
        let mut seen = HashSet::new();
        for a in parts {
            for b in parts {
                assert!(seen.insert(key2(a, b)), "collision for ({a:?}, {b:?})");
            }
        }
    }

    #[test]
    fn options_are_injective() {
        let values: Vec<Option<Option<&str>>> = vec![
            None,
            Some(None),
            Some(Some("")),
            Some(Some("~")),
            Some(Some("x")),
        ];
        let texts: HashSet<String> = values.iter().map(key_part_to_string).collect();
        assert_eq!(texts.len(), values.len(), "{texts:?}");
        assert_eq!(key_part_to_string(&Some(Some("x"))), "x");
    }

    #[test]
    fn lock_names_keep_colons_and_escape_the_rest() {
        assert_eq!(name_key(Some("ns"), "report:daily"), "ns:{report:daily}");
        assert_eq!(name_key(None, "a}{b c"), "{a%7D%7Bb%20c}");
        assert_ne!(name_key(None, "a%7D"), name_key(None, "a}"));
    }

    #[test]
    fn display_is_escaped_too() {
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(key_part_to_string(&addr), "%5B%3A%3A1%5D%3A80");
    }
}
