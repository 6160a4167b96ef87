//! The key format's promises, checked on adversarial inputs: escaping, injectivity within a
//! template and across templates, and a non-empty hash tag shared by every key of a call.

use super::*;
use std::collections::HashMap;
use std::collections::HashSet;

/// One step of a template: literal text or a placeholder.
#[derive(Clone, Copy, Debug)]
enum Step {
    Lit(&'static str),
    Value,
}
use Step::{Lit, Value};

/// The key of `template` with `values` in its placeholders, built as generated code does.
fn key_of(template: &[Step], values: &[&str]) -> String {
    let mut k = KeyBuilder::new(Some("ns"));
    let mut values = values.iter();
    for step in template {
        match step {
            Lit(text) => {
                k.literal(text);
            }
            Value => {
                k.part(*values.next().expect("one value per placeholder"));
            }
        }
    }
    k.finish()
}

fn key2<A: KeyPart, B: KeyPart>(a: A, b: B) -> String {
    let mut k = KeyBuilder::new(Some("ns"));
    k.literal("t:").part(&a).literal(":").part(&b);
    k.finish()
}

/// The hash tag Redis Cluster hashes: from the first `{` to the next `}`, if not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let len = key[open + 1..].find('}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

const ADVERSARIAL: &[&str] = &[
    "", "a", "b", "c", "a:b", "a%3Ab", ":", "%", "~", "%7E", "#", "#a", "%23", "{", "}", "a}b",
    "*", " ", "\n", "é", "%C3%A9", "a:", ":b", "-", "~~", "b:c", "::", "{}",
];

#[test]
fn plain_values_are_readable() {
    assert_eq!(key2(42u64, "eu-west"), "ns:{t:#42:#eu-west}");
    assert_eq!(key2(-1i32, true), "ns:{t:#-1:#true}");
    assert_eq!(key_part_to_string(&IpAddr::from([10, 0, 0, 1])), "10.0.0.1");
}

#[test]
fn special_characters_are_escaped() {
    let k = key2("a:b", "}{*?[] \n\u{e9}%~\\#");
    assert_eq!(
        k,
        "ns:{t:#a%3Ab:#%7D%7B%2A%3F%5B%5D%20%0A%C3%A9%25%7E%5C%23}"
    );
    let inner = hash_tag(&k).unwrap();
    assert!(!inner.contains(['{', '}', '*', '?', '[', ']', ' ', '\n']));
    assert_eq!(inner.matches(':').count(), 2);
}

#[test]
fn adversarial_tuples_of_one_template_never_collide() {
    let mut seen = HashSet::new();
    for a in ADVERSARIAL {
        for b in ADVERSARIAL {
            assert!(seen.insert(key2(a, b)), "collision for ({a:?}, {b:?})");
        }
    }
}

#[test]
fn keys_of_different_templates_never_collide() {
    // Valid templates (literal text without `#`, placeholders between `:`s), including the
    // issue's `a:b:<x>` and `a:<y>:c`, which both gave `a:b:c`.
    let templates: &[&[Step]] = &[
        &[Lit("a")],
        &[Lit("a:")],
        &[Lit("a:"), Value],
        &[Lit("a:b")],
        &[Lit("a:b:"), Value],
        &[Lit("a:"), Value, Lit(":c")],
        &[Lit("a:"), Value, Lit(":"), Value],
        &[Lit("a:b:c")],
        &[Lit("a:b:c:"), Value],
        &[Lit("a:"), Value, Lit(":b:c")],
        &[Lit("a:"), Value, Lit(":"), Value, Lit(":"), Value],
        &[Lit("a:b:"), Value, Lit(":"), Value],
        &[Lit("a::"), Value],
        &[Lit("a:"), Value, Lit(":")],
        &[Lit("a:"), Value, Lit("::"), Value],
        &[Lit("a:~")],
        &[Lit("a:%23")],
    ];
    let mut owner: HashMap<String, (usize, Vec<&str>)> = HashMap::new();
    for (t, template) in templates.iter().enumerate() {
        let holes = template.iter().filter(|s| matches!(s, Value)).count();
        let mut tuples: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..holes {
            tuples = tuples
                .into_iter()
                .flat_map(|prefix| {
                    ADVERSARIAL.iter().map(move |v| {
                        let mut next = prefix.clone();
                        next.push(*v);
                        next
                    })
                })
                .collect();
        }
        for values in tuples {
            let key = key_of(template, &values);
            if let Some((other, other_values)) = owner.insert(key.clone(), (t, values.clone())) {
                panic!(
                    "{key:?}: template {other} with {other_values:?} and template {t} with {values:?}"
                );
            }
        }
    }
    assert_ne!(
        key_of(&[Lit("a:b:"), Value], &["c"]),
        key_of(&[Lit("a:"), Value, Lit(":c")], &["b"])
    );
}

#[test]
fn options_are_injective() {
    let values: Vec<Option<Option<&str>>> = vec![
        None,
        Some(None),
        Some(Some("")),
        Some(Some("~")),
        Some(Some("x")),
    ];
    let texts: HashSet<String> = values.iter().map(key_part_to_string).collect();
    assert_eq!(texts.len(), values.len(), "{texts:?}");
    assert_eq!(key_part_to_string(&Some(Some("x"))), "x");
}

#[test]
fn names_escape_everything_but_their_colons() {
    assert_eq!(name_key(Some("ns"), "report:daily"), "ns:{report:#daily}");
    assert_eq!(name_key(None, "a}{b c#:#"), "{a%7D%7Bb%20c%23:#%23}");
    assert_ne!(name_key(None, "a%7D"), name_key(None, "a}"));
}

#[test]
fn a_name_key_is_the_key_of_the_template_of_its_shape() {
    assert_eq!(name_key(Some("ns"), "api:alice"), "ns:{api:#alice}");
    assert_eq!(
        name_key(Some("ns"), "api:alice"),
        key_of(&[Lit("api:"), Value], &["alice"])
    );
    assert_eq!(
        name_key(Some("ns"), "x-api-key:a b:c"),
        key_of(&[Lit("x-api-key:"), Value, Lit(":"), Value], &["a b", "c"])
    );
}

#[test]
fn name_keys_never_collide() {
    let mut seen = HashMap::new();
    for a in ADVERSARIAL {
        for b in ADVERSARIAL {
            let text = format!("{a}{b}");
            let key = name_key(None, &text);
            if let Some(other) = seen.insert(key.clone(), text.clone()) {
                assert_eq!(other, text, "{key:?}");
            }
        }
    }
}

#[test]
fn every_key_has_a_non_empty_hash_tag() {
    let mut keys = Vec::new();
    for input in ADVERSARIAL {
        keys.push(name_key(None, input));
        keys.push(name_key(Some("ns"), input));
        keys.push(key_of(&[Lit("a:"), Value], &[input]));
    }
    keys.push(KeyBuilder::new(Some("ns")).finish());
    for key in keys {
        let tag = hash_tag(&key).unwrap_or_else(|| panic!("{key:?} has no hash tag"));
        // The whole key is `ns:{tag}`: suffixes the patterns add (`:lock`, `:mutex`,
        // `:fence`, `:sw:60000`) come after the `}` and so share the tag.
        assert!(key.ends_with(&format!("{{{tag}}}")), "{key:?}");
    }
    assert_eq!(name_key(Some("ns"), ""), "ns:{~}");
    assert_eq!(name_key(Some("ns"), ""), "ns:{~}");
    assert_eq!(key_of(&[Lit("a:"), Value], &[""]), "ns:{a:#}");
}

#[test]
fn self_types_keep_their_path_and_escape_the_rest() {
    let mut k = KeyBuilder::new(None);
    k.path("app::Repo<app::User, &str>").literal("::get");
    assert_eq!(k.finish(), "{app::Repo%3Capp::User,%20%26str%3E::get}");
}

#[test]
fn display_is_escaped_too() {
    let addr: SocketAddr = "[::1]:80".parse().unwrap();
    assert_eq!(key_part_to_string(&addr), "%5B%3A%3A1%5D%3A80");
}

#[test]
fn socket_addresses_differ_in_flowinfo_and_scope_id() {
    let ip: Ipv6Addr = "fe80::1".parse().unwrap();
    let addrs = [
        SocketAddrV6::new(ip, 80, 0, 0),
        SocketAddrV6::new(ip, 80, 1, 0),
        SocketAddrV6::new(ip, 80, 0, 1),
        SocketAddrV6::new(ip, 80, 1, 1),
        SocketAddrV6::new(ip, 801, 0, 0),
        SocketAddrV6::new(ip, 80, 10, 0),
        SocketAddrV6::new(ip, 80, 0, 10),
    ];
    let texts: HashSet<String> = addrs
        .iter()
        .map(|a| key_part_to_string(&SocketAddr::V6(*a)))
        .collect();
    assert_eq!(texts.len(), addrs.len(), "{texts:?}");
    for a in addrs {
        assert_eq!(
            key_part_to_string(&SocketAddr::V6(a)),
            key_part_to_string(&a)
        );
    }
    assert_eq!(
        key_part_to_string(&SocketAddrV6::new(ip, 80, 0, 2)),
        key_part_to_string(&SocketAddr::V6(SocketAddrV6::new(ip, 80, 0, 2)).to_string()),
        "with flowinfo 0, the text is the escaped `Display`, scope id included"
    );
    let v4: SocketAddrV4 = "10.0.0.1:80".parse().unwrap();
    assert_eq!(key_part_to_string(&v4), "10.0.0.1%3A80");
}

#[test]
fn tag_keys_match_their_templates_and_never_an_entry_s_key() {
    let mut built = KeyBuilder::for_tag(Some("ns"));
    built.literal("brand:").part("acme");
    let built = built.finish();
    assert_eq!(built, "ns:^tag:{brand:#acme}");
    assert_eq!(tag_key(Some("ns"), "brand:acme"), built);
    assert_eq!(tag_key(None, "catalog"), "^tag:{catalog}");
    assert_ne!(
        tag_key(Some("ns"), "brand:acme"),
        name_key(Some("ns"), "brand:acme")
    );
    assert_eq!(tag_key(Some("ns"), "a}{:b c"), "ns:^tag:{a%7D%7B:#b%20c}");
}
