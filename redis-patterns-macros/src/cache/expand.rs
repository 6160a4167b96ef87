//! The cache attributes' code: the function keeps its signature and attributes; its body
//! resolves the client, builds the key, selects the return kind and calls the runtime's
//! `cached`, `evict` or `put` with the original body as an `async move` block.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};

use super::parse::CodecMode;
use super::validate::{Action, Config, Stampede, Ttl};
use crate::common::codegen::{InCrate, respan};
use crate::common::duration::Millis;
use crate::common::function::Function;

/// `<crate>::__private::Stampede::…`.
impl ToTokens for InCrate<'_, Stampede> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let krate = self.krate;
        tokens.extend(match *self.value {
            Stampede::None => quote!(#krate::__private::Stampede::None),
            Stampede::Lock {
                lock_ttl,
                lock_wait,
            } => {
                let (lock_ttl, lock_wait) = (krate.with(&lock_ttl), krate.with(&lock_wait));
                quote!(#krate::__private::Stampede::Lock {
                    lock_ttl: #lock_ttl,
                    lock_wait: #lock_wait,
                })
            }
            Stampede::Early { beta } => quote!(#krate::__private::Stampede::Early { beta: #beta }),
        });
    }
}

pub fn expand(config: &Config, function: &Function) -> TokenStream {
    let expansion = Expansion { config, function };
    match &config.action {
        Action::Cached {
            ttl,
            stampede,
            cache_none,
            near,
            timeout,
            revalidate,
        } => {
            let mut out =
                expansion.cached(ttl, stampede, *cache_none, *near, (*timeout, *revalidate));
            out.extend(expansion.companions(ttl, *cache_none));
            out
        }
        Action::Evict => expansion.evict(),
        Action::Put { ttl } => expansion.put(ttl),
    }
}

pub(super) struct Expansion<'a> {
    pub config: &'a Config,
    pub function: &'a Function,
}

impl Expansion<'_> {
    fn cached(
        &self,
        ttl: &Ttl,
        stampede: &Stampede,
        cache_none: Option<Span>,
        near: Option<Millis>,
        (timeout, revalidate): (Option<Millis>, Option<Span>),
    ) -> TokenStream {
        let krate = &self.config.target.krate;
        let name = self.config.target.name_tokens();
        let (codec, entry_options) = (self.codec(ttl), self.entry_options(ttl));
        let timeout = timeout.map(|timeout| {
            let timeout = krate.with(&timeout);
            quote!(.timeout(#timeout))
        });
        // `near`: the spec says how long, a check at the return type asks for `Clone`, and
        // the call goes through the near tier.
        let (near, check_near, entry) = match near {
            Some(near) => {
                let near = krate.with(&near);
                let ret = self.function.ret_tokens();
                (
                    Some(quote!(.near(#near))),
                    Some(quote_spanned! {self.function.ret_span()=>
                        let __rp_kind = #krate::__private::check_near::<#ret, _>(__rp_kind);
                    }),
                    quote!(cached_near),
                )
            }
            None => (None, None, quote!(cached)),
        };
        let (ttl, jitter) = (krate.with(&ttl.ttl), ttl.jitter_permille);
        let stampede = krate.with(stampede);
        let tags = self.tags();
        let (cache_none, check, body) = (
            self.cache_none(cache_none),
            self.check(),
            self.function.body_tokens(),
        );
        // `stale_while_revalidate`: the body may run in a spawned task, which the check at
        // the option asks of it.
        let background = match revalidate {
            Some(span) => {
                let ret = self.function.ret_tokens();
                let krate = respan(quote!(#krate), span);
                quote_spanned! {span=>
                    #krate::__private::check_revalidatable::<#ret, _, _>(
                        #krate::__private::Spawn,
                        &__rp_body,
                        &__rp_kind,
                    )
                }
            }
            None => quote!(#krate::__private::Inline),
        };
        self.wrap(quote! {
            static __RP_SPEC: #krate::__private::CacheSpec =
                #krate::__private::CacheSpec::new(#name, #ttl, #jitter, #stampede)
                    #codec #entry_options #timeout #near;
            #cache_none
            #check
            #check_near
            #tags
            let __rp_body = #body;
            let __rp_background = #background;
            #krate::__private::#entry(
                __rp_client, &__RP_SPEC, __rp_key, &__rp_tags, __rp_kind, __rp_body,
                __rp_background,
            ).await
        })
    }

    fn evict(&self) -> TokenStream {
        let krate = &self.config.target.krate;
        let name = self.config.target.name_tokens();
        let (body, ret) = (self.function.body_tokens(), self.function.ret_tokens());
        self.wrap(quote! {
            let __rp_ret: #ret = #body.await;
            if #krate::__private::ReturnKind::succeeded(&__rp_kind, &__rp_ret) {
                static __RP_COUNTERS: #krate::__private::FunctionCounters =
                    #krate::__private::FunctionCounters::new(#name);
                #krate::__private::evict(__rp_client, &__RP_COUNTERS, __rp_key).await;
            }
            __rp_ret
        })
    }

    fn put(&self, ttl: &Ttl) -> TokenStream {
        let krate = &self.config.target.krate;
        let (body, ret) = (self.function.body_tokens(), self.function.ret_tokens());
        let (check, spec, tags) = (self.check(), self.write_spec(ttl), self.tags());
        self.wrap(quote! {
            #check
            #tags
            let __rp_ret: #ret = #body.await;
            #spec
            #krate::__private::put(
                __rp_client, &__RP_SPEC, __rp_key, &__rp_tags, &__rp_kind, &__rp_ret,
            ).await;
            __rp_ret
        })
    }

    /// The function with its original attributes and signature and a body that resolves the
    /// client, builds the key, selects the return kind, then does `rest`.
    fn wrap(&self, rest: TokenStream) -> TokenStream {
        let attrs = &self.function.item.attrs;
        let with = self.with_key(&self.function.item.sig, rest);
        quote!(#(#attrs)* #with)
    }

    /// `sig` (the function's signature, or a companion's) with that body.
    pub(super) fn with_key(&self, sig: &syn::Signature, rest: TokenStream) -> TokenStream {
        let vis = &self.function.item.vis;
        let target = &self.config.target;
        let (client, key, kind) = (
            target.client_tokens(),
            target.key_tokens(self.function),
            self.kind(),
        );
        quote! {
            #vis #sig {
                #client
                #key
                #kind
                #rest
            }
        }
    }

    /// The return kind (`Result`, `Option` or a plain value), chosen by type.
    fn kind(&self) -> TokenStream {
        let krate = &self.config.target.krate;
        let ret = self.function.ret_tokens();
        quote_spanned! {self.function.ret_span()=>
            let __rp_kind = {
                #[allow(unused_imports)]
                use #krate::__private::{SelectOption as _, SelectResult as _, SelectValue as _};
                (&&&#krate::__private::Select::<#ret>::new()).kind()
            };
        }
    }

    /// `check_cacheable::<R, _>(__rp_kind)` at the return type, so that a missing
    /// `Serialize`/`Deserialize` is reported there (once: the runtime's own bounds on the same
    /// types are then not reported again).
    pub(super) fn check(&self) -> TokenStream {
        let krate = &self.config.target.krate;
        let ret = self.function.ret_tokens();
        quote_spanned! {self.function.ret_span()=>
            let __rp_kind = #krate::__private::check_cacheable::<#ret, _>(__rp_kind);
        }
    }

    /// `static __RP_SPEC` without stampede protection: for the attributes that write.
    pub(super) fn write_spec(&self, ttl: &Ttl) -> TokenStream {
        let krate = &self.config.target.krate;
        let name = self.config.target.name_tokens();
        let (codec, entry_options) = (self.codec(ttl), self.entry_options(ttl));
        let (ttl, jitter) = (krate.with(&ttl.ttl), ttl.jitter_permille);
        let stampede = krate.with(&Stampede::None);
        quote! {
            static __RP_SPEC: #krate::__private::CacheSpec = #krate::__private::CacheSpec::new(
                #name, #ttl, #jitter, #stampede,
            )#codec #entry_options;
        }
    }

    /// What every writer of the entry must agree on besides the TTL: the defining crate (for
    /// the fingerprint), `version` and the stale windows.
    fn entry_options(&self, ttl: &Ttl) -> TokenStream {
        let krate = &self.config.target.krate;
        let version = ttl.version.map(|v| quote!(.version(#v)));
        let stale_if_error = ttl.stale_if_error.map(|d| {
            let d = krate.with(&d);
            quote!(.stale_if_error(#d))
        });
        let revalidate = ttl.stale_while_revalidate.map(|d| {
            let d = krate.with(&d);
            quote!(.stale_while_revalidate(#d))
        });
        quote! {
            .defined_in(
                ::core::option_env!("CARGO_PKG_NAME"),
                ::core::option_env!("CARGO_PKG_VERSION"),
            )
            #version #stale_if_error #revalidate
        }
    }

    /// `let __rp_tags: [String; N] = […];`: the keys of the entry's tags for this call.
    pub(super) fn tags(&self) -> TokenStream {
        let target = &self.config.target;
        let tags = self
            .config
            .tags
            .iter()
            .map(|tag| target.template_tokens(tag, self.function, quote!(tag_builder)));
        let n = self.config.tags.len();
        quote! {
            let __rp_tags: [::std::string::String; #n] = [#(#tags),*];
        }
    }

    /// `.codec(<crate>::__private::Codec::…)` when the attribute sets `codec`.
    fn codec(&self, ttl: &Ttl) -> Option<TokenStream> {
        let krate = &self.config.target.krate;
        ttl.codec.map(|codec| {
            let variant = match codec {
                CodecMode::Json => quote!(Json),
                CodecMode::MessagePack => quote!(MessagePack),
                CodecMode::Postcard => quote!(Postcard),
            };
            quote!(.codec(#krate::__private::Codec::#variant))
        })
    }

    /// `let __rp_kind = CacheNone::cache_none(__rp_kind);`, spanned at the flag, crate path
    /// included, so that rustc underlines only `cache_none`.
    pub(super) fn cache_none(&self, cache_none: Option<Span>) -> Option<TokenStream> {
        let krate = &self.config.target.krate;
        cache_none.map(|span| {
            let krate = respan(quote!(#krate), span);
            quote_spanned!(span=> let __rp_kind = #krate::__private::CacheNone::cache_none(__rp_kind);)
        })
    }
}
