//! `#[rate_limited]`'s code: the function keeps its signature and attributes; its body builds
//! one check per limit, asks the runtime's `rate_limited` to admit the call under all of them,
//! and returns the denial or runs the original body as an `async move` block.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Algorithm, OnError};
use super::validate::Config;
use crate::common::codegen::InCrate;
use crate::common::function::Function;

/// `<crate>::__private::RateAlgorithm::…`.
impl ToTokens for InCrate<'_, Algorithm> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let krate = self.krate;
        let variant = match self.value {
            Algorithm::SlidingWindow => quote!(SlidingWindow),
            Algorithm::FixedWindow => quote!(FixedWindow),
            Algorithm::SlidingWindowCounter => quote!(SlidingWindowCounter),
            Algorithm::TokenBucket => quote!(TokenBucket),
            Algorithm::Gcra => quote!(Gcra),
        };
        tokens.extend(quote!(#krate::__private::RateAlgorithm::#variant));
    }
}

/// `<crate>::__private::RateOnError::…`.
impl ToTokens for InCrate<'_, OnError> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let krate = self.krate;
        tokens.extend(match self.value {
            OnError::Allow => quote!(#krate::__private::RateOnError::Allow),
            OnError::Deny => quote!(#krate::__private::RateOnError::Deny),
        });
    }
}

pub fn expand(config: &Config, function: &Function) -> TokenStream {
    let krate = &config.krate;
    let mut setup = Vec::new();
    let mut checks = Vec::new();
    for (i, l) in config.limits.iter().enumerate() {
        let client = l.target.client_tokens();
        let key = l.target.key_tokens(function);
        let name = l.target.name_tokens();
        let algorithm = krate.with(&l.algorithm);
        let window = l.window.0;
        let burst = match l.burst {
            Some(b) => quote!(::core::option::Option::Some(#b)),
            None => quote!(::core::option::Option::None),
        };
        let on_error = krate.with(&l.on_error);
        // `u64` located at the user's expression, so a wrong type is reported there, but
        // resolved at the call site, so the binding is found even when the expression comes
        // from a `macro_rules!` fragment with other hygiene.
        let at = |e: &syn::Expr| e.span().resolved_at(Span::call_site());
        let limit = {
            let (span, e) = (at(&l.limit), &l.limit);
            quote_spanned!(span=> let __rp_limit: u64 = #e;)
        };
        let cost = match &l.cost {
            Some(e) => {
                let span = at(e);
                quote_spanned!(span=> let __rp_cost: u64 = #e;)
            }
            None => quote!(let __rp_cost: u64 = 1;),
        };
        let spec = format_ident!("__RP_RATE_{}", i);
        let check = format_ident!("__rp_check_{}", i);
        setup.push(quote! {
            #client
            #key
            static #spec: #krate::__private::RateSpec = #krate::__private::RateSpec::new(
                #name,
                #algorithm,
                #window,
                #burst,
                #on_error,
            );
            #limit
            #cost
            let #check = #krate::__private::RateCheck::new(
                __rp_client, &#spec, __rp_key, __rp_limit, __rp_cost,
            );
        });
        checks.push(check);
    }
    let ret = function.ret_tokens();
    let denied = quote_spanned! {function.ret_span()=>
        <#ret as #krate::__private::RateLimitedReturn>::rate_limited(__rp_denied)
    };
    let body = function.body_tokens();
    let syn::ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#setup)*
            if let ::core::result::Result::Err(__rp_denied) =
                #krate::__private::rate_limited(&[#(#checks),*]).await
            {
                return #denied;
            }
            #body.await
        }
    }
}
