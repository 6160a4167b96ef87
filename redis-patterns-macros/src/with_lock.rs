//! `#[with_lock(key = "payment:<order_id>", ttl = "10s", wait = "2s")]`: runs the function
//! while holding a distributed lock.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Expr, ExprLit, Lit, ReturnType, Type};

use crate::attr;
use crate::errors::Errors;
use crate::expand::{self, Key};

const OPTIONS: &[&str] = &[
    "key", "ttl", "wait", "retry", "extend", "on_lost", "client", "crate",
];
const ON_LOST: &str = "`abort`, `continue`";

struct Args {
    key: Option<syn::LitStr>,
    ttl_ms: Option<u64>,
    ttl_given: bool,
    wait_ms: u64,
    retry_ms: u64,
    extend: bool,
    continue_on_lost: bool,
    client: Option<Expr>,
    krate: Option<syn::Path>,
}

fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args {
        key: None,
        ttl_ms: None,
        ttl_given: false,
        wait_ms: 0,
        retry_ms: 50,
        extend: true,
        continue_on_lost: false,
        client: None,
        krate: None,
    };
    for (name, meta) in attr::options(tokens, "with_lock", OPTIONS, errors) {
        match name.as_str() {
            "key" => args.key = attr::string(&meta, errors),
            "ttl" => {
                args.ttl_given = true;
                args.ttl_ms = attr::duration_value(&meta, errors, "ttl", false);
            }
            "wait" => {
                if let Some(ms) = attr::duration_value(&meta, errors, "wait", true) {
                    args.wait_ms = ms;
                }
            }
            "retry" => {
                if let Some(ms) = attr::duration_value(&meta, errors, "retry", false) {
                    args.retry_ms = ms;
                }
            }
            "extend" => match attr::value(&meta, errors) {
                Some(Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                })) => args.extend = b.value,
                Some(other) => errors.push(syn::Error::new_spanned(
                    other,
                    "`extend` takes `true` (renew the lease every ttl/3 while the function runs) \
                     or `false`",
                )),
                None => {}
            },
            "on_lost" => {
                if let Some(lit) = attr::string(&meta, errors) {
                    match lit.value().as_str() {
                        "abort" => args.continue_on_lost = false,
                        "continue" => args.continue_on_lost = true,
                        other => errors.push(syn::Error::new(
                            lit.span(),
                            format!("no `on_lost` policy `{other}`; expected one of {ON_LOST}"),
                        )),
                    }
                }
            }
            "client" => args.client = attr::client(meta, errors),
            "crate" => args.krate = attr::crate_path(&meta, errors),
            _ => unreachable!("the option list and the match arms agree"),
        }
    }
    if !args.ttl_given {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[with_lock] needs a `ttl`, e.g. `ttl = \"10s\"`: the lease after which a crashed \
             holder's lock is released (it is renewed while the function runs)",
        ));
    }
    args
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse(args, &mut errors);
    let func = match expand::parse_fn(item, "with_lock") {
        Ok(f) => f,
        Err(tokens) => return tokens,
    };
    let (has_self, params) = expand::params_of(&func);
    // Without a key, one lock for the whole function: at most one call runs at a time.
    let key = match &args.key {
        Some(lit) => expand::explicit_key(lit, &mut errors),
        None => Key::default_for(&func, &[]),
    };
    expand::check_placeholders(&key, &params, has_self, &mut errors);
    if func.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            func.sig.fn_token,
            "#[with_lock] requires an `async fn`: the lock is taken and renewed asynchronously",
        ));
    }
    match &func.sig.output {
        ReturnType::Default => errors.push(syn::Error::new_spanned(
            &func.sig.ident,
            "a #[with_lock] function must return `Result<T, E>` where `E: From<LockError>`, so \
             that a lock it could not take, or lost, is reported: add a return type",
        )),
        ReturnType::Type(_, ty) if matches!(**ty, Type::ImplTrait(_)) => {
            errors.push(syn::Error::new_spanned(
                ty,
                "a #[with_lock] function must return `Result<T, E>` where `E: From<LockError>`, \
                 not `impl Trait`",
            ))
        }
        ReturnType::Type(..) => {}
    }
    if !errors.is_empty() {
        let mut out = errors.into_compile_errors();
        out.extend(quote!(#func));
        return out;
    }

    let krate = args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::redis_patterns));
    let client = expand::client_tokens(&krate, args.client.as_ref());
    let key_tokens = expand::key_tokens(&krate, &key);
    let name = expand::name_tokens(&key);
    let body = expand::body_tokens(&func);
    let ret = expand::ret_tokens(&func);
    let check = quote_spanned! {expand::ret_span(&func)=>
        let __rp_from_lock_error = #krate::__private::check_lock_return::<#ret>();
    };
    let (ttl, wait, retry, extend) = (
        args.ttl_ms.unwrap_or(1),
        args.wait_ms,
        args.retry_ms,
        args.extend,
    );
    let on_lost = if args.continue_on_lost {
        quote!(#krate::__private::OnLost::Continue)
    } else {
        quote!(#krate::__private::OnLost::Abort)
    };
    let syn::ItemFn {
        attrs, vis, sig, ..
    } = &func;
    quote! {
        #(#attrs)*
        #vis #sig {
            #check
            #client
            #key_tokens
            static __RP_LOCK: #krate::__private::LockSpec = #krate::__private::LockSpec {
                name: #name,
                ttl: #krate::__private::Duration::from_millis(#ttl),
                wait: #krate::__private::Duration::from_millis(#wait),
                retry: #krate::__private::Duration::from_millis(#retry),
                extend: #extend,
                on_lost: #on_lost,
            };
            #krate::__private::with_lock(__rp_client, &__RP_LOCK, __rp_key, __rp_from_lock_error, #body)
                .await
        }
    }
}
