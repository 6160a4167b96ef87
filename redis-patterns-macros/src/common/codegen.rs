//! Code every expansion shares: the crate path generated code names the runtime by, runtime
//! values written through it, and the opening of a generated body (client, then key).

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use crate::common::function::Function;
use crate::common::key::Key;
use crate::common::template::{self, Segment};

/// The path generated code names the runtime by: `::redis_patterns`, or the `crate = "…"`
/// option for a re-export.
#[derive(Clone)]
pub struct Krate(syn::Path);

impl Krate {
    pub fn new(given: Option<syn::Path>) -> Krate {
        Krate(given.unwrap_or_else(|| syn::parse_quote!(::redis_patterns)))
    }

    /// `value` as the runtime's value, named through this path.
    pub fn with<'a, T>(&'a self, value: &'a T) -> InCrate<'a, T> {
        InCrate { krate: self, value }
    }
}

impl ToTokens for Krate {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.0.to_tokens(tokens);
    }
}

/// A value of the configuration written as the runtime's value, through the crate path: the
/// modes implement `ToTokens` for it (`InCrate { krate, value: &Stampede::Lock { .. } }` becomes
/// `<crate>::__private::Stampede::Lock { .. }`).
pub struct InCrate<'a, T> {
    pub krate: &'a Krate,
    pub value: &'a T,
}

/// What every generated body starts with: the client to use and the key it works on.
pub struct Target {
    pub krate: Krate,
    /// `client = …`; `None` for the default client.
    pub client: Option<syn::Expr>,
    pub key: Key,
}

impl Target {
    /// `let __rp_client: &Client = …;`
    pub fn client_tokens(&self) -> TokenStream {
        let krate = &self.krate;
        match &self.client {
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
    pub fn name_tokens(&self) -> TokenStream {
        let rendered = template::render(&self.key.segments);
        if self.key.explicit {
            quote!(#rendered)
        } else {
            quote!(::core::concat!(::core::module_path!(), #rendered))
        }
    }

    /// `let __rp_key: String = …;` — a placeholder becomes the parameter's own identifier
    /// (or the receiver's `self`), located at the key literal so that a missing `KeyPart` impl
    /// underlines the template, and resolved like the parameter, so that it is found wherever
    /// the template and the function were written (in place, or through `macro_rules!`).
    pub fn key_tokens(&self, function: &Function) -> TokenStream {
        let built = self.template_tokens(&self.key, function, quote!(key_builder));
        quote! {
            let __rp_key: ::std::string::String = #built;
        }
    }

    /// A block that builds the text of `template` for this call with the runtime's
    /// `__private::<builder>(client)`: the key, or a tag's key.
    pub fn template_tokens(
        &self,
        template: &Key,
        function: &Function,
        builder: TokenStream,
    ) -> TokenStream {
        let krate = &self.krate;
        let span = template.span;
        let builder_ident = Ident::new("__rp_k", span.resolved_at(Span::call_site()));
        let steps = template
            .segments
            .iter()
            .enumerate()
            .map(|(i, segment)| match segment {
                Segment::Literal(text) if i == 0 && template.self_type => {
                    quote!(__rp_k.path(::core::any::type_name::<Self>()).literal(#text);)
                }
                Segment::Literal(text) if i == 0 && !template.explicit => {
                    quote!(__rp_k.literal(::core::concat!(::core::module_path!(), #text));)
                }
                Segment::Literal(text) => quote!(__rp_k.literal(#text);),
                Segment::Placeholder(path) => {
                    let root = function.resolve(&path[0]).located_at(span);
                    let root = if path[0] == "self" {
                        quote_spanned!(root=> self)
                    } else {
                        Ident::new(&path[0], root).into_token_stream()
                    };
                    let fields = path[1..].iter().map(|f| Ident::new(f, span));
                    quote_spanned!(span=> #builder_ident.part(&#root #(.#fields)*);)
                }
            });
        quote! {
            {
                let mut __rp_k = #krate::__private::#builder(__rp_client);
                #(#steps)*
                __rp_k.finish()
            }
        }
    }

    /// Every identifier in the `client = …` expression: parameters it names are the client's,
    /// not key data.
    pub fn client_idents(&self) -> Vec<String> {
        idents_in(self.client.as_ref())
    }
}

/// Every identifier in an expression.
pub fn idents_in(expr: Option<&syn::Expr>) -> Vec<String> {
    fn walk(tokens: TokenStream, out: &mut Vec<String>) {
        for tt in tokens {
            match tt {
                TokenTree::Ident(i) => out.push(i.to_string()),
                TokenTree::Group(g) => walk(g.stream(), out),
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

/// `tokens` with every span set to `span`: a path the macro writes (the crate path) placed at a
/// user's token, so that an error about the expression it starts is reported there.
pub fn respan(tokens: TokenStream, span: Span) -> TokenStream {
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
