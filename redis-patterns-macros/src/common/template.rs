//! Key templates such as `"catalog:<region>:<page>"`, parsed once into segments.
//!
//! Rules (each violation is a message for the user):
//! * the template starts with a literal name (`product:`);
//! * literal text uses only ASCII letters, digits and `_ - . / : @ = +`: no `#`, which marks
//!   placeholder values in keys (`product:#42`), so that no value reads as literal text;
//! * a placeholder is `<param>` or a field path `<param.field.inner>` / `<self.field>`;
//! * placeholders are separated by `:` (one before each, and a `:` or the end after it): values
//!   never contain `:`, so each value is one whole `:`-separated segment of the key.
//!
//! Together with the runtime's escaping, these make keys injective across templates: the key
//! reads back into the literal text, where the placeholders stand, and their values.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// The parameter name (or `self`) followed by field names.
    Placeholder(Vec<String>),
}

pub fn parse(template: &str) -> Result<Vec<Segment>, Vec<String>> {
    let mut errors = Vec::new();
    let mut segments = Vec::new();
    if template.is_empty() {
        return Err(vec![
            "the key template is empty; give it a name, e.g. `\"product:<id>\"`".into(),
        ]);
    }
    if template.starts_with('<') {
        errors.push(format!(
            "the key template must start with a literal name, e.g. `\"item:{template}\"`, \
             so that different caches cannot produce the same key"
        ));
    }
    let mut rest = template;
    let mut literal = String::new();
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let Some(end) = rest.find('>') else {
                errors.push(format!("unclosed `<` in key template `{template}`"));
                break;
            };
            let inner = &rest[1..end];
            let after = &rest[end + 1..];
            if !literal.is_empty() && !literal.ends_with(':') {
                errors.push(format!(
                    "placeholder `<{inner}>` must follow a `:`, as in `\"{}\"`: {WHY_SEPARATORS}",
                    with_separators(template)
                ));
            }
            if !(after.is_empty() || after.starts_with(':')) {
                errors.push(format!(
                    "placeholder `<{inner}>` must be followed by `:` or end the template, as in \
                     `\"{}\"`: {WHY_SEPARATORS}",
                    with_separators(template)
                ));
            }
            match parse_path(inner) {
                Ok(path) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Placeholder(path));
                }
                Err(e) => errors.push(e),
            }
            rest = after;
        } else {
            if c == '>' {
                errors.push(format!("unmatched `>` in key template `{template}`"));
            } else if c == '#' {
                errors.push(
                    "`#` is not allowed in a key template's literal text: in keys it marks where \
                     a placeholder's value begins (`product:#42`), which keeps the keys of \
                     different templates apart; use another character such as `-` or `.`"
                        .into(),
                );
            } else if !(c.is_ascii_alphanumeric() || "_-./:@=+".contains(c)) {
                errors.push(format!(
                    "character {c:?} is not allowed in a key template; use ASCII letters, digits \
                     and `_ - . / : @ = +`"
                ));
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    if errors.is_empty() {
        Ok(segments)
    } else {
        Err(errors)
    }
}

const WHY_SEPARATORS: &str =
    "values are escaped so they never contain `:`, which keeps keys unambiguous";

/// `template` with a `:` added wherever a placeholder lacks one before or after it, to show
/// the user the template they probably meant.
fn with_separators(template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 4);
    let (mut in_placeholder, mut after_placeholder) = (false, false);
    for c in template.chars() {
        if in_placeholder {
            out.push(c);
            if c == '>' {
                in_placeholder = false;
                after_placeholder = true;
            }
            continue;
        }
        if after_placeholder && c != ':' {
            out.push(':');
        }
        after_placeholder = false;
        if c == '<' {
            if !out.is_empty() && !out.ends_with(':') {
                out.push(':');
            }
            in_placeholder = true;
        }
        out.push(c);
    }
    out
}

fn parse_path(inner: &str) -> Result<Vec<String>, String> {
    if inner.is_empty() {
        return Err("empty placeholder `<>`; name a parameter, e.g. `<id>`".into());
    }
    inner
        .split('.')
        .map(|part| {
            let mut chars = part.chars();
            let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(part.to_owned())
            } else {
                Err(format!(
                    "`<{inner}>` is not a placeholder: write a parameter name or a field path \
                     such as `<user.id>`"
                ))
            }
        })
        .collect()
}

/// The template a default key stands for, e.g. `fn_name:<a>:<b>`, for messages and stats.
pub fn render(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.clone(),
            Segment::Placeholder(p) => format!("<{}>", p.join(".")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.into())
    }
    fn ph(p: &[&str]) -> Segment {
        Segment::Placeholder(p.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parses_literals_and_placeholders() {
        assert_eq!(
            parse("product:<id>").unwrap(),
            vec![lit("product:"), ph(&["id"])]
        );
        assert_eq!(
            parse("catalog:<region>:<page>:v2").unwrap(),
            vec![
                lit("catalog:"),
                ph(&["region"]),
                lit(":"),
                ph(&["page"]),
                lit(":v2")
            ]
        );
        assert_eq!(
            parse("user:<self.tenant>:<req.user.id>").unwrap(),
            vec![
                lit("user:"),
                ph(&["self", "tenant"]),
                lit(":"),
                ph(&["req", "user", "id"])
            ]
        );
        assert_eq!(parse("config").unwrap(), vec![lit("config")]);
    }

    #[test]
    fn rejects_ambiguous_or_malformed_templates() {
        for bad in [
            "",
            "<id>",
            "a<id>",
            "a:<id>x",
            "a:<a><b>",
            "a:<id",
            "a:id>",
            "a:<>",
            "a:<1x>",
            "a:<a..b>",
            "a b:<id>",
            "a{b}:<id>",
            "a*:<id>",
            "é:<id>",
            "a#:<id>",
            "a:<id>:#",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn suggests_the_template_with_separators() {
        assert_eq!(with_separators("a:<x><y>"), "a:<x>:<y>");
        assert_eq!(with_separators("a<id>"), "a:<id>");
        assert_eq!(with_separators("a:<id>x"), "a:<id>:x");
        assert_eq!(with_separators("a:<id>:b"), "a:<id>:b");
        let message = &parse("a:<x><y>").unwrap_err()[0];
        assert!(message.contains("`\"a:<x>:<y>\"`"), "{message}");
    }

    #[test]
    fn a_hash_sign_is_rejected_with_the_reason() {
        let errors = parse("v#2:<id>").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("marks where a placeholder's value begins"));
    }

    #[test]
    fn reports_every_error() {
        let errors = parse("<a>x<b").unwrap_err();
        assert!(errors.len() >= 3, "{errors:?}");
    }

    #[test]
    fn render_round_trips() {
        for t in ["product:<id>", "a:<b.c>:d"] {
            assert_eq!(render(&parse(t).unwrap()), t);
        }
    }
}
