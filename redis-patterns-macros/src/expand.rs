//! Code generation. The function body stays in the original function as an `async move`
//! block awaited in place; the generated code only names the runtime through
//! `<crate>::__private`.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use crate::attr::{self, Args, Kind, StampedeMode};
use crate::errors::{Errors, did_you_mean};
use crate::template::{self, Segment};

/// A parameter of the annotated function.
pub(crate) struct Param {
    /// `None` for a pattern that is not a plain name (`(a, b): (u8, u8)`).
    pub name: Option<Ident>,
    pub pat: Pat,
    pub ty: Type,
}

/// The key of the annotated function: its segments, where they came from, and whether the
/// template was written by the user.
pub(crate) struct Key {
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

/// Parses the annotated item as a function, or returns the error to emit (with the item).
pub(crate) fn parse_fn(item: TokenStream, attribute: &str) -> Result<ItemFn, TokenStream> {
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

/// Whether the function has a `self` receiver, and its other parameters.
pub(crate) fn params_of(func: &ItemFn) -> (bool, Vec<Param>) {
    let has_self = func
        .sig
        .inputs
        .iter()
        .any(|a| matches!(a, FnArg::Receiver(_)));
    let params = func
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
    (has_self, params)
}

/// A key template the user wrote; its errors are reported at the literal.
pub(crate) fn explicit_key(lit: &syn::LitStr, errors: &mut Errors) -> Key {
    match template::parse(&lit.value()) {
        Ok(segments) => Key {
            segments,
            span: lit.span(),
            explicit: true,
            self_type: false,
            valid: true,
        },
        Err(messages) => {
            for m in messages {
                errors.push(syn::Error::new(lit.span(), m));
            }
            Key {
                segments: Vec::new(),
                span: lit.span(),
                explicit: true,
                self_type: false,
                valid: false,
            }
        }
    }
}

/// The declared return type (`()` when there is none).
pub(crate) fn ret_tokens(func: &ItemFn) -> TokenStream {
    match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    }
}

/// Where errors about the return type go.
pub(crate) fn ret_span(func: &ItemFn) -> Span {
    match &func.sig.output {
        ReturnType::Default => func.sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    }
}

/// `let __rp_client: &Client = …;`
pub(crate) fn client_tokens(krate: &syn::Path, client: Option<&syn::Expr>) -> TokenStream {
    match client {
        None => quote! {
            let __rp_client: &#krate::__private::Client = #krate::__private::default_client();
        },
        Some(expr) => {
            // Located at the user's expression (errors land there) but resolved at the call
            // site, so the bindings are found even when the expression comes from a
            // `macro_rules!` fragment with other hygiene.
            let span = expr.span().resolved_at(Span::call_site());
            quote_spanned! {span=>
                let __rp_client_source = &(#expr);
                let __rp_client: &#krate::__private::Client =
                    #krate::__private::AsClient::as_client(__rp_client_source);
            }
        }
    }
}

/// The template as text, for logs and statistics.
pub(crate) fn name_tokens(key: &Key) -> TokenStream {
    let rendered = template::render(&key.segments);
    if key.explicit {
        quote!(#rendered)
    } else {
        quote!(::core::concat!(::core::module_path!(), #rendered))
    }
}

/// `let __rp_key: String = …;` — placeholders become the user's own names, spanned at the
/// key literal so that a missing `KeyPart` impl underlines the template.
pub(crate) fn key_tokens(krate: &syn::Path, key: &Key) -> TokenStream {
    let span = key.span;
    let steps = key
        .segments
        .iter()
        .enumerate()
        .map(|(i, segment)| match segment {
            Segment::Literal(text) if i == 0 && key.self_type => {
                quote!(__rp_k.path(::core::any::type_name::<Self>()).literal(#text);)
            }
            Segment::Literal(text) if i == 0 && !key.explicit => {
                quote!(__rp_k.literal(::core::concat!(::core::module_path!(), #text));)
            }
            Segment::Literal(text) => quote!(__rp_k.literal(#text);),
            Segment::Placeholder(path) => {
                let idents = path.iter().map(|p| {
                    if p == "self" {
                        quote_spanned!(span=> self)
                    } else {
                        let ident = Ident::new(p, span);
                        quote!(#ident)
                    }
                });
                quote_spanned!(span=> __rp_k.part(&#(#idents).*);)
            }
        });
    quote! {
        let __rp_key: ::std::string::String = {
            let mut __rp_k = #krate::__private::key_builder(__rp_client);
            #(#steps)*
            __rp_k.finish()
        };
    }
}

/// The original body as an `async move` block whose output type is pinned to the return
/// type, so `?` and `return` keep their meaning.
pub(crate) fn body_tokens(func: &ItemFn) -> TokenStream {
    let ret = ret_tokens(func);
    let stmts = &func.block.stmts;
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

pub fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse(kind, args, &mut errors);
    let func = match parse_fn(item, kind.name()) {
        Ok(f) => f,
        Err(tokens) => return tokens,
    };
    let (has_self, params) = params_of(&func);

    // After the options' own errors: the key and `skip` (which need the parameters), then the
    // `fn` token, the parameters and the return type, so that the errors read top to bottom.
    let key = key_of(kind, &args, &func, &params, &mut errors);
    let (placeholders_known, mut misspelled) =
        check_placeholders(&key, &params, has_self, &mut errors);
    if kind == Kind::Cached {
        misspelled.extend(check_skip(&args, &key, &params, &mut errors));
    }
    if func.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            func.sig.fn_token,
            format!(
                "#[{}] requires an `async fn`: the cache is read and written asynchronously",
                kind.name()
            ),
        ));
    }
    if kind == Kind::Cached {
        check_every_param_is_keyed(&args, &key, &params, &misspelled, &mut errors);
    }
    match &func.sig.output {
        ReturnType::Default if kind == Kind::Cached => errors.push(syn::Error::new_spanned(
            &func.sig.ident,
            "a #[cached] function must return the value to cache: add a return type \
             (`-> T`, `-> Option<T>` or `-> Result<T, E>`)",
        )),
        ReturnType::Type(_, ty) if matches!(**ty, Type::ImplTrait(_)) => {
            let why = match kind {
                Kind::Cached => "the cache rebuilds it with `serde::Deserialize`",
                Kind::CachePut => "the cache stores it with `serde::Serialize`",
                Kind::CacheEvict => "the attribute checks whether the call succeeded",
            };
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "a #[{}] function must return a concrete type ({why}), not `impl Trait`",
                    kind.name()
                ),
            ))
        }
        _ => {}
    }

    let generated = Generated {
        krate: args
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::redis_patterns)),
        args: &args,
        func: &func,
        key: &key,
        params: &params,
    };
    if !errors.is_empty() {
        let mut out = errors.into_compile_errors();
        out.extend(quote!(#func));
        // Calls of the companions elsewhere should not add errors either, as long as their
        // signatures are known.
        let concrete_return = matches!(&func.sig.output, ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)));
        if kind == Kind::Cached && key.valid && placeholders_known && concrete_return {
            out.extend(generated.companion_stubs());
        }
        return out;
    }
    match kind {
        Kind::Cached => generated.cached(),
        Kind::CacheEvict => generated.evict(),
        Kind::CachePut => generated.put(),
    }
}

fn key_of(kind: Kind, args: &Args, func: &ItemFn, params: &[Param], errors: &mut Errors) -> Key {
    if let Some(lit) = &args.key {
        return explicit_key(lit, errors);
    }
    if kind != Kind::Cached {
        // #[cache_evict] and #[cache_put] require a key; its absence is already reported.
        return Key {
            segments: Vec::new(),
            span: Span::call_site(),
            explicit: true,
            self_type: false,
            valid: false,
        };
    }
    // Default key: the function's path, then every parameter that is not skipped.
    let client_idents = client_idents(args);
    let keyed: Vec<&Ident> = params
        .iter()
        .filter_map(|p| p.name.as_ref())
        .filter(|name| {
            !args.skip.iter().any(|s| s == *name) && !client_idents.contains(&name.to_string())
        })
        .collect();
    Key::default_for(func, &keyed)
}

/// Reports placeholders that name no parameter. Returns whether every placeholder names one,
/// and the parameters suggested instead, which are then not also reported as missing from the
/// key.
pub(crate) fn check_placeholders(
    key: &Key,
    params: &[Param],
    has_self: bool,
    errors: &mut Errors,
) -> (bool, Vec<String>) {
    let mut all_known = true;
    let mut suggested = Vec::new();
    let names: Vec<String> = params
        .iter()
        .filter_map(|p| p.name.as_ref().map(ToString::to_string))
        .chain(has_self.then(|| "self".to_owned()))
        .collect();
    for segment in &key.segments {
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
                "placeholder `<{}>` needs a method with a `self` receiver; in a free function, \
                 take the value as a parameter",
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
                        format!(
                            "; parameters are {}",
                            names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                });
            format!(
                "no parameter named `{root}` for placeholder `<{}>`{hint}",
                path.join(".")
            )
        };
        errors.push(syn::Error::new(key.span, message));
    }
    (all_known, suggested)
}

fn in_key(key: &Key, name: &str) -> bool {
    key.segments
        .iter()
        .any(|s| matches!(s, Segment::Placeholder(p) if p[0] == name))
}

/// Reports `skip(...)` entries that name no parameter or one the key uses; returns the
/// parameters suggested for misspelled entries.
fn check_skip(args: &Args, key: &Key, params: &[Param], errors: &mut Errors) -> Vec<String> {
    let mut suggested = Vec::new();
    for skipped in &args.skip {
        let name = skipped.to_string();
        if !params.iter().any(|p| p.name.as_ref() == Some(skipped)) {
            let suggestion = did_you_mean(&name, params.iter().filter_map(|p| p.name.as_ref()));
            suggested.extend(suggestion.clone());
            let hint = suggestion
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            errors.push(syn::Error::new_spanned(
                skipped,
                format!("`skip` names no parameter `{name}`{hint}"),
            ));
        } else if key.valid && key.explicit && in_key(key, &name) {
            errors.push(syn::Error::new_spanned(
                skipped,
                format!("`{name}` is used in the key; remove it from `skip(...)`"),
            ));
        }
    }
    suggested
}

/// Reports parameters that are neither in the key, nor skipped, nor the client's.
/// `misspelled`: parameters already suggested for a misspelled placeholder or `skip` entry.
fn check_every_param_is_keyed(
    args: &Args,
    key: &Key,
    params: &[Param],
    misspelled: &[String],
    errors: &mut Errors,
) {
    let client_idents = client_idents(args);
    for p in params {
        let Some(name) = &p.name else {
            errors.push(syn::Error::new_spanned(
                &p.pat,
                "parameters of a #[cached] function must be plain names (`id: u64`) so that the \
                 key can name them or `skip(...)` can leave them out",
            ));
            continue;
        };
        let text = name.to_string();
        // With an invalid template the key's placeholders are unknown.
        if key.valid
            && !in_key(key, &text)
            && !args.skip.iter().any(|s| s == name)
            && !client_idents.contains(&text)
            && !misspelled.contains(&text)
        {
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "parameter `{text}` is not part of the cache key, so calls that differ only \
                     in `{text}` would share one cache entry; use it in the key (`<{text}>`) or \
                     list it in `skip({text})`"
                ),
            ));
        }
    }
}

/// `tokens` with every span set to `span`: a path the macro writes (the crate path) placed at a
/// user's token, so that an error about the expression it starts is reported there.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                tt = TokenTree::Group(Group::new(g.delimiter(), respan(g.stream(), span)));
            }
            tt.set_span(span);
            tt
        })
        .collect()
}

/// Every identifier in the `client = …` expression: parameters it names are the client's, not
/// key data, and the key companions must take them too.
pub(crate) fn client_idents(args: &Args) -> Vec<String> {
    idents_in(args.client.as_ref())
}

/// Every identifier in an expression.
pub(crate) fn idents_in(expr: Option<&syn::Expr>) -> Vec<String> {
    fn walk(tokens: TokenStream, out: &mut Vec<String>) {
        for tt in tokens {
            match tt {
                proc_macro2::TokenTree::Ident(i) => out.push(i.to_string()),
                proc_macro2::TokenTree::Group(g) => walk(g.stream(), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    if let Some(expr) = expr {
        walk(quote!(#expr), &mut out);
    }
    out
}

struct Generated<'a> {
    krate: syn::Path,
    args: &'a Args,
    func: &'a ItemFn,
    key: &'a Key,
    params: &'a [Param],
}

impl Generated<'_> {
    fn ret(&self) -> TokenStream {
        ret_tokens(self.func)
    }

    fn ret_span(&self) -> Span {
        ret_span(self.func)
    }

    /// `check_cacheable::<R, _>(__rp_kind)` at the return type, so that a missing
    /// `Serialize`/`Deserialize` is reported there (once: the runtime's own bounds on the same
    /// types are then not reported again).
    fn check(&self) -> TokenStream {
        let krate = &self.krate;
        let ret = self.ret();
        quote_spanned! {self.ret_span()=>
            let __rp_kind = #krate::__private::check_cacheable::<#ret, _>(__rp_kind);
        }
    }

    fn client(&self) -> TokenStream {
        client_tokens(&self.krate, self.args.client.as_ref())
    }

    fn name(&self) -> TokenStream {
        name_tokens(self.key)
    }

    fn key(&self) -> TokenStream {
        key_tokens(&self.krate, self.key)
    }

    /// The return kind (`Result`, `Option` or a plain value), chosen by type.
    fn kind(&self) -> TokenStream {
        let krate = &self.krate;
        let ret = self.ret();
        quote_spanned! {self.ret_span()=>
            let __rp_kind = {
                #[allow(unused_imports)]
                use #krate::__private::{SelectOption as _, SelectResult as _, SelectValue as _};
                (&&&#krate::__private::Select::<#ret>::new()).kind()
            };
        }
    }

    fn body(&self) -> TokenStream {
        body_tokens(self.func)
    }

    fn ttl(&self) -> (TokenStream, u32) {
        let krate = &self.krate;
        let ms = self.args.ttl_ms.unwrap_or(0);
        (
            quote!(#krate::__private::Duration::from_millis(#ms)),
            self.args.ttl_jitter.unwrap_or(0),
        )
    }

    fn cached(&self) -> TokenStream {
        let krate = &self.krate;
        let (body, name) = (self.body(), self.name());
        let (ttl, jitter) = self.ttl();
        let stampede = match self.args.stampede {
            StampedeMode::None => quote!(#krate::__private::Stampede::None),
            StampedeMode::Lock => {
                let lock_ttl = self.args.lock_ttl_ms.unwrap_or(10_000);
                let lock_wait = self.args.lock_wait_ms.unwrap_or(3_000);
                quote!(#krate::__private::Stampede::Lock {
                    lock_ttl: #krate::__private::Duration::from_millis(#lock_ttl),
                    lock_wait: #krate::__private::Duration::from_millis(#lock_wait),
                })
            }
            StampedeMode::Early => {
                let beta = self.args.beta.unwrap_or(1.0);
                quote!(#krate::__private::Stampede::Early { beta: #beta })
            }
        };
        let cache_none = self.cache_none();
        let check = self.check();
        let mut out = self.wrap(quote! {
            static __RP_SPEC: #krate::__private::CacheSpec =
                #krate::__private::CacheSpec::new(#name, #ttl, #jitter, #stampede);
            #cache_none
            #check
            #krate::__private::cached(__rp_client, &__RP_SPEC, __rp_key, __rp_kind, #body).await
        });
        out.extend(self.companions());
        out
    }

    /// The function with its original attributes and signature and a body that resolves the
    /// client, builds the key, selects the return kind, then does `rest`.
    fn wrap(&self, rest: TokenStream) -> TokenStream {
        let attrs = &self.func.attrs;
        let with = self.with_key(&self.func.sig, rest);
        quote!(#(#attrs)* #with)
    }

    /// `sig` (the function's signature, or a companion's) with that body.
    fn with_key(&self, sig: &syn::Signature, rest: TokenStream) -> TokenStream {
        let vis = &self.func.vis;
        let (client, key, kind) = (self.client(), self.key(), self.kind());
        quote! {
            #vis #sig {
                #client
                #key
                #kind
                #rest
            }
        }
    }

    /// `static __RP_SPEC` without stampede protection: for the attributes that write.
    fn write_spec(&self) -> TokenStream {
        let krate = &self.krate;
        let name = self.name();
        let (ttl, jitter) = self.ttl();
        quote! {
            static __RP_SPEC: #krate::__private::CacheSpec = #krate::__private::CacheSpec::new(
                #name, #ttl, #jitter, #krate::__private::Stampede::None,
            );
        }
    }

    /// `let __rp_kind = CacheNone::cache_none(__rp_kind);`, spanned at the flag, crate path
    /// included, so that rustc underlines only `cache_none`.
    fn cache_none(&self) -> Option<TokenStream> {
        let krate = &self.krate;
        self.args.cache_none.map(|span| {
            let krate = respan(quote!(#krate), span);
            quote_spanned!(span=> let __rp_kind = #krate::__private::CacheNone::cache_none(__rp_kind);)
        })
    }

    fn evict(&self) -> TokenStream {
        let krate = &self.krate;
        let (body, name, ret) = (self.body(), self.name(), self.ret());
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

    fn put(&self) -> TokenStream {
        let krate = &self.krate;
        let (body, ret, check, spec) = (self.body(), self.ret(), self.check(), self.write_spec());
        self.wrap(quote! {
            #check
            let __rp_ret: #ret = #body.await;
            #spec
            #krate::__private::put(__rp_client, &__RP_SPEC, __rp_key, &__rp_kind, &__rp_ret).await;
            __rp_ret
        })
    }

    /// `<fn>_key(..)`, `<fn>_invalidate(..)` and `<fn>_refresh(..)`.
    fn companions(&self) -> TokenStream {
        self.companion_fns(false)
    }

    /// The companions' signatures with bodies that never run: emitted, next to the errors,
    /// for a function whose attribute is wrong.
    fn companion_stubs(&self) -> TokenStream {
        self.companion_fns(true)
    }

    fn companion_fns(&self, stub: bool) -> TokenStream {
        let krate = &self.krate;
        let func = self.func;
        let vis = &func.vis;
        let ident = &func.sig.ident;
        let (generics, where_clause) = (&func.sig.generics, &func.sig.generics.where_clause);
        let key_ident = format_ident!("{}_key", ident);
        let invalidate_ident = format_ident!("{}_invalidate", ident);
        let refresh_ident = format_ident!("{}_refresh", ident);

        // Key companions take the parameters the key uses, and `self` when the key or the
        // client expression needs it.
        let key_names: Vec<&String> = self
            .key
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Placeholder(p) => Some(&p[0]),
                Segment::Literal(_) => None,
            })
            .collect();
        let client_idents = client_idents(self.args);
        let client_uses_self = client_idents.iter().any(|i| i == "self");
        let receiver = func.sig.inputs.iter().find_map(|a| match a {
            FnArg::Receiver(r) => Some(r),
            FnArg::Typed(_) => None,
        });
        let key_receiver = receiver
            .filter(|_| client_uses_self || key_names.iter().any(|n| *n == "self"))
            .map(|r| quote!(#r,));
        let key_params = self.params.iter().filter_map(|p| {
            let name = p.name.as_ref()?;
            let ty = &p.ty;
            (key_names.iter().any(|n| name == n) || client_idents.contains(&name.to_string()))
                .then(|| quote!(#name: #ty))
        });
        let key_params: Vec<TokenStream> = key_params.collect();

        // `_refresh` has the function's own signature and body, and stores what the body
        // returns. It does not call the function by name, which an associated function without
        // `self` could not do from here.
        let mut refresh_sig = func.sig.clone();
        refresh_sig.ident = refresh_ident;
        let doc_key = format!(" The Redis key under which [`{ident}`] caches these arguments.");
        let doc_invalidate = format!(
            " Deletes the value [`{ident}`] cached for these arguments; `Ok(true)` if one was stored."
        );
        let doc_refresh = format!(
            " Runs [`{ident}`] without reading the cache, stores the fresh result, and returns it."
        );
        if stub {
            let unreachable = quote!(::core::unreachable!());
            return quote! {
                #[allow(dead_code, unused_variables, clippy::needless_lifetimes)]
                #vis fn #key_ident #generics (#key_receiver #(#key_params),*) -> ::std::string::String #where_clause {
                    #unreachable
                }
                #[allow(dead_code, unused_variables, clippy::needless_lifetimes)]
                #vis async fn #invalidate_ident #generics (#key_receiver #(#key_params),*)
                    -> ::core::result::Result<bool, #krate::Error> #where_clause
                {
                    #unreachable
                }
                #[allow(dead_code, unused_variables, unused_mut, clippy::needless_lifetimes)]
                #vis #refresh_sig {
                    #unreachable
                }
            };
        }
        let (client, key, name) = (self.client(), self.key(), self.name());
        let (body, check, spec, cache_none) = (
            self.body(),
            self.check(),
            self.write_spec(),
            self.cache_none(),
        );
        let refresh = self.with_key(
            &refresh_sig,
            quote! {
                #spec
                #cache_none
                #check
                #krate::__private::refresh(__rp_client, &__RP_SPEC, __rp_key, __rp_kind, #body).await
            },
        );
        quote! {
            #[doc = #doc_key]
            #[allow(dead_code, clippy::needless_lifetimes)]
            #vis fn #key_ident #generics (#key_receiver #(#key_params),*) -> ::std::string::String #where_clause {
                #client
                #key
                __rp_key
            }

            #[doc = #doc_invalidate]
            #[allow(dead_code, clippy::needless_lifetimes)]
            #vis async fn #invalidate_ident #generics (#key_receiver #(#key_params),*)
                -> ::core::result::Result<bool, #krate::Error> #where_clause
            {
                #client
                #key
                #krate::__private::invalidate(__rp_client, #name, __rp_key).await
            }

            #[doc = #doc_refresh]
            #[allow(dead_code, clippy::needless_lifetimes)]
            #refresh
        }
    }
}
