//! Configuration parsing and printing: URLs of every form, secrets kept out of output.

use super::*;

#[test]
fn password_is_never_printed() {
    let c = Config::from_url("redis://u:p%40ss@h:1/0").unwrap();
    assert_eq!(c.password.as_ref().unwrap().0, "p@ss");
    assert_eq!(c.username.as_deref(), Some("u"));
    let shown = format!("{c} {c:?}");
    assert!(
        !shown.contains("p@ss") && !shown.contains("p%40ss"),
        "{shown}"
    );
    assert!(shown.contains("redis://u:***@h:1/0"), "{shown}");
}

#[test]
fn secrets_of_every_url_form_are_redacted() {
    for (url, secret, shown) in [
        (
            "unix:///run/redis.sock?db=1&pass=hunter2",
            "hunter2",
            "unix:///run/redis.sock?db=1&pass=***",
        ),
        (
            "redis+unix:///run/redis.sock?user=app&pass=s3cr%40t&db=2",
            "s3cr",
            "redis+unix:///run/redis.sock?db=2&user=app&pass=***",
        ),
        (
            "unix:///run/redis.sock?password=pw9",
            "pw9",
            "unix:///run/redis.sock?pass=***",
        ),
        (
            "redis://:pw7@h:1/?protocol=resp3",
            "pw7",
            "redis://:***@h:1/?protocol=resp3",
        ),
        ("redis://h:1/?password=pw8", "pw8", "redis://:***@h:1/"),
    ] {
        let c = Config::from_url(url).unwrap();
        assert!(c.password.is_some(), "{url}");
        let printed = format!("{c} {c:?} {c:#?}");
        assert!(!printed.contains(secret), "{printed}");
        assert_eq!(c.to_string(), shown);
    }
    let c = Config::from_url("unix:///run/redis.sock?pass=hunter2").unwrap();
    assert_eq!(c.password.unwrap().0, "hunter2");
}

#[test]
fn builder_password_overrides_url() {
    let c = Config::from_url("redis://h").unwrap().password("x");
    assert_eq!(c.password.unwrap().0, "x");
}

#[test]
fn memory_urls() {
    assert!(matches!(
        Config::from_url("mem://").unwrap().target,
        Target::Memory(None)
    ));
    assert!(matches!(
        Config::from_url("mem://shared").unwrap().target,
        Target::Memory(Some(ref n)) if n == "shared"
    ));
    assert!(Config::from_url("mem://a/b").is_err());
}

#[test]
fn bad_urls_are_config_errors() {
    for url in ["", "http://x", "redis//x", "nonsense"] {
        assert!(
            matches!(Config::from_url(url), Err(Error::Config(_))),
            "{url}"
        );
    }
}

#[test]
fn namespace_is_validated() {
    let ok = Config::from_url("mem://").unwrap().namespace("shop-1:v2");
    assert!(ok.validate().is_ok());
    for bad in ["", "a b", "a{b}", "ä"] {
        let c = Config::from_url("mem://").unwrap().namespace(bad);
        assert!(c.validate().is_err(), "{bad:?}");
    }
}

#[cfg(feature = "cluster")]
#[test]
fn cluster_urls_list_their_seed_nodes_and_keep_secrets_out() {
    let c =
        Config::from_url("redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001,host3/").unwrap();
    let Target::Cluster(nodes) = &c.target else {
        panic!("a cluster target")
    };
    let nodes: Vec<&str> = nodes.iter().map(::url::Url::as_str).collect();
    assert_eq!(
        nodes,
        [
            "redis://10.0.0.1:7000",
            "redis://10.0.0.2:7001",
            "redis://host3:6379"
        ]
    );
    assert_eq!(c.username.as_deref(), Some("app"));
    assert_eq!(c.password.as_ref().unwrap().0, "p@ss");
    let shown = format!("{c} {c:?}");
    assert!(
        !shown.contains("p@ss") && !shown.contains("p%40ss"),
        "{shown}"
    );
    assert!(
        shown.contains("redis+cluster://app:***@10.0.0.1:7000,10.0.0.2:7001,host3:6379"),
        "{shown}"
    );
    let built = Config::cluster(["10.0.0.1:7000", "redis://10.0.0.2:7001"]).unwrap();
    assert_eq!(
        built.to_string(),
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"
    );
}

#[cfg(feature = "cluster")]
#[test]
fn bad_cluster_urls_say_what_is_wrong() {
    for (url, says) in [
        ("redis+cluster://", "empty"),
        ("redis+cluster://a:1,,b:2", "node 2 is empty"),
        ("redis+cluster://a:1/3", "no database"),
        ("redis+cluster://a:1?x=1", "no database"),
        ("ftp+cluster://a:1", "unsupported scheme"),
        ("redis+cluster://a:99999", "cannot parse node"),
    ] {
        let err = Config::from_url(url).unwrap_err().to_string();
        assert!(err.contains(says), "{url}: {err}");
    }
    assert!(Config::cluster(Vec::<&str>::new()).is_err());
    assert!(Config::cluster(["redis://a:1", "rediss://b:2"]).is_err());
    assert!(Config::cluster(["http://a:1"]).is_err());
}

#[cfg(feature = "sentinel")]
#[test]
fn sentinel_urls_name_the_sentinels_and_the_service() {
    let c = Config::from_url("redis+sentinel://app:s3cret@10.0.0.1,10.0.0.2:26380/mymaster")
        .unwrap()
        .sentinel_credentials(None::<String>, "sentinel-pw");
    let Target::Sentinel { sentinels, service } = &c.target else {
        panic!("a sentinel target")
    };
    let sentinels: Vec<&str> = sentinels.iter().map(::url::Url::as_str).collect();
    assert_eq!(
        sentinels,
        ["redis://10.0.0.1:26379", "redis://10.0.0.2:26380"]
    );
    assert_eq!(service, "mymaster");
    assert_eq!(c.username.as_deref(), Some("app"));
    let shown = format!("{c} {c:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("sentinel-pw"),
        "{shown}"
    );
    assert!(
        shown.contains("redis+sentinel://app:***@10.0.0.1:26379,10.0.0.2:26380/mymaster"),
        "{shown}"
    );
    for (url, says) in [
        ("redis+sentinel://10.0.0.1", "names the monitored primary"),
        ("redis+sentinel://10.0.0.1/", "names the monitored primary"),
        (
            "redis+sentinel://10.0.0.1/a?x=1",
            "not a Sentinel service name",
        ),
        ("redis+sentinel:///mymaster", "empty"),
    ] {
        let err = Config::from_url(url).unwrap_err().to_string();
        assert!(err.contains(says), "{url}: {err}");
    }
}
