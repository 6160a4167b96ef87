//! How a function's return type maps to what is cached: `Result<T, E>` caches `Ok`,
//! `Option<T>` caches `Some` (and `None` with `cache_none`), anything else is cached whole.
//! Chosen by type through autoref-based selection, never by the type's name.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a function's return type maps to what is cached.
#[doc(hidden)]
pub trait ReturnKind<R> {
    /// Whether the call succeeded (`Ok` for `Result`; always for other types).
    fn succeeded(&self, ret: &R) -> bool;
}

/// A return type whose successful part can be stored.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the return type `{R}` cannot be cached",
    label = "the value this function returns must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait Cacheable<R>: ReturnKind<R> + StoredValue {
    /// The part of `ret` to hand to concurrent callers, if any.
    fn value<'r>(&self, ret: &'r R) -> Option<&'r Self::Value>;
    /// Whether `ret` is stored in the backend.
    fn store(&self, ret: &R) -> bool;
    /// Rebuilds a return value from a stored one.
    fn rebuild(&self, value: Self::Value) -> R;
}

/// What a return kind stores, as a function of the kind alone.
///
/// Not an associated type of [`Cacheable`]: a projection `<K as Cacheable<R>>::Value` names
/// the return type twice (in `K` and in `R`), and the `Send` check of a future that holds one
/// across an `.await` erases each lifetime in it separately, so for a return type with a
/// lifetime (`Box<dyn Error + Send + Sync>` is `+ 'static`) it asked for `Cacheable` "for any
/// two lifetimes" and failed. `<K as StoredValue>::Value` names it once.
#[doc(hidden)]
pub trait StoredValue {
    /// What is stored: `T` for `T` and `Result<T, E>`, `Option<T>` for `Option<T>`.
    type Value: Serialize + DeserializeOwned;
}

/// Chooses how to treat a return type by its type, not its name: `Result<T, E>` (cache
/// `Ok`), `Option<T>` (cache `Some`, or also `None` with `cache_none`), anything else
/// (cache it). Uses autoref-based selection: `(&&&Select::<R>::new()).kind()`.
#[doc(hidden)]
pub struct Select<R>(PhantomData<fn() -> R>);

impl<R> Select<R> {
    pub const fn new() -> Self {
        Select(PhantomData)
    }
}

impl<R> Default for Select<R> {
    fn default() -> Self {
        Self::new()
    }
}

#[doc(hidden)]
pub trait SelectResult {
    type Kind;
    fn kind(&self) -> Self::Kind;
}
#[doc(hidden)]
pub trait SelectOption {
    type Kind;
    fn kind(&self) -> Self::Kind;
}
#[doc(hidden)]
pub trait SelectValue {
    type Kind;
    fn kind(&self) -> Self::Kind;
}

impl<T, E> SelectResult for &&Select<Result<T, E>> {
    type Kind = ResultKind<T, E>;
    fn kind(&self) -> Self::Kind {
        ResultKind(PhantomData)
    }
}
impl<T> SelectOption for &Select<Option<T>> {
    type Kind = OptionKind<T>;
    fn kind(&self) -> Self::Kind {
        OptionKind {
            cache_none: false,
            _t: PhantomData,
        }
    }
}
impl<R> SelectValue for Select<R> {
    type Kind = ValueKind<R>;
    fn kind(&self) -> Self::Kind {
        ValueKind(PhantomData)
    }
}

#[doc(hidden)]
pub struct ResultKind<T, E>(PhantomData<fn() -> (T, E)>);
#[doc(hidden)]
pub struct OptionKind<T> {
    cache_none: bool,
    _t: PhantomData<fn() -> T>,
}
#[doc(hidden)]
pub struct ValueKind<R>(PhantomData<fn() -> R>);

// By hand: derived impls would ask `T: Clone` of the types the kinds only name.
impl<T, E> Clone for ResultKind<T, E> {
    fn clone(&self) -> Self {
        ResultKind(PhantomData)
    }
}
impl<T> Clone for OptionKind<T> {
    fn clone(&self) -> Self {
        OptionKind {
            cache_none: self.cache_none,
            _t: PhantomData,
        }
    }
}
impl<R> Clone for ValueKind<R> {
    fn clone(&self) -> Self {
        ValueKind(PhantomData)
    }
}

impl<T> OptionKind<T> {
    /// Also store `None` results.
    pub fn cache_none(self) -> Self {
        OptionKind {
            cache_none: true,
            _t: PhantomData,
        }
    }
}

/// Only `Option` return types accept `cache_none`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`cache_none` only applies to functions returning `Option<T>`",
    label = "this function does not return an `Option`"
)]
pub trait CacheNone {
    fn cache_none(self) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T> CacheNone for OptionKind<T> {
    fn cache_none(self) -> Self {
        OptionKind::cache_none(self)
    }
}

impl<T, E> ReturnKind<Result<T, E>> for ResultKind<T, E> {
    fn succeeded(&self, ret: &Result<T, E>) -> bool {
        ret.is_ok()
    }
}
impl<T: Serialize + DeserializeOwned, E> StoredValue for ResultKind<T, E> {
    type Value = T;
}
impl<T: Serialize + DeserializeOwned, E> Cacheable<Result<T, E>> for ResultKind<T, E> {
    fn value<'r>(&self, ret: &'r Result<T, E>) -> Option<&'r T> {
        ret.as_ref().ok()
    }
    fn store(&self, ret: &Result<T, E>) -> bool {
        ret.is_ok()
    }
    fn rebuild(&self, value: T) -> Result<T, E> {
        Ok(value)
    }
}

impl<T> ReturnKind<Option<T>> for OptionKind<T> {
    fn succeeded(&self, _: &Option<T>) -> bool {
        true
    }
}
impl<T: Serialize + DeserializeOwned> StoredValue for OptionKind<T> {
    type Value = Option<T>;
}
impl<T: Serialize + DeserializeOwned> Cacheable<Option<T>> for OptionKind<T> {
    fn value<'r>(&self, ret: &'r Option<T>) -> Option<&'r Option<T>> {
        Some(ret)
    }
    fn store(&self, ret: &Option<T>) -> bool {
        ret.is_some() || self.cache_none
    }
    fn rebuild(&self, value: Option<T>) -> Option<T> {
        value
    }
}

impl<R> ReturnKind<R> for ValueKind<R> {
    fn succeeded(&self, _: &R) -> bool {
        true
    }
}
impl<R: Serialize + DeserializeOwned> StoredValue for ValueKind<R> {
    type Value = R;
}
impl<R: Serialize + DeserializeOwned> Cacheable<R> for ValueKind<R> {
    fn value<'r>(&self, ret: &'r R) -> Option<&'r R> {
        Some(ret)
    }
    fn store(&self, _: &R) -> bool {
        true
    }
    fn rebuild(&self, value: R) -> R {
        value
    }
}

/// Pins a future's output type to the kind's return type, so that type errors land on the
/// attribute's return type rather than deep inside the runtime.
#[doc(hidden)]
pub fn check_cacheable<R, K: Cacheable<R>>(kind: K) -> K {
    kind
}

/// A value the near tier can hold and hand out copies of.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be kept in the near tier",
    label = "with `near`, the cached value must be `Clone + Send + Sync + 'static`",
    note = "each near hit returns a clone: derive `Clone`, or return an `Arc<…>` to share one copy"
)]
pub trait NearValue: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> NearValue for T {}

/// Checks (at the return type, where rustc reports it) that `#[cached(near = "…")]` can keep
/// the value in process memory.
#[doc(hidden)]
pub fn check_near<R, K>(kind: K) -> K
where
    K: Cacheable<R>,
    K::Value: NearValue,
{
    kind
}
