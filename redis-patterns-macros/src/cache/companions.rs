//! `<fn>_key(..)`, `<fn>_invalidate(..)` and `<fn>_refresh(..)` next to a #[cached] function;
//! and their signatures alone, with bodies that never run, next to the errors of a function
//! whose attribute is wrong.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{FnArg, Ident, Signature};

use super::expand::Expansion;
use super::validate::Ttl;
use crate::common::codegen::Target;
use crate::common::function::Function;

/// What the three companions are called and take.
struct Signatures {
    ident: Ident,
    key: Ident,
    invalidate: Ident,
    /// The function's own signature, renamed.
    refresh: Signature,
    /// The receiver and parameters the key companions take.
    key_params: TokenStream,
}

impl Signatures {
    fn of(target: &Target, function: &Function) -> Signatures {
        let sig = &function.item.sig;
        // Key companions take the parameters the key uses, and `self` when the key or the
        // client expression needs it.
        let client_idents = target.client_idents();
        let client_uses_self = client_idents.iter().any(|i| i == "self");
        let receiver = sig.inputs.iter().find_map(|a| match a {
            FnArg::Receiver(r) => Some(r),
            FnArg::Typed(_) => None,
        });
        let key_receiver = receiver
            .filter(|_| client_uses_self || target.key.uses("self"))
            .map(|r| quote!(#r,));
        let key_params = function.params.iter().filter_map(|p| {
            let name = p.name.as_ref()?;
            let ty = &p.ty;
            (target.key.uses(&name.to_string()) || client_idents.contains(&name.to_string()))
                .then(|| quote!(#name: #ty))
        });
        let key_params: Vec<TokenStream> = key_params.collect();
        // `_refresh` has the function's own signature and body, and stores what the body
        // returns. It does not call the function by name, which an associated function without
        // `self` could not do from here.
        let mut refresh = sig.clone();
        refresh.ident = format_ident!("{}_refresh", sig.ident);
        Signatures {
            ident: sig.ident.clone(),
            key: format_ident!("{}_key", sig.ident),
            invalidate: format_ident!("{}_invalidate", sig.ident),
            refresh,
            key_params: quote!(#key_receiver #(#key_params),*),
        }
    }
}

/// The companions' signatures with bodies that never run.
pub fn stubs(target: &Target, function: &Function) -> TokenStream {
    let krate = &target.krate;
    let Signatures {
        key,
        invalidate,
        refresh,
        key_params,
        ..
    } = Signatures::of(target, function);
    let vis = &function.item.vis;
    let (generics, where_clause) = (&refresh.generics, &refresh.generics.where_clause);
    let unreachable = quote!(::core::unreachable!());
    quote! {
        #[allow(dead_code, unused_variables, clippy::needless_lifetimes)]
        #vis fn #key #generics (#key_params) -> ::std::string::String #where_clause {
            #unreachable
        }
        #[allow(dead_code, unused_variables, clippy::needless_lifetimes)]
        #vis async fn #invalidate #generics (#key_params)
            -> ::core::result::Result<bool, #krate::Error> #where_clause
        {
            #unreachable
        }
        #[allow(dead_code, unused_variables, unused_mut, clippy::needless_lifetimes)]
        #vis #refresh {
            #unreachable
        }
    }
}

impl Expansion<'_> {
    pub(super) fn companions(&self, ttl: &Ttl, cache_none: Option<Span>) -> TokenStream {
        let target = &self.config.target;
        let krate = &target.krate;
        let Signatures {
            ident,
            key: key_ident,
            invalidate,
            refresh: refresh_sig,
            key_params,
        } = Signatures::of(target, self.function);
        let vis = &self.function.item.vis;
        let (generics, where_clause) = (&refresh_sig.generics, &refresh_sig.generics.where_clause);
        let doc_key = format!(" The Redis key under which [`{ident}`] caches these arguments.");
        let doc_invalidate = format!(
            " Deletes the value [`{ident}`] cached for these arguments; `Ok(true)` if one was stored."
        );
        let doc_refresh = format!(
            " Runs [`{ident}`] without reading the cache, stores the fresh result, and returns it."
        );
        let (client, key, name) = (
            target.client_tokens(),
            target.key_tokens(self.function),
            target.name_tokens(),
        );
        let (body, check, spec, cache_none, tags) = (
            self.function.body_tokens(),
            self.check(),
            self.write_spec(ttl),
            self.cache_none(cache_none),
            self.tags(),
        );
        let refresh = self.with_key(
            &refresh_sig,
            quote! {
                #spec
                #cache_none
                #check
                #tags
                #krate::__private::refresh(
                    __rp_client, &__RP_SPEC, __rp_key, &__rp_tags, __rp_kind, #body,
                ).await
            },
        );
        quote! {
            #[doc = #doc_key]
            #[allow(dead_code, clippy::needless_lifetimes)]
            #vis fn #key_ident #generics (#key_params) -> ::std::string::String #where_clause {
                #client
                #key
                __rp_key
            }

            #[doc = #doc_invalidate]
            #[allow(dead_code, clippy::needless_lifetimes)]
            #vis async fn #invalidate #generics (#key_params)
                -> ::core::result::Result<bool, #krate::Error> #where_clause
            {
                #client
                #key
                static __RP_COUNTERS: #krate::__private::FunctionCounters =
                    #krate::__private::FunctionCounters::new(#name);
                #krate::__private::invalidate(__rp_client, &__RP_COUNTERS, __rp_key).await
            }

            #[doc = #doc_refresh]
            #[allow(dead_code, clippy::needless_lifetimes)]
            #refresh
        }
    }
}
