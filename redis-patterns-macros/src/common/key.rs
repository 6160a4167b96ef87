//! The key an attribute works on: a template the user wrote, or the default key built from the
//! function's path; and the check that every placeholder names a parameter.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::{Ident, ItemFn, LitStr};

use crate::common::errors::{Errors, did_you_mean, list};
use crate::common::function::Function;
use crate::common::template::{self, Segment};

/// The key of the annotated function: its segments, where they came from, and whether the
/// template was written by the user.
pub struct Key {
    pub segments: Vec<Segment>,
    /// Span of the user's key literal, or the attribute for a default key.
    pub span: Span,
    pub explicit: bool,
    /// A default key of a method: it starts with the `Self` type instead of the module path.
    pub self_type: bool,
    /// False when the template has errors (already reported): its placeholders are unknown.
    pub valid: bool,
}

impl Key {
    /// The default key of `func`: its path, then `placeholders`. The path is the module's
    /// (filled in by `module_path!()` at the call site), or for a method the `Self` type's
    /// (`type_name::<Self>()` at run time: an attribute cannot see the `impl` it is in), so
    /// that `Users::name` and `Orders::name` in one module have different keys.
    pub fn default_for(func: &ItemFn, placeholders: &[&Ident]) -> Key {
        let mut segments = vec![Segment::Literal(format!("::{}", func.sig.ident))];
        for name in placeholders {
            segments.push(Segment::Literal(":".into()));
            segments.push(Segment::Placeholder(vec![name.to_string()]));
        }
        Key {
            segments,
            span: Span::call_site(),
            explicit: false,
            self_type: names_self(&func.sig),
            valid: true,
        }
    }

    /// A key template the user wrote; its errors are reported at the literal.
    pub fn explicit(lit: &LitStr, errors: &mut Errors) -> Key {
        let (segments, valid) = match template::parse(&lit.value()) {
            Ok(segments) => (segments, true),
            Err(messages) => {
                for m in messages {
                    errors.push(syn::Error::new(lit.span(), m));
                }
                (Vec::new(), false)
            }
        };
        Key {
            segments,
            span: lit.span(),
            explicit: true,
            self_type: false,
            valid,
        }
    }

    /// A required key that is missing (already reported).
    pub fn missing() -> Key {
        Key {
            segments: Vec::new(),
            span: Span::call_site(),
            explicit: true,
            self_type: false,
            valid: false,
        }
    }

    /// Whether a placeholder of the key starts with `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.placeholder_roots().any(|root| root == name)
    }

    /// The parameter (or `self`) each placeholder starts with.
    pub fn placeholder_roots(&self) -> impl Iterator<Item = &String> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder(p) => Some(&p[0]),
            Segment::Literal(_) => None,
        })
    }

    /// Reports placeholders that name no parameter. Returns whether every placeholder names
    /// one, and the parameters suggested instead, which are then not also reported as missing
    /// from the key.
    pub fn check_placeholders(
        &self,
        function: &Function,
        errors: &mut Errors,
    ) -> (bool, Vec<String>) {
        let mut all_known = true;
        let mut suggested = Vec::new();
        let names: Vec<String> = function
            .params
            .iter()
            .filter_map(|p| p.name.as_ref().map(ToString::to_string))
            .chain(function.has_self.then(|| "self".to_owned()))
            .collect();
        for segment in &self.segments {
            let Segment::Placeholder(path) = segment else {
                continue;
            };
            let root = &path[0];
            if names.iter().any(|n| n == root) {
                continue;
            }
            all_known = false;
            let message = if root == "self" {
                format!(
                    "placeholder `<{}>` needs a method with a `self` receiver; in a free \
                     function, take the value as a parameter",
                    path.join(".")
                )
            } else {
                let suggestion = did_you_mean(root, &names);
                suggested.extend(suggestion.clone());
                let hint = suggestion
                    .map(|s| format!("; did you mean `<{s}>`?"))
                    .unwrap_or_else(|| {
                        if names.is_empty() {
                            "; the function has no parameters".to_owned()
                        } else {
                            format!("; parameters are {}", list(&names))
                        }
                    });
                format!(
                    "no parameter named `{root}` for placeholder `<{}>`{hint}",
                    path.join(".")
                )
            };
            errors.push(syn::Error::new(self.span, message));
        }
        (all_known, suggested)
    }
}

/// Whether `sig` has a `self` receiver or names `Self`: then it is in an `impl` or a trait.
/// (An associated function that does neither cannot be told from a free function; a `self`
/// that is not the receiver, as in `self::Type`, says nothing.)
fn names_self(sig: &syn::Signature) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(i) => i == "Self",
            TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    sig.receiver().is_some() || walk(quote!(#sig))
}
