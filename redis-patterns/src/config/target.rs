//! Configuration URLs: parsing every form (`redis://`, `rediss://`, `unix://`, `mem://`, and
//! the cluster and sentinel forms), and printing them back with secrets masked.

use super::{Config, Secret};
use crate::error::{Error, Result};

#[derive(Clone)]
pub(crate) enum Target {
    /// The URL with any password removed (it lives in [`Config::password`](super::Config::password)).
    Redis(::url::Url),
    /// `redis+cluster://` or `rediss+cluster://`: the seed nodes, as `redis://host:port` (or
    /// `rediss://`) URLs without credentials; the rest of the cluster is discovered.
    Cluster(Vec<::url::Url>),
    /// `redis+sentinel://` or `rediss+sentinel://`: the sentinels (URLs without credentials)
    /// and the name they monitor the primary under.
    Sentinel {
        sentinels: Vec<::url::Url>,
        service: String,
    },
    /// `mem://` (a private store) or `mem://name` (a store shared by every client of that name
    /// in this process).
    Memory(Option<String>),
}

pub(super) fn parse_target(url: &str) -> Result<Target> {
    let bad = |why: &str| {
        Error::Config(format!(
            "{why}; expected `redis://host[:port][/db]`, `rediss://…`, `unix:///path` or `mem://[name]`"
        ))
    };
    if let Some(rest) = url.strip_prefix("mem://") {
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("a `mem://` URL takes only a store name"));
        }
        return Ok(Target::Memory((!rest.is_empty()).then(|| rest.to_owned())));
    }
    if let Some((scheme, nodes)) = url.split_once("+cluster://") {
        return parse_nodes(scheme, "cluster", nodes, 6379).map(Target::Cluster);
    }
    if let Some((scheme, rest)) = url.split_once("+sentinel://") {
        let (nodes, service) = rest.trim_end_matches('/').rsplit_once('/').ok_or_else(|| {
            Error::Config(
                "a sentinel URL names the monitored primary: \
                 `redis+sentinel://host:port,host:port/mymaster`"
                    .into(),
            )
        })?;
        if service.is_empty() || service.contains(['?', '#']) {
            return Err(Error::Config(format!(
                "`{service}` is not a Sentinel service name (give it as the URL's path, no options)"
            )));
        }
        let sentinels = parse_nodes(scheme, "sentinel", nodes, 26379)?;
        return Ok(Target::Sentinel {
            sentinels,
            service: service.to_owned(),
        });
    }
    let parsed = ::url::Url::parse(url).map_err(|e| bad(&format!("cannot parse the URL ({e})")))?;
    match parsed.scheme() {
        "redis" | "unix" | "redis+unix" => Ok(Target::Redis(parsed)),
        "rediss" if cfg!(feature = "tls") => Ok(Target::Redis(parsed)),
        "rediss" => Err(Error::Config(
            "`rediss://` needs TLS support: enable the `tls` feature of redis-patterns".into(),
        )),
        other => Err(bad(&format!("unsupported scheme `{other}`"))),
    }
}

/// `[user[:password]@]host[:port],host[:port],…` after `redis+cluster://` (or
/// `+sentinel://`): one URL per node, the credentials on the first (taken out by
/// [`Config::take_credentials`]).
fn parse_nodes(scheme: &str, kind: &str, rest: &str, default_port: u16) -> Result<Vec<::url::Url>> {
    let bad = |why: String| {
        Error::Config(format!(
            "{why}; expected `redis+{kind}://[user:password@]host:port,host:port,…` (or \
             `rediss+{kind}://` with feature `tls`)"
        ))
    };
    const ENABLED: [(&str, bool); 2] = [
        ("cluster", cfg!(feature = "cluster")),
        ("sentinel", cfg!(feature = "sentinel")),
    ];
    let enabled = ENABLED.iter().any(|&(name, on)| name == kind && on);
    if !enabled {
        return Err(Error::Config(format!(
            "a `+{kind}://` URL needs the `{kind}` feature of redis-patterns"
        )));
    }
    match scheme {
        "redis" => {}
        "rediss" if cfg!(feature = "tls") => {}
        "rediss" => {
            return Err(Error::Config(format!(
                "`rediss+{kind}://` needs TLS support: enable the `tls` feature of redis-patterns"
            )));
        }
        other => return Err(bad(format!("unsupported scheme `{other}+{kind}`"))),
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(bad(format!(
            "a {kind} URL takes no database or options (a cluster has only database 0)"
        )));
    }
    let (user_info, hosts) = match rest.rsplit_once('@') {
        Some((user_info, hosts)) => (Some(user_info), hosts),
        None => (None, rest),
    };
    let mut nodes = Vec::new();
    for (i, host) in hosts.split(',').enumerate() {
        if host.is_empty() {
            return Err(bad(format!("node {} is empty", i + 1)));
        }
        let text = match (i, user_info) {
            (0, Some(user_info)) => format!("{scheme}://{user_info}@{host}"),
            _ => format!("{scheme}://{host}"),
        };
        let mut node = ::url::Url::parse(&text)
            .map_err(|e| bad(format!("cannot parse node `{host}` ({e})")))?;
        if node.host_str().is_none_or(str::is_empty) {
            return Err(bad(format!("node `{host}` has no host")));
        }
        if node.port().is_none() {
            let _ = node.set_port(Some(default_port));
        }
        nodes.push(node);
    }
    Ok(nodes)
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Config {
    /// Moves user name and password out of the URLs into their fields, so that the builder
    /// methods can override them and printing a URL never leaks them. `unix:///path?user=…&
    /// pass=…` (redis-rs's socket form) carries them as query parameters: those too.
    pub(super) fn take_credentials(&mut self) {
        let urls: &mut [::url::Url] = match &mut self.target {
            Target::Redis(url) => std::slice::from_mut(url),
            Target::Cluster(nodes) => nodes,
            Target::Sentinel { sentinels, .. } => sentinels,
            Target::Memory(_) => return,
        };
        for parsed in urls {
            if !parsed.username().is_empty() {
                self.username = Some(percent_decode(parsed.username()));
            }
            if let Some(password) = parsed.password() {
                self.password = Some(Secret(percent_decode(password)));
            }
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            let mut kept = Vec::new();
            for (name, value) in parsed.query_pairs() {
                match &*name {
                    "pass" | "password" => self.password = Some(Secret(value.into_owned())),
                    "user" | "username" => self.username = Some(value.into_owned()),
                    _ => kept.push((name.into_owned(), value.into_owned())),
                }
            }
            if parsed.query().is_some() {
                if kept.is_empty() {
                    parsed.set_query(None);
                } else {
                    parsed.query_pairs_mut().clear().extend_pairs(kept);
                }
            }
        }
    }

    /// Where the config points, as a URL with `***` for the password.
    pub(super) fn shown_target(&self) -> String {
        match &self.target {
            Target::Memory(None) => "mem://".to_owned(),
            Target::Memory(Some(name)) => format!("mem://{name}"),
            Target::Redis(url) => self.shown_url(url),
            Target::Cluster(nodes) => self.shown_nodes("cluster", nodes),
            Target::Sentinel { sentinels, service } => {
                format!("{}/{service}", self.shown_nodes("sentinel", sentinels))
            }
        }
    }

    /// `redis+<kind>://user:***@host:port,host:port`.
    fn shown_nodes(&self, kind: &str, nodes: &[::url::Url]) -> String {
        let mut shown = String::new();
        for (i, node) in nodes.iter().enumerate() {
            if i == 0 {
                // `redis://user:***@host:port/` → `redis+cluster://user:***@host:port`
                let first = self.shown_url(node);
                let first = first.strip_suffix('/').unwrap_or(&first);
                shown.push_str(&first.replacen("://", &format!("+{kind}://"), 1));
            } else {
                shown.push(',');
                shown.push_str(node.host_str().unwrap_or_default());
                if let Some(port) = node.port() {
                    shown.push_str(&format!(":{port}"));
                }
            }
        }
        shown
    }

    /// The URL as given, with the user name and `***` in place of the password: as user info
    /// for host URLs, as query parameters for the socket form.
    pub(super) fn shown_url(&self, url: &::url::Url) -> String {
        let mut shown = url.clone();
        let as_user_info = shown.has_host() && !shown.host_str().unwrap_or_default().is_empty();
        if as_user_info {
            if let Some(user) = &self.username {
                let _ = shown.set_username(user);
            }
            if self.password.is_some() {
                let _ = shown.set_password(Some("***"));
            }
        } else {
            let mut query = shown.query_pairs_mut();
            if let Some(user) = &self.username {
                query.append_pair("user", user);
            }
            if self.password.is_some() {
                query.append_pair("pass", "***");
            }
        }
        shown.as_str().replace("pass=%2A%2A%2A", "pass=***")
    }
}
