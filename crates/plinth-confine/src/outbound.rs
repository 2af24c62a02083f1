//! Outbound HTTP requests (alert webhooks today; callbacks, OIDC discovery
//! and forges later) pass one allowlist.
//!
//! The allowlist is a list of entries given with `--outbound-allow`:
//!
//! - `public` — any globally routable address (the default when no entry
//!   is given);
//! - a host name (`hooks.slack.com`) or a suffix (`*.corp.example`) — the
//!   names it resolves to are trusted;
//! - an address or CIDR block (`10.20.0.0/16`, `fd00::/8`).
//!
//! Whatever the list, an address is checked after the name is resolved, on
//! every connection and redirect, so a name that resolves to a forbidden
//! address (DNS rebinding) is refused too. Loopback is allowed only in
//! local mode; link-local addresses (cloud metadata at `169.254.169.254`),
//! private ranges and other special addresses only when a CIDR entry names
//! them.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why an outbound request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    #[error("`{entry}` is not an outbound allowlist entry; give `public`, a host name, `*.suffix`, an address or a CIDR block such as 10.0.0.0/8")]
    BadEntry { entry: String },
    #[error("`{url}` is not an http(s) URL with a host")]
    BadUrl { url: String },
    #[error("{target} is {class}; outbound requests there are refused{hint}")]
    Refused { target: String, class: &'static str, hint: String },
    #[error("{host} does not resolve: {message}")]
    Unresolved { host: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Host(String),
    Suffix(String),
    Net(IpNet),
}

/// The allowlist every outbound request passes.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    rules: Vec<Rule>,
    public: bool,
    local_mode: bool,
}

/// What kind of address an IP is, for the default rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Loopback,
    LinkLocal,
    Private,
    Special,
}

impl Class {
    fn describe(self) -> &'static str {
        match self {
            Class::Public => "a public address",
            Class::Loopback => "a loopback address",
            Class::LinkLocal => "a link-local address (where cloud metadata services live)",
            Class::Private => "a private address",
            Class::Special => "a special-purpose address",
        }
    }
}

impl OutboundPolicy {
    /// The policy from `--outbound-allow` entries; `local_mode` (a loopback
    /// listener without authentication) also allows loopback.
    pub fn new(entries: &[String], local_mode: bool) -> Result<OutboundPolicy, OutboundError> {
        let mut rules = Vec::new();
        let mut public = entries.is_empty();
        for raw in entries {
            let entry = raw.trim().to_ascii_lowercase();
            if entry == "public" {
                public = true;
            } else if let Ok(net) = entry.parse::<IpNet>() {
                rules.push(Rule::Net(net));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                rules.push(Rule::Net(IpNet::from(ip)));
            } else if let Some(suffix) = entry.strip_prefix("*.") {
                if !valid_host(suffix) {
                    return Err(OutboundError::BadEntry { entry: raw.clone() });
                }
                rules.push(Rule::Suffix(format!(".{suffix}")));
            } else if valid_host(&entry) {
                rules.push(Rule::Host(entry));
            } else {
                return Err(OutboundError::BadEntry { entry: raw.clone() });
            }
        }
        Ok(OutboundPolicy { rules, public, local_mode })
    }

    /// Public addresses only, loopback too in local mode.
    pub fn default_for(local_mode: bool) -> OutboundPolicy {
        OutboundPolicy { rules: Vec::new(), public: true, local_mode }
    }

    pub fn local_mode(&self) -> bool {
        self.local_mode
    }

    /// Checks a URL before anything is sent: scheme, and the address when
    /// the host is written as one. Names are checked when they resolve.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, OutboundError> {
        let bad = || OutboundError::BadUrl { url: hide_userinfo(url) };
        let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad());
        }
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(None, IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(None, IpAddr::V6(ip))?,
            Some(url::Host::Domain(host)) if !host.is_empty() => {
                if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
                    self.check_ip(Some(host), IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                }
            }
            _ => return Err(bad()),
        }
        Ok(parsed)
    }

    /// Whether a connection to `ip` (resolved from `host`, when a name was
    /// given) is allowed.
    pub fn check_ip(&self, host: Option<&str>, ip: IpAddr) -> Result<(), OutboundError> {
        let ip = canonical_ip(ip);
        let class = classify(ip);
        let never = ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST);
        if let Some(host) = host.map(|h| h.trim_end_matches('.').to_ascii_lowercase()) {
            let named = self.rules.iter().any(|rule| match rule {
                Rule::Host(name) => *name == host,
                Rule::Suffix(suffix) => host.ends_with(suffix.as_str()),
                Rule::Net(_) => false,
            });
            if named && !never {
                return Ok(());
            }
        }
        if !never && self.rules.iter().any(|rule| matches!(rule, Rule::Net(net) if net.contains(&ip))) {
            return Ok(());
        }
        let allowed = !never
            && match class {
                Class::Public => self.public,
                Class::Loopback => self.local_mode,
                _ => false,
            };
        if allowed {
            return Ok(());
        }
        let target = match host {
            Some(host) => format!("{host} ({ip})"),
            None => ip.to_string(),
        };
        let hint = if never {
            String::new()
        } else if class == Class::Loopback {
            "; loopback is allowed only when the server runs in local mode, or with --outbound-allow 127.0.0.1"
                .to_string()
        } else {
            format!("; if it is meant, allow it with --outbound-allow {ip}")
        };
        let class = if never { "an address no request may go to" } else { class.describe() };
        Err(OutboundError::Refused { target, class, hint })
    }

    /// An HTTP client whose every connection and redirect passes this
    /// policy (no proxies, at most 3 redirects).
    pub fn client(self: &Arc<Self>, timeout: Duration) -> reqwest::Client {
        let for_redirects = self.clone();
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .no_proxy()
            .dns_resolver(Arc::new(Guard(self.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 3 {
                    return attempt.error("more than 3 redirects");
                }
                match for_redirects.check_url(attempt.url().as_str()) {
                    Ok(_) => attempt.follow(),
                    Err(error) => attempt.error(error),
                }
            }))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    }
}

/// Resolves names and keeps only the addresses the policy allows.
struct Guard(Arc<OutboundPolicy>);

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| OutboundError::Unresolved { host: host.clone(), message: e.to_string() })?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut refused = None;
            for address in found {
                match policy.check_ip(Some(&host), address.ip()) {
                    Ok(()) => allowed.push(address),
                    Err(error) => refused = Some(error),
                }
            }
            if allowed.is_empty() {
                let error = refused
                    .unwrap_or(OutboundError::Unresolved { host: host.clone(), message: "no addresses".to_string() });
                tracing::warn!(%error, "outbound request refused");
                return Err(Box::new(error) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// IPv4 addresses carried inside IPv6 (mapped, NAT64, 6to4) judged as IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return IpAddr::V4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            if s[0] == 0x2002 {
                return IpAddr::V4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_link_local() {
        Class::LinkLocal
    } else if ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        // RFC 1918 and the shared (CGNAT) range, where some clouds keep
        // their metadata service (100.100.100.200).
        Class::Private
    } else if ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
    {
        Class::Special
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if ip.is_loopback() {
        Class::Loopback
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Class::LinkLocal
    } else if (s[0] & 0xfe00) == 0xfc00 {
        // Unique local addresses, including AWS's metadata at fd00:ec2::254.
        Class::Private
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] & 0xe000) != 0x2000
    {
        // Documentation, and everything outside global unicast 2000::/3.
        Class::Special
    } else {
        Class::Public
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn hide_userinfo(url: &str) -> String {
    crate::git::hide_credentials(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_refuse_metadata_private_and_loopback() {
        let policy = OutboundPolicy::new(&[], false).unwrap();
        assert!(policy.check_ip(None, ip("93.184.216.34")).is_ok());
        assert!(policy.check_ip(None, ip("2606:4700::6810:85e5")).is_ok());
        for refused in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::",
        ] {
            let error = policy.check_ip(None, ip(refused)).unwrap_err().to_string();
            assert!(error.contains("refused"), "{refused}: {error}");
        }
        let error = policy.check_ip(None, ip("169.254.169.254")).unwrap_err().to_string();
        assert!(error.contains("link-local") && error.contains("--outbound-allow"), "{error}");
    }

    #[test]
    fn local_mode_allows_loopback_only() {
        let policy = OutboundPolicy::new(&[], true).unwrap();
        assert!(policy.check_ip(None, ip("127.0.0.1")).is_ok());
        assert!(policy.check_ip(None, ip("::1")).is_ok());
        assert!(policy.check_ip(None, ip("169.254.169.254")).is_err());
        assert!(policy.check_url("http://localhost:9/x").is_ok());
        let remote = OutboundPolicy::new(&[], false).unwrap();
        assert!(remote.check_url("http://localhost:9/x").is_err());
        assert!(remote.check_url("http://127.0.0.1:9/x").is_err());
        assert!(remote.check_url("http://[::ffff:127.0.0.1]:9/x").is_err());
    }

    #[test]
    fn entries_replace_the_default() {
        let entries = ["hooks.example.com".to_string(), "*.corp.example".into(), "10.20.0.0/16".into()];
        let policy = OutboundPolicy::new(&entries, false).unwrap();
        assert!(policy.check_ip(Some("hooks.example.com"), ip("10.9.9.9")).is_ok());
        assert!(policy.check_ip(Some("alerts.corp.example"), ip("10.9.9.9")).is_ok());
        assert!(policy.check_ip(None, ip("10.20.3.4")).is_ok());
        assert!(policy.check_ip(None, ip("93.184.216.34")).is_err(), "public is no longer implied");
        assert!(policy.check_ip(Some("hooks.example.com"), ip("0.0.0.0")).is_err());
        let with_public = OutboundPolicy::new(&["public".into(), "169.254.169.254/32".into()], false).unwrap();
        assert!(with_public.check_ip(None, ip("93.184.216.34")).is_ok());
        assert!(with_public.check_ip(None, ip("169.254.169.254")).is_ok());
        for bad in ["", "-x", "a b", "10.0.0.0/99", "*."] {
            assert!(OutboundPolicy::new(&[bad.to_string()], false).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_checked_before_sending() {
        let policy = OutboundPolicy::new(&[], false).unwrap();
        assert!(policy.check_url("https://hooks.slack.com/services/x").is_ok());
        assert!(policy.check_url("http://169.254.169.254/latest/meta-data/").is_err());
        assert!(policy.check_url("http://[fe80::1]/").is_err());
        assert!(policy.check_url("file:///etc/passwd").is_err());
        assert!(policy.check_url("gopher://x/").is_err());
        assert!(policy.check_url("not a url").is_err());
        let error = policy.check_url("ftp://user:secret@h/").unwrap_err().to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn the_client_refuses_names_that_resolve_to_forbidden_addresses() {
        let policy = Arc::new(OutboundPolicy::new(&[], false).unwrap());
        let client = policy.client(Duration::from_secs(5));
        // `localhost` resolves to loopback, which is not allowed outside local mode.
        let error = client.get("http://localhost:1/").send().await.unwrap_err();
        let mut chain = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            chain.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        assert!(chain.contains("outbound requests there are refused"), "{chain}");
    }
}
