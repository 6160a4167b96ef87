//! The code of `#[stream_consumer]` and `#[job]`: a `const` of the function's name holding
//! the consumer (`redis_patterns::stream::Consumer<Event>`) or worker
//! (`redis_patterns::queue::Worker<Job>`), built from the options and a wrapper of the
//! function, which moves into the constant's initializer as it was written. The message type
//! and the return type are checked where they are written.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::validate::{Config, Source};
use crate::common::function::Function;

pub fn expand(config: &Config, function: &Function) -> TokenStream {
    let krate = &config.krate;
    let syn::ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    let name = &sig.ident;
    // Validation made sure there is a message parameter.
    let Some(message) = function.params.first() else {
        return TokenStream::new();
    };
    let message_ty = &message.ty;
    let check_message = quote_spanned! {message_ty.span()=>
        #krate::__private::check_event::<#message_ty>()
    };
    let context = match function.params.get(1) {
        Some(param) if config.takes_context => {
            let span = param.ty.span();
            quote_spanned!(span=> , __rp_context)
        }
        _ => quote!(),
    };
    let outcome = quote_spanned! {function.ret_span()=>
        #krate::__private::HandlerReturn::outcome(#name(__rp_message #context).await)
    };
    let (docs, others): (Vec<_>, Vec<_>) = attrs.iter().partition(|a| a.path().is_ident("doc"));
    let mut handler = function.item.clone();
    handler.vis = syn::Visibility::Inherited;
    handler.attrs = others.into_iter().cloned().collect();
    let (concurrency, max_deliveries, batch) =
        (config.concurrency, config.max_deliveries, config.batch);
    let (visibility, retry_backoff) = (
        krate.with(&config.visibility),
        krate.with(&config.retry_backoff),
    );
    let (runner, context_ty, built) = match &config.source {
        Source::Stream { stream, group } => (
            quote!(#krate::__private::Consumer<#message_ty>),
            quote!(#krate::__private::Delivery),
            quote! {
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
            },
        ),
        Source::Queue { queue } => (
            quote!(#krate::__private::Worker<#message_ty>),
            quote!(#krate::__private::Job),
            quote! {
                #krate::__private::Worker::__from_attribute(
                    #krate::__private::WorkerSpec {
                        queue: #queue,
                        concurrency: #concurrency as usize,
                        max_attempts: #max_deliveries,
                        visibility: #visibility,
                        retry_backoff: #retry_backoff,
                    },
                    __rp_handler,
                )
            },
        ),
    };
    quote! {
        #(#docs)*
        #[allow(non_upper_case_globals)]
        #vis const #name: #runner = {
            #handler
            fn __rp_handler(
                __rp_message: #message_ty,
                __rp_context: #context_ty,
            ) -> #krate::__private::HandlerFuture {
                let _ = &__rp_context;
                ::std::boxed::Box::pin(async move { #outcome })
            }
            #built
        };
        const _: () = #check_message;
    }
}
