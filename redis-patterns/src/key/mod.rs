//! Key encoding: how a call's key template and placeholder values become a Redis key.
//!
//! A call of `#[cached(key = "product:<id>")]` with `id = 42` on a client with namespace
//! `shop` is stored under `shop:{product:#42}`; its stampede lock is `shop:{product:#42}:lock`.
//!
//! * The braces are a Redis Cluster *hash tag*, never empty: every key written for one call
//!   hashes to the same slot, so multi-key scripts work on a cluster. Whatever would leave
//!   nothing between the braces (an empty lock name or limiter key) is written `~`, which no
//!   other input produces there.
//! * Names given at run time (`Lock::new("report:daily")`, `limiter.check("api:alice", 1)`)
//!   read as templates of their shape: the first `:`-separated segment is literal text, each
//!   further one a value (`{report:#daily}`, `{api:#alice}`), so they meet the attributes'
//!   locks and limits of the same template and values.
//! * Placeholder values are escaped: only ASCII letters, digits and `- _ . @ + = , /` are
//!   written as they are; every other byte of the UTF-8 text is written as `%XX`. A value can
//!   therefore never contain `:`, `#`, `{`, `}`, glob characters (`* ? [ ]`), spaces, newlines
//!   or non-ASCII text, so it can neither add a segment to the key, nor move it to another hash
//!   slot, nor match somebody else's `SCAN` pattern.
//! * Each value is written after a `#`, which literal template text may not contain (checked
//!   at compile time), and stands between `:`s or at the end (also checked). So every
//!   `:`-separated segment of a key is either literal text or one whole value, told apart by
//!   its first character, and a key reads back into the template's literal text, where its
//!   placeholders stand, and their values: two templates give equal keys only when they are
//!   the same up to placeholder names, and then only for equal values.

mod ecosystem;

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI128, NonZeroIsize, NonZeroU8,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU128, NonZeroUsize,
};
use std::rc::Rc;
use std::sync::Arc;

/// A value that can stand in a key template's placeholder, such as `<id>` in `"product:<id>"`.
///
/// Implemented for integers, `bool`, `char`, `str`, `String`, IP and socket addresses,
/// references, smart pointers, `Cow` and `Option<T>` (`None` is written `~`); with feature
/// `uuid` for `uuid::Uuid`, `ulid` for `ulid::Ulid`, and `time` / `chrono` for those crates'
/// date-times (`20240501T123000Z`, in UTC). Implement it for your own types by writing an
/// *injective* representation — different values must write different text — through
/// [`KeyWriter`], which escapes whatever you give it. (For another crate's type, wrap it in a
/// newtype of yours.)
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
/// assert_eq!(sku.to_key_text(), "7/AB%201");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in a key",
    label = "this placeholder's value must implement `redis_patterns::KeyPart`",
    note = "implement `redis_patterns::KeyPart` for `{Self}` if it is your type (write an injective text through `KeyWriter`); \
            for a type of another crate, wrap it in a newtype of yours and implement `KeyPart` for that, \
            or use a placeholder on one of its fields (`<param.field>`)",
    note = "redis-patterns implements `KeyPart` for `uuid::Uuid`, `ulid::Ulid`, and the date-times of `time` and `chrono` \
            behind its features `uuid`, `ulid`, `time` and `chrono`",
    note = "a #[cached] function can also leave the parameter out of the key with `skip(...)`"
)]
pub trait KeyPart {
    /// Writes this value's key text. Everything written is escaped by `out`.
    fn write_key_part(&self, out: &mut KeyWriter<'_>);

    /// The key text this value writes, as it appears inside a Redis key: to check an
    /// implementation, or to build a key by hand that matches an attribute's.
    ///
    /// ```
    /// use redis_patterns::KeyPart;
    /// assert_eq!(42u64.to_key_text(), "42");
    /// assert_eq!(Some("x y").to_key_text(), "x%20y");
    /// assert_eq!(None::<u8>.to_key_text(), "~");
    /// ```
    fn to_key_text(&self) -> String {
        let mut s = String::new();
        self.write_key_part(&mut KeyWriter::new(&mut s));
        s
    }
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
    /// assert_eq!(redis_patterns::KeyPart::to_key_text("a:b{c}"), "a%3Ab%7Bc%7D");
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

/// [`KeyPart::to_key_text`], as a function.
#[cfg(test)]
pub(crate) fn key_part_to_string<P: KeyPart + ?Sized>(part: &P) -> String {
    part.to_key_text()
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
display_key_parts!(IpAddr Ipv4Addr Ipv6Addr SocketAddrV4);

/// `[ip]:port`, then `%scope_id` and `/flowinfo` when they are not zero, so that addresses
/// that differ only in those differ in their keys too (`Display` leaves out `flowinfo`).
impl KeyPart for SocketAddrV6 {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str("[");
        out.write_display(self.ip());
        if self.scope_id() != 0 {
            out.write_str("%");
            out.write_integer(self.scope_id());
        }
        out.write_str("]:");
        out.write_integer(self.port());
        if self.flowinfo() != 0 {
            out.write_str("/");
            out.write_integer(self.flowinfo());
        }
    }
}

/// As its variant: IPv6 addresses are bracketed, so they never read as IPv4 ones.
impl KeyPart for SocketAddr {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        match self {
            SocketAddr::V4(a) => a.write_key_part(out),
            SocketAddr::V6(a) => a.write_key_part(out),
        }
    }
}

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

/// The key of a lock or rate limit named at run time, such as `Lock::new("report:daily")` or
/// `limiter.check("api:alice", 1)`: the name reads as a template of its shape, its first
/// `:`-separated segment literal text and each further one a placeholder value, so that
/// `"api:alice"` has the key `key = "api:<user>"` gives for `user = "alice"`: `{api:#alice}`.
/// The literal segment is escaped like a value (its `#` too, so it never reads as one).
pub(crate) fn name_key(namespace: Option<&str>, name: &str) -> String {
    named(KeyBuilder::new(namespace), name)
}

/// `name` read as a template of its shape, after what `builder` holds.
fn named(mut builder: KeyBuilder, name: &str) -> String {
    let mut segments = name.split(':');
    if let Some(first) = segments.next() {
        for b in first.bytes() {
            push_escaped(&mut builder.buf, b);
        }
    }
    for value in segments {
        builder.literal(":").part(value);
    }
    builder.finish()
}

/// The key of a cache tag named at run time (`invalidate_tag("brand:acme")`): read as
/// [`name_key`] reads names, after the tags' own prefix, so that it is the key a
/// `tags = ["brand:<brand>"]` template gives for `brand = "acme"`.
pub(crate) fn tag_key(namespace: Option<&str>, name: &str) -> String {
    named(KeyBuilder::for_tag(namespace), name)
}

/// What follows the namespace in a tag's key, `namespace:^tag:{…}`: no key of a call starts so
/// (they continue with `{`), so tags and entries never share a key, nor a tracked prefix.
pub(crate) const TAG_PREFIX: &str = "^tag:";

/// Marks the start of a placeholder value in a key; literal text never contains it.
const VALUE_MARK: char = '#';

/// What stands between the braces when nothing else would: an empty hash tag is no hash tag
/// (Redis then hashes the whole key, and one call's keys land in different slots).
const EMPTY_TAG: char = '~';

/// Builds the full Redis key of one call: `namespace:{literal #value literal …}`.
///
/// Used by generated code; the literals come from a template validated at compile time.
#[doc(hidden)]
pub struct KeyBuilder {
    buf: String,
    /// Where the hash tag's text starts, just after `{`.
    tag_start: usize,
}

impl KeyBuilder {
    #[inline]
    pub fn new(namespace: Option<&str>) -> Self {
        Self::after(namespace, "")
    }

    /// `namespace:` and `marker`, then the opening brace.
    #[inline]
    fn after(namespace: Option<&str>, marker: &str) -> Self {
        let mut buf = String::with_capacity(64);
        if let Some(ns) = namespace {
            buf.push_str(ns);
            buf.push(':');
        }
        buf.push_str(marker);
        buf.push('{');
        let tag_start = buf.len();
        KeyBuilder { buf, tag_start }
    }

    /// Literal text of a template, which holds no `#`, `{` or `}` (checked at compile time).
    /// The key of a cache tag: `namespace:^tag:{…}`.
    #[inline]
    pub fn for_tag(namespace: Option<&str>) -> Self {
        Self::after(namespace, TAG_PREFIX)
    }

    #[inline]
    pub fn literal(&mut self, literal: &str) -> &mut Self {
        self.buf.push_str(literal);
        self
    }

    /// A path whose `:` are kept: the `Self` type of a default key
    /// (`std::any::type_name::<Self>()`); the rest is escaped like values.
    #[inline]
    pub fn path(&mut self, path: &str) -> &mut Self {
        for b in path.bytes() {
            if b == b':' {
                self.buf.push(':');
            } else {
                push_escaped(&mut self.buf, b);
            }
        }
        self
    }

    /// A placeholder value: `#` and its escaped text.
    #[inline]
    pub fn part<P: KeyPart + ?Sized>(&mut self, part: &P) -> &mut Self {
        self.buf.push(VALUE_MARK);
        part.write_key_part(&mut KeyWriter::new(&mut self.buf));
        self
    }

    #[inline]
    pub fn finish(mut self) -> String {
        if self.buf.len() == self.tag_start {
            self.buf.push(EMPTY_TAG);
        }
        self.buf.push('}');
        self.buf
    }
}

#[cfg(test)]
mod tests;
