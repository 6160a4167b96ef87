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

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Speed {
        Slow,
        Fast,
    }

    impl Mode for Speed {
        const WHAT: &'static str = "speed";
        const VALUES: &'static [(&'static str, Self)] =
            &[("slow", Speed::Slow), ("fast", Speed::Fast)];
        const EXAMPLE: &'static str = "fast";
    }

    fn parse_speed(tokens: proc_macro2::TokenStream) -> (Option<Speed>, String) {
        let meta: Meta = syn::parse2(tokens).unwrap();
        let mut errors = Errors::default();
        let speed = parse::<Speed>(&meta, &mut errors);
        (speed, errors.with_item(&quote!()).to_string())
    }

    #[test]
    fn a_listed_value_chooses_its_mode() {
        assert_eq!(parse_speed(quote!(speed = "fast")).0, Some(Speed::Fast));
        assert_eq!(Speed::Slow.written(), "slow");
    }

    #[test]
    fn another_value_is_reported_with_the_closest_and_the_list() {
        let (speed, message) = parse_speed(quote!(speed = "fats"));
        assert_eq!(speed, None);
        assert!(
            message
                .contains("no speed `fats` (did you mean `fast`?); expected one of `slow`, `fast`"),
            "{message}"
        );
        let (_, message) = parse_speed(quote!(speed = 3));
        assert!(message.contains("e.g. `speed = \\\"fast\\\"`"), "{message}");
    }
}
