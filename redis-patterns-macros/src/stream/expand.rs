//! `#[stream_consumer]`'s code: a `const` of the function's name holding the consumer
//! (`redis_patterns::stream::Consumer<Event>`), built from the options and a wrapper of the
//! function, which moves into the constant's initializer as it was written. The event type and
//! the return type are checked where they are written.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::validate::Config;
use crate::common::function::Function;

pub fn expand(config: &Config, function: &Function) -> TokenStream {
    let krate = &config.krate;
    let syn::ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    let name = &sig.ident;
    // Validation made sure there is an event parameter.
    let Some(event) = function.params.first() else {
        return TokenStream::new();
    };
    let event_ty = &event.ty;
    let check_event = quote_spanned! {event_ty.span()=>
        #krate::__private::check_event::<#event_ty>()
    };
    let delivery = match function.params.get(1) {
        Some(param) if config.takes_delivery => {
            let span = param.ty.span();
            quote_spanned!(span=> , __rp_delivery)
        }
        _ => quote!(),
    };
    let outcome = quote_spanned! {function.ret_span()=>
        #krate::__private::HandlerReturn::outcome(#name(__rp_event #delivery).await)
    };
    let (docs, others): (Vec<_>, Vec<_>) = attrs.iter().partition(|a| a.path().is_ident("doc"));
    let mut handler = function.item.clone();
    handler.vis = syn::Visibility::Inherited;
    handler.attrs = others.into_iter().cloned().collect();
    let (stream, group) = (&config.stream, &config.group);
    let (concurrency, max_deliveries, batch) =
        (config.concurrency, config.max_deliveries, config.batch);
    let (visibility, retry_backoff) = (
        krate.with(&config.visibility),
        krate.with(&config.retry_backoff),
    );
    quote! {
        #(#docs)*
        #[allow(non_upper_case_globals)]
        #vis const #name: #krate::__private::Consumer<#event_ty> = {
            #handler
            fn __rp_handler(
                __rp_event: #event_ty,
                __rp_delivery: #krate::__private::Delivery,
            ) -> #krate::__private::HandlerFuture {
                let _ = &__rp_delivery;
                ::std::boxed::Box::pin(async move { #outcome })
            }
            #krate::__private::Consumer::__from_attribute(
                #krate::__private::ConsumerSpec {
                    stream: #stream,
                    group: #group,
                    concurrency: #concurrency as usize,
                    max_deliveries: #max_deliveries,
                    visibility: #visibility,
                    batch: #batch as usize,
                    retry_backoff: #retry_backoff,
                },
                __rp_handler,
            )
        };
        const _: () = #check_event;
    }
}
