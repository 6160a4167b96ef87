//! `#[counted]`'s code: the function keeps its signature and attributes; its body hands the
//! original body, as an `async move` block, to the runtime's `counted`, which counts the call
//! alongside it (or before it, with `on_error = "fail"`).

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};

use super::parse::OnError;
use super::validate::Config;
use crate::common::codegen::InCrate;
use crate::common::function::Function;

/// `<crate>::__private::CountOnError::…`.
impl ToTokens for InCrate<'_, OnError> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let krate = self.krate;
        tokens.extend(match self.value {
            OnError::Ignore => quote!(#krate::__private::CountOnError::Ignore),
            OnError::Fail => quote!(#krate::__private::CountOnError::Fail),
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
    let body = function.body_tokens();
    // Only `on_error = "fail"` needs a `Result` to return the error in, checked where the
    // return type is written.
    let from_error = match config.on_error {
        OnError::Fail => {
            let ret = function.ret_tokens();
            quote_spanned! {function.ret_span()=>
                ::core::option::Option::Some(#krate::__private::check_counted_return::<#ret>())
            }
        }
        OnError::Ignore => quote!(::core::option::Option::None),
    };
    let window = config.window.0;
    let keep = config.keep;
    let on_error = krate.with(&config.on_error);
    let syn::ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    quote! {
        #(#attrs)*
        #vis #sig {
            #client
            #key
            static __RP_COUNT: #krate::__private::CountSpec = #krate::__private::CountSpec::new(
                #name,
                #krate::__private::Duration::from_millis(#window),
                #keep,
                #on_error,
            );
            #krate::__private::counted(__rp_client, &__RP_COUNT, __rp_key, #from_error, #body)
                .await
        }
    }
}
