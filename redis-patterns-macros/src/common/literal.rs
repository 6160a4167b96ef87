//! Option values, read as what each option takes (a string, a duration, a count, a flag, an
//! expression). Every reader looks through the invisible group a `macro_rules!` fragment
//! (`$ttl:literal`, `$key:expr`) puts around a value, so a value written through a macro is
//! read like one written in place.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta};

use crate::common::duration::{self, Millis};
use crate::common::errors::Errors;

/// `expr` without the invisible groups `macro_rules!` fragments put around it.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(g) => ungroup(&g.expr),
        other => other,
    }
}

fn name(meta: &Meta) -> String {
    meta.path().to_token_stream().to_string()
}

/// The value of `name = value`.
pub fn value<'m>(meta: &'m Meta, errors: &mut Errors) -> Option<&'m Expr> {
    match meta {
        Meta::NameValue(nv) => Some(ungroup(&nv.value)),
        other => {
            errors.push(syn::Error::new_spanned(
                other,
                format!("write `{} = …`", name(other)),
            ));
            None
        }
    }
}

/// A string literal; `example` (with its quotes) shows one in the message.
pub fn string(meta: &Meta, errors: &mut Errors, example: &str) -> Option<LitStr> {
    match value(meta, errors)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            let name = name(meta);
            errors.push(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a string literal, e.g. `{name} = {example}`"),
            ));
            None
        }
    }
}

/// Whole seconds (`300`) or a duration string (`"5m"`); zero only where `zero_ok`.
pub fn duration(meta: &Meta, errors: &mut Errors, zero_ok: bool) -> Option<Millis> {
    let name = name(meta);
    let expr = value(meta, errors)?;
    let span = expr.span();
    let parsed = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i
            .base10_parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|s| s.checked_mul(1000).ok_or_else(|| "too large".to_owned())),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let text = s.value();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                Err(format!(
                    "`\"{text}\"` has no unit; write `{name} = {text}` for seconds, or a \
                     duration string such as `\"{text}s\"`"
                ))
            } else {
                duration::parse_millis(&text)
            }
        }
        _ => {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`{name}` takes whole seconds (`300`) or a duration string (`\"5m\"`, \
                     `\"1500ms\"`)"
                ),
            ));
            return None;
        }
    };
    match parsed {
        Ok(0) if !zero_ok => {
            let example = if name == "ttl" { "5m" } else { "10s" };
            errors.push(syn::Error::new(
                span,
                format!("`{name}` must be greater than zero, e.g. `{name} = \"{example}\"`"),
            ));
            None
        }
        Ok(ms) => Some(Millis(ms)),
        Err(e) => {
            errors.push(syn::Error::new(span, format!("invalid `{name}`: {e}")));
            None
        }
    }
}

/// A whole number, or (unless `literal_only`) an expression over the parameters. A literal
/// zero is an error unless `zero_ok`.
pub fn count(meta: &Meta, errors: &mut Errors, literal_only: bool, zero_ok: bool) -> Option<Expr> {
    let name = name(meta);
    let expr = value(meta, errors)?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(n), ..
        }) => match n.base10_parse::<u64>() {
            Ok(0) if !zero_ok => {
                errors.push(syn::Error::new_spanned(
                    n,
                    format!("`{name}` must be greater than zero: zero would deny every call"),
                ));
                None
            }
            Ok(_) => Some(expr.clone()),
            Err(e) => {
                errors.push(syn::Error::new_spanned(n, format!("invalid `{name}`: {e}")));
                None
            }
        },
        Expr::Lit(other) => {
            errors.push(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a whole number, e.g. `{name} = 10`"),
            ));
            None
        }
        _ if literal_only => {
            errors.push(syn::Error::new_spanned(
                expr,
                format!("`{name}` takes a whole number, e.g. `{name} = 10`"),
            ));
            None
        }
        _ => Some(expr.clone()),
    }
}

/// A positive finite number such as `1.0` (an integer literal counts); `message` says what it
/// is for.
pub fn positive_number(meta: &Meta, errors: &mut Errors, message: &str) -> Option<f64> {
    let expr = value(meta, errors)?;
    let parsed = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n > 0.0 && n.is_finite() => Some(n),
        _ => {
            errors.push(syn::Error::new_spanned(expr, message));
            None
        }
    }
}

/// `true` or `false`; `message` says what each means.
pub fn boolean(meta: &Meta, errors: &mut Errors, message: &str) -> Option<bool> {
    match value(meta, errors)? {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Some(b.value),
        other => {
            errors.push(syn::Error::new_spanned(other, message));
            None
        }
    }
}

/// A flag written `name` or `name = true` (or `false`): where it is set, if it is. Code
/// generated at that span is resolved at the call site when the value comes from a
/// `macro_rules!` fragment, so that it sees the bindings of the rest of the generated code.
pub fn flag(meta: &Meta, errors: &mut Errors) -> Option<Span> {
    let name = name(meta);
    match meta {
        Meta::Path(p) => Some(p.span()),
        Meta::NameValue(nv) => match ungroup(&nv.value) {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => b.value.then(|| match nv.value {
                Expr::Group(_) => b.span().resolved_at(Span::call_site()),
                _ => b.span(),
            }),
            other => {
                errors.push(syn::Error::new_spanned(
                    other,
                    format!("`{name}` is a flag: write `{name}` or `{name} = true`"),
                ));
                None
            }
        },
        Meta::List(l) => {
            errors.push(syn::Error::new_spanned(
                l,
                format!("`{name}` is a flag: write `{name}`"),
            ));
            None
        }
    }
}

/// `client = <expression>`.
pub fn client(meta: &Meta, errors: &mut Errors) -> Option<Expr> {
    match meta {
        Meta::NameValue(nv) => Some(ungroup(&nv.value).clone()),
        other => {
            errors.push(syn::Error::new_spanned(
                other,
                "write `client = <expression>` giving a `redis_patterns::Client` (or a reference to one)",
            ));
            None
        }
    }
}

/// `crate = "path"`.
pub fn crate_path(meta: &Meta, errors: &mut Errors) -> Option<syn::Path> {
    let lit = string(meta, errors, "\"::redis_patterns\"")?;
    match lit.parse::<syn::Path>() {
        Ok(path) => Some(path),
        Err(_) => {
            errors.push(syn::Error::new(
                lit.span(),
                "`crate` takes a path such as `\"::my_reexport::redis_patterns\"`",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::{Delimiter, Group, TokenStream};
    use quote::quote;
    use syn::Token;
    use syn::parse::Parser;
    use syn::punctuated::Punctuated;

    use super::*;

    /// `name = value` with the value wrapped like a `macro_rules!` fragment, read as in an
    /// attribute (followed by another option: a last value is read through the group anyway).
    fn fragment(name: TokenStream, value: TokenStream) -> Meta {
        let group = Group::new(Delimiter::None, value);
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated
            .parse2(quote!(#name = #group, other = 1))
            .unwrap();
        let meta = metas.into_iter().next().unwrap();
        assert!(matches!(&meta, Meta::NameValue(nv) if matches!(nv.value, Expr::Group(_))));
        meta
    }

    fn messages(errors: Errors) -> String {
        errors.with_item(&quote!()).to_string()
    }

    #[test]
    fn values_in_fragments_read_like_values_in_place() {
        let mut errors = Errors::default();
        let ttl = duration(&fragment(quote!(ttl), quote!("5m")), &mut errors, false);
        assert_eq!(ttl, Some(Millis(300_000)));
        let seconds = duration(&fragment(quote!(wait), quote!(2)), &mut errors, true);
        assert_eq!(seconds, Some(Millis(2_000)));
        let key = string(&fragment(quote!(key), quote!("a:<id>")), &mut errors, "");
        assert_eq!(key.map(|k| k.value()).as_deref(), Some("a:<id>"));
        let extend = boolean(&fragment(quote!(extend), quote!(false)), &mut errors, "");
        assert_eq!(extend, Some(false));
        assert!(flag(&fragment(quote!(cache_none), quote!(true)), &mut errors).is_some());
        let beta = positive_number(&fragment(quote!(beta), quote!(1.5)), &mut errors, "");
        assert_eq!(beta, Some(1.5));
        let path = crate_path(&fragment(quote!(crate), quote!("::x")), &mut errors);
        assert!(path.is_some());
        let limit = count(
            &fragment(quote!(limit), quote!(5)),
            &mut errors,
            false,
            false,
        );
        assert!(matches!(limit, Some(Expr::Lit(_))));
        assert!(errors.is_empty(), "{}", messages(errors));
    }

    #[test]
    fn a_zero_count_is_reported_unless_allowed() {
        let meta: Meta = syn::parse2(quote!(limit = 0)).unwrap();
        let mut errors = Errors::default();
        assert!(count(&meta, &mut errors, false, true).is_some());
        assert!(errors.is_empty());
        assert!(count(&meta, &mut errors, false, false).is_none());
        assert!(messages(errors).contains("`limit` must be greater than zero"));
    }

    #[test]
    fn a_string_without_a_unit_is_reported_with_the_fix() {
        let meta: Meta = syn::parse2(quote!(ttl = "300")).unwrap();
        let mut errors = Errors::default();
        assert_eq!(duration(&meta, &mut errors, false), None);
        assert!(messages(errors).contains("write `ttl = 300` for seconds"));
    }
}
