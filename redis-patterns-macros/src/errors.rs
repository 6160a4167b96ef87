//! Error collection: every mistake in one attribute is reported in one build.

use proc_macro2::TokenStream;

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

    pub fn into_compile_errors(self) -> TokenStream {
        self.0.map(|e| e.to_compile_error()).unwrap_or_default()
    }
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<S: ToString>(
    name: &str,
    candidates: impl IntoIterator<Item = S>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| c.to_string())
        .map(|c| (levenshtein(name, &c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
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
}
