//! The annotated function: its parameters, the checks every attribute makes on it, and its
//! body and return type as generated code uses them.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use crate::common::errors::Errors;

/// A parameter of the annotated function.
pub struct Param {
    /// `None` for a pattern that is not a plain name (`(a, b): (u8, u8)`).
    pub name: Option<Ident>,
    pub pat: Pat,
    pub ty: Type,
}

pub struct Function {
    pub item: ItemFn,
    /// Whether the function has a `self` receiver.
    pub has_self: bool,
    /// The parameters other than `self`.
    pub params: Vec<Param>,
}

impl Function {
    /// Parses the annotated item as a function, or returns the error to emit (with the item).
    pub fn parse(item: TokenStream, attribute: &str) -> Result<ItemFn, TokenStream> {
        syn::parse2(item.clone()).map_err(|e| {
            let mut err = syn::Error::new(
                e.span(),
                format!("#[{attribute}] applies to `async fn` items"),
            )
            .to_compile_error();
            err.extend(item);
            err
        })
    }

    pub fn new(item: ItemFn) -> Function {
        let has_self = item.sig.receiver().is_some();
        let params = item
            .sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(t) => Some(Param {
                    name: match &*t.pat {
                        Pat::Ident(p) if p.subpat.is_none() => Some(p.ident.clone()),
                        _ => None,
                    },
                    pat: (*t.pat).clone(),
                    ty: (*t.ty).clone(),
                }),
                FnArg::Receiver(_) => None,
            })
            .collect();
        Function {
            item,
            has_self,
            params,
        }
    }

    /// The span of the parameter `name` (or of the `self` receiver), whose resolution a
    /// placeholder for it takes; the call site's when there is none (already reported).
    pub fn resolve(&self, name: &str) -> Span {
        let param = self.params.iter().filter_map(|p| p.name.as_ref());
        match self.item.sig.receiver() {
            Some(receiver) if name == "self" => receiver.self_token.span,
            _ => param
                .into_iter()
                .find(|p| *p == name)
                .map_or_else(Span::call_site, Ident::span),
        }
    }

    /// Reports a function that is not `async`, at its `fn` token; `why` says what the
    /// attribute does asynchronously.
    pub fn require_async(&self, attribute: &str, why: &str, errors: &mut Errors) {
        if self.item.sig.asyncness.is_none() {
            errors.push(syn::Error::new_spanned(
                self.item.sig.fn_token,
                format!("#[{attribute}] requires an `async fn`: {why}"),
            ));
        }
    }

    /// Reports a missing return type at the name (when `missing` says why one is needed) and
    /// an `impl Trait` one at the type (`impl_trait` says why it must be concrete).
    pub fn check_return(&self, missing: Option<&str>, impl_trait: &str, errors: &mut Errors) {
        let sig = &self.item.sig;
        if let (Some(message), ReturnType::Default) = (missing, &sig.output) {
            errors.push(syn::Error::new_spanned(&sig.ident, message));
        }
        if let Some(ty) = self.impl_trait_return() {
            errors.push(syn::Error::new_spanned(ty, impl_trait));
        }
    }

    /// The declared return type when it is `impl Trait`.
    pub fn impl_trait_return(&self) -> Option<&Type> {
        match &self.item.sig.output {
            ReturnType::Type(_, ty) if matches!(**ty, Type::ImplTrait(_)) => Some(ty),
            _ => None,
        }
    }

    /// The declared return type (`()` when there is none).
    pub fn ret_tokens(&self) -> TokenStream {
        match &self.item.sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        }
    }

    /// Where errors about the return type go. Without one, the name, resolved at the call site
    /// like the rest of the generated code, so that the bindings made there are found also
    /// when the name comes from a `macro_rules!` fragment (no error can land there: `()` has
    /// every bound the expansions ask for).
    pub fn ret_span(&self) -> Span {
        match &self.item.sig.output {
            ReturnType::Default => self.item.sig.ident.span().resolved_at(Span::call_site()),
            ReturnType::Type(_, ty) => ty.span(),
        }
    }

    /// The original body as an `async move` block whose output type is pinned to the return
    /// type, so `?` and `return` keep their meaning.
    pub fn body_tokens(&self) -> TokenStream {
        let ret = self.ret_tokens();
        let stmts = &self.item.block.stmts;
        quote! {
            async move {
                #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
                if false {
                    let __rp_unreachable: #ret = loop {};
                    return __rp_unreachable;
                }
                #(#stmts)*
            }
        }
    }
}
