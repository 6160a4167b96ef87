//! Durations written in attributes: `300` (seconds), `"500ms"`, `"10s"`, `"5m"`, `"24h"`,
//! `"7d"`, or combinations such as `"1h30m"`; and percentages such as `"10%"`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use crate::common::codegen::InCrate;

/// A validated duration, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

/// `<crate>::__private::Duration::from_millis(ms)`.
impl ToTokens for InCrate<'_, Millis> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let (krate, ms) = (self.krate, self.value.0);
        tokens.extend(quote!(#krate::__private::Duration::from_millis(#ms)));
    }
}

/// Milliseconds in a duration string; errors say what is accepted.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let hint = "expected a duration such as `\"500ms\"`, `\"10s\"`, `\"5m\"`, `\"24h\"`, `\"7d\"` or `\"1h30m\"`";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    if text.contains(char::is_whitespace) {
        return Err(format!(
            "`{text}` contains a space; write durations without spaces, such as `\"500ms\"`, \
             `\"5m\"` or `\"1h30m\"`"
        ));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; {hint}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{text}` needs a unit; {hint}")),
            other => return Err(format!("unknown unit `{other}` in `{text}`; {hint}")),
        };
        total = number
            .checked_mul(factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    Ok(total)
}

/// Thousandths in a percentage such as `"10%"` or `"2.5%"`, from 0 to 100 %.
pub fn parse_permille(text: &str) -> Result<u32, String> {
    let hint = "expected a percentage such as `\"10%\"`";
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("`{text}` is not a percentage; {hint}"))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage; {hint}"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("`{text}` must be between 0% and 100%"));
    }
    Ok((value * 10.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("10s"), Ok(10_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("24h"), Ok(86_400_000));
        assert_eq!(parse_millis("7d"), Ok(604_800_000));
        assert_eq!(parse_millis("1h30m"), Ok(5_400_000));
        assert_eq!(parse_millis("0s"), Ok(0));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "5 m",
            "-5s",
            "1.5s",
            "99999999999999999999d",
        ] {
            assert!(parse_millis(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_permille("10%"), Ok(100));
        assert_eq!(parse_permille("2.5%"), Ok(25));
        assert!(parse_permille("10").is_err());
        assert!(parse_permille("120%").is_err());
    }
}
