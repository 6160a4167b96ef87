//! Modes written as strings (`stampede = "lock"`, `algorithm = "gcra"`): each is an enum that
//! lists the values it accepts, so that any other value is reported with the valid ones.

use syn::{LitStr, Meta};

use crate::common::errors::{Errors, did_you_mean, list};
use crate::common::literal;

pub trait Mode: Copy + PartialEq + 'static {
    /// What the option chooses, as messages name it: "stampede mode".
    const WHAT: &'static str;
    /// The values as written in the attribute, and the modes they choose.
    const VALUES: &'static [(&'static str, Self)];
    /// A value to show in the message for an option that is not a string.
    const EXAMPLE: &'static str;

    /// The mode as written in the attribute.
    fn written(self) -> &'static str {
        Self::VALUES
            .iter()
            .find_map(|(name, mode)| (*mode == self).then_some(*name))
            .expect("every mode is listed in VALUES")
    }

    /// The valid values as the message for another value lists them.
    fn expected() -> String {
        format!("one of {}", list(Self::VALUES.iter().map(|(name, _)| name)))
    }
}

/// The mode chosen by the string option `meta`; any other value is reported at the literal,
/// with the closest valid one and the list.
pub fn parse<M: Mode>(meta: &Meta, errors: &mut Errors) -> Option<M> {
    let lit: LitStr = literal::string(meta, errors, &format!("\"{}\"", M::EXAMPLE))?;
    let value = lit.value();
    if let Some((_, mode)) = M::VALUES.iter().find(|(name, _)| *name == value) {
        return Some(*mode);
    }
    let hint = did_you_mean(&value, M::VALUES.iter().map(|(name, _)| name))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    errors.push(syn::Error::new(
        lit.span(),
        format!("no {} `{value}`{hint}; expected {}", M::WHAT, M::expected()),
    ));
    None
}
