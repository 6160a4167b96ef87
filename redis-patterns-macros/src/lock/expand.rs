//! `#[with_lock]`'s code: the function keeps its signature and attributes; its body takes the
//! lock through the runtime's `with_lock`, which runs the original body as an `async move`
//! block while it holds it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};

use super::parse::OnLost;
use super::validate::{Config, Lease};
use crate::common::codegen::InCrate;
use crate::common::function::Function;

/// `<crate>::__private::OnLost::…`.
impl ToTokens for InCrate<'_, OnLost> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let krate = self.krate;
        tokens.extend(match self.value {
            OnLost::Abort => quote!(#krate::__private::OnLost::Abort),
            OnLost::Continue => quote!(#krate::__private::OnLost::Continue),
        });
    }
}

/// `<crate>::__private::Lease::…`.
impl ToTokens for InCrate<'_, Lease> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let krate = self.krate;
        tokens.extend(match self.value {
            Lease::Renewed => quote!(#krate::__private::Lease::Renewed),
            Lease::Fixed => quote!(#krate::__private::Lease::Fixed),
        });
    }
}

pub fn expand(config: &Config, function: &Function) -> TokenStream {
    let target = &config.target;
    let krate = &target.krate;
    let (client, key, name) = (
        target.client_tokens(),
        target.key_tokens(function),
        target.name_tokens(),
    );
    let (body, ret) = (function.body_tokens(), function.ret_tokens());
    let check = quote_spanned! {function.ret_span()=>
        let __rp_from_lock_error = #krate::__private::check_lock_return::<#ret>();
    };
    let (ttl, wait, retry) = (
        krate.with(&config.ttl),
        krate.with(&config.wait),
        krate.with(&config.retry),
    );
    let (lease, on_lost) = (krate.with(&config.lease), krate.with(&config.on_lost));
    let fenced = config.fenced;
    let syn::ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    quote! {
        #(#attrs)*
        #vis #sig {
            #check
            #client
            #key
            static __RP_LOCK: #krate::__private::LockSpec = #krate::__private::LockSpec::new(
                #name, #ttl, #wait, #retry, #lease, #on_lost, #fenced,
            );
            #krate::__private::with_lock(__rp_client, &__RP_LOCK, __rp_key, __rp_from_lock_error, #body)
                .await
        }
    }
}
