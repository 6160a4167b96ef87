//! Error collection: every mistake in one attribute is reported in one build, next to the
//! untouched function so that the rest of the crate still sees it.

use proc_macro2::TokenStream;
use quote::ToTokens;

#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The errors, then `item` as the user wrote it.
    pub fn with_item(self, item: &impl ToTokens) -> TokenStream {
        let mut out = self.0.map(|e| e.to_compile_error()).unwrap_or_default();
        item.to_tokens(&mut out);
        out
    }
}

/// `options` as the messages list them: `` `a`, `b`, `c` ``.
pub fn list<S: AsRef<str>>(options: impl IntoIterator<Item = S>) -> String {
    options
        .into_iter()
        .map(|o| format!("`{}`", o.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest candidate to `name`, if it is close enough to be a likely typo, or else a
/// candidate that has `name` as one of its `_`-separated words (`jitter` → `ttl_jitter`).
pub fn did_you_mean<S: ToString>(
    name: &str,
    candidates: impl IntoIterator<Item = S>,
) -> Option<String> {
    let candidates: Vec<String> = candidates.into_iter().map(|c| c.to_string()).collect();
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .or_else(|| {
            candidates
                .iter()
                .find(|c| c.split('_').any(|word| word == name))
                .map(|c| (0, c))
        })
        .map(|(_, c)| c.clone())
}

/// Levenshtein distance that counts swapping two adjacent characters as one edit, the most
/// common typo (`pgae` for `page`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("lok", ["none", "lock", "early"]).as_deref(),
            Some("lock")
        );
        assert_eq!(did_you_mean("product_id", ["id", "page"]), None);
        assert_eq!(
            did_you_mean("usr_id", ["user_id", "page"]).as_deref(),
            Some("user_id")
        );
        assert_eq!(did_you_mean("xyz", ["none", "lock"]), None);
    }

    #[test]
    fn a_swap_of_two_letters_is_one_typo() {
        assert_eq!(
            did_you_mean("pgae", ["id", "page"]).as_deref(),
            Some("page")
        );
    }

    #[test]
    fn suggests_an_option_by_one_of_its_words() {
        assert_eq!(
            did_you_mean("jitter", ["ttl", "ttl_jitter", "stampede"]).as_deref(),
            Some("ttl_jitter")
        );
        assert_eq!(did_you_mean("expire_after", ["ttl", "ttl_jitter"]), None);
    }
}
