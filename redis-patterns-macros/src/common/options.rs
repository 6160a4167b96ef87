//! An attribute's options (`name = value`, `name(…)` or `name`) read one by one: a name the
//! attribute does not know is reported with the closest known one, a repeated one as such.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::{self, Punctuated};
use syn::{Meta, Token};

use crate::common::errors::{Errors, did_you_mean, list};

pub struct Options {
    /// False after a syntax error: the options after it are unknown, so none is reported
    /// missing.
    pub complete: bool,
    metas: punctuated::IntoIter<Meta>,
    attribute: &'static str,
    known: &'static [&'static str],
    /// Another attribute and its options: one of them given here gets a message naming it.
    elsewhere: Option<(&'static str, &'static [&'static str])>,
    seen: Vec<String>,
}

impl Options {
    /// The options in `tokens`; a syntax error is reported and leaves none.
    pub fn parse(
        tokens: TokenStream,
        attribute: &'static str,
        known: &'static [&'static str],
        errors: &mut Errors,
    ) -> Options {
        let (metas, complete) = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)
        {
            Ok(metas) => (metas, true),
            Err(e) => {
                errors.push(e);
                (Punctuated::new(), false)
            }
        };
        Options {
            complete,
            metas: metas.into_iter(),
            attribute,
            known,
            elsewhere: None,
            seen: Vec::new(),
        }
    }

    /// Options of `attribute` (`options`) given here are reported as belonging to it.
    pub fn belonging_to(
        mut self,
        attribute: &'static str,
        options: &'static [&'static str],
    ) -> Options {
        self.elsewhere = Some((attribute, options));
        self
    }

    /// The next option that is known and not given before, with its name; the others are
    /// reported as they are read.
    pub fn next(&mut self, errors: &mut Errors) -> Option<(String, Meta)> {
        while let Some(meta) = self.metas.next() {
            let name = name_of(meta.path());
            if !self.known.contains(&name.as_str()) {
                errors.push(syn::Error::new_spanned(meta.path(), self.unknown(&name)));
            } else if self.seen.contains(&name) {
                errors.push(syn::Error::new_spanned(
                    meta.path(),
                    format!("`{name}` is given twice; keep one"),
                ));
            } else {
                self.seen.push(name.clone());
                return Some((name, meta));
            }
        }
        None
    }

    /// Every valid option, after reporting every unknown or repeated one.
    pub fn all(mut self, errors: &mut Errors) -> Vec<(String, Meta)> {
        std::iter::from_fn(|| self.next(errors)).collect()
    }

    fn unknown(&self, name: &str) -> String {
        let (attribute, known) = (self.attribute, self.known);
        match self.elsewhere {
            Some((other, options)) if options.contains(&name) => {
                format!(
                    "`{name}` is an option of #[{other}], not of #[{attribute}], which accepts {}",
                    list(known)
                )
            }
            _ => {
                let hint = did_you_mean(name, known.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("; expected one of {}", list(known)));
                format!("unknown option `{name}` for #[{attribute}]{hint}")
            }
        }
    }
}

fn name_of(path: &syn::Path) -> String {
    path.get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| path.to_token_stream().to_string())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    const KNOWN: &[&str] = &["key", "ttl", "stampede"];

    fn read(tokens: TokenStream) -> (Vec<String>, String) {
        let mut errors = Errors::default();
        let names = Options::parse(tokens, "cache_put", KNOWN, &mut errors)
            .belonging_to("cached", &["beta"])
            .all(&mut errors)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        (names, errors.with_item(&quote!()).to_string())
    }

    #[test]
    fn known_options_are_read_in_order() {
        let (names, errors) = read(quote!(ttl = 1, key = "a", stampede = "lock"));
        assert_eq!(names, ["ttl", "key", "stampede"]);
        assert!(errors.is_empty(), "{errors}");
    }

    #[test]
    fn unknown_repeated_and_foreign_options_are_reported() {
        let (names, errors) = read(quote!(ttl = 1, tll = 2, ttl = 3, beta = 1, expire = 4));
        assert_eq!(names, ["ttl"]);
        assert!(errors.contains("unknown option `tll` for #[cache_put]; did you mean `ttl`?"));
        assert!(errors.contains("`ttl` is given twice; keep one"));
        assert!(errors.contains("`beta` is an option of #[cached], not of"));
        assert!(errors.contains("expected one of `key`, `ttl`, `stampede`"));
    }

    #[test]
    fn a_syntax_error_leaves_the_options_incomplete() {
        let mut errors = Errors::default();
        let options = Options::parse(quote!(key = "a" ttl = 1), "cached", KNOWN, &mut errors);
        assert!(!options.complete);
        assert!(!errors.is_empty());
    }
}
