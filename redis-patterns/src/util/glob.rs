//! Redis's glob-style patterns (`PSUBSCRIBE`, `KEYS`, `SCAN MATCH`): `*` any run of bytes, `?`
//! one byte, `[abc]`, `[^abc]` and `[a-z]` one byte of a set, `\x` the byte `x`. A port of
//! `stringmatchlen` in Redis's `util.c`, so that `mem://` matches exactly what a server
//! matches (bytes, not characters; a `[` without its `]` closes at the end of the pattern).

/// Whether `text` matches the glob-style `pattern`.
pub(crate) fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, text, &mut skip_longer, 0)
}

/// Redis bounds its recursion on `*` the same way.
const MAX_NESTING: u32 = 1000;

/// `stringmatchlen_impl`, step for step. `pattern` always runs to the end of the whole
/// pattern, so reading past it reads what C reads there: the terminating NUL.
fn match_impl(pattern: &[u8], text: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut left) = (0usize, pattern.len());
    let mut t = 0usize;
    while left > 0 && t < text.len() {
        let c = text[t];
        match at(p) {
            b'*' => {
                while left > 0 && at(p + 1) == b'*' {
                    p += 1;
                    left -= 1;
                }
                if left == 1 {
                    return true;
                }
                while t < text.len() {
                    if match_impl(&pattern[p + 1..], &text[t..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    t += 1;
                }
                // Nothing matches the rest from anywhere in the rest of the text: an earlier
                // `*` taking more of it cannot help either.
                *skip_longer = true;
                return false;
            }
            b'?' => t += 1,
            b'[' => {
                p += 1;
                left -= 1;
                let not = at(p) == b'^';
                if not {
                    p += 1;
                    left = left.saturating_sub(1);
                }
                let mut matched = false;
                loop {
                    if at(p) == b'\\' && left >= 2 {
                        p += 1;
                        left -= 1;
                        matched |= at(p) == c;
                    } else if at(p) == b']' {
                        break;
                    } else if left == 0 {
                        // No closing bracket: the class ends with the pattern.
                        p = p.saturating_sub(1);
                        left += 1;
                        break;
                    } else if left >= 3 && at(p + 1) == b'-' {
                        let (a, b) = (at(p), at(p + 2));
                        let (lo, hi) = if a > b { (b, a) } else { (a, b) };
                        p += 2;
                        left -= 2;
                        matched |= (lo..=hi).contains(&c);
                    } else {
                        matched |= at(p) == c;
                    }
                    p += 1;
                    left -= 1;
                }
                if matched == not {
                    return false;
                }
                t += 1;
            }
            first => {
                let mut literal = first;
                if first == b'\\' && left >= 2 {
                    p += 1;
                    left -= 1;
                    literal = at(p);
                }
                if literal != c {
                    return false;
                }
                t += 1;
            }
        }
        p += 1;
        left = left.saturating_sub(1);
        if t == text.len() {
            while at(p) == b'*' {
                p += 1;
                left = left.saturating_sub(1);
            }
            break;
        }
    }
    left == 0 && t == text.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_as_redis_matches_them() {
        let cases: &[(&str, &str, bool)] = &[
            ("news", "news", true),
            ("news", "newsy", false),
            ("n*", "news", true),
            ("n*s", "news", true),
            ("n*s", "newt", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("orders:*:paid", "orders:42:paid", true),
            ("orders:*:paid", "orders:42:open", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                *expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
