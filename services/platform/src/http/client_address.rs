//! Who is calling: the client's IP address, for throttles keyed by address.
//!
//! It is the TCP peer address, unless the peer is a proxy listed in
//! `http.trusted_proxies`: then `X-Forwarded-For` is read from the right (each proxy
//! appends the address it saw) and the first hop that is not a trusted proxy is the
//! client. Entries left of it were written by the client and are never believed.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request},
    http::{request::Parts, HeaderMap},
};
use serde::{Deserialize, Deserializer};

/// An IP address range: `10.0.0.0/8`, `fd00::/8`, or one address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_matches(u128::from(net), u128::from(ip), self.prefix, 128),
            _ => false,
        }
    }
}

fn prefix_matches(net: u128, ip: u128, prefix: u8, bits: u8) -> bool {
    let shift = u32::from(bits - prefix);
    shift >= u32::from(bits) || (net >> shift) == (ip >> shift)
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an IP address or CIDR range (e.g. 10.0.0.0/8)");
        let (address, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network = canonical(address.parse().map_err(|_| bad())?);
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p.parse().ok().filter(|p| *p <= bits).ok_or_else(bad)?,
        };
        Ok(Self { network, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`http.trusted_proxies`): a
/// comma-separated list (or a TOML array) of addresses and CIDR ranges. Empty by
/// default: the client address is the connection's peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',').map(str::trim).filter(|e| !e.is_empty()).map(IpNet::from_str).collect::<Result<_, _>>().map(Self)
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            List(Vec<String>),
        }
        let text = match Form::deserialize(d)? {
            Form::Text(s) => s,
            Form::List(items) => items.join(","),
        };
        text.parse().map_err(|e| serde::de::Error::custom(format!("http.trusted_proxies: {e}")))
    }
}

/// The caller's address, as [`resolve`] decides it. Handlers take it as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address as a rate limit counts it: an IPv6 client by its /64 (one
    /// subscriber's network), so a holder of a prefix cannot get a fresh count per address.
    pub fn group(self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

/// The client of a request that came from `peer` with these headers.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = canonical(peer);
    if !trusted.contains(client) {
        return client;
    }
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    for hop in forwarded.iter().rev().flat_map(|v| v.rsplit(',')) {
        // A hop that is not an address ends the chain we can trust.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = canonical(ip);
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

/// An IPv4 client of a dual-stack socket shows as `::ffff:a.b.c.d`; it is `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Works out the [`ClientAddress`] of a request behind trusted proxies once, for the
/// extractor. Without trusted proxies the client is the peer, which the extractor reads
/// itself: nothing is done or stored for requests whose handler never asks.
pub(super) fn attach(trusted: &TrustedProxies, req: &mut Request) {
    if trusted.0.is_empty() {
        return;
    }
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = resolve(peer.ip(), req.headers(), trusted);
        req.extensions_mut().insert(ClientAddress(client));
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<ClientAddress>() {
            return Ok(*client);
        }
        // No trusted proxies: the peer. Only a router served without connection info (a
        // unit test) lacks it.
        Ok(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(ClientAddress(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), |ConnectInfo(peer)| {
                ClientAddress(canonical(peer.ip()))
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in forwarded {
            h.append("x-forwarded-for", f.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")) && !net.contains(ip("10.2.0.1")));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains(ip("203.0.113.9")));
        assert!(
            "192.0.2.7".parse::<IpNet>().unwrap().contains(ip("::ffff:192.0.2.7")),
            "an IPv4-mapped peer is its IPv4 address"
        );
        assert!("fd00::/8".parse::<IpNet>().unwrap().contains(ip("fd12::1")));
        for bad in ["10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        let list: TrustedProxies = " 10.0.0.0/8, 127.0.0.1 ".parse().unwrap();
        assert!(list.contains(ip("127.0.0.1")) && list.contains(ip("10.9.9.9")) && !list.contains(ip("127.0.0.2")));
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::default());
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(
            resolve(ip("198.51.100.4"), &headers(&["203.0.113.9"]), &none),
            ip("198.51.100.4"),
            "X-Forwarded-For ignored"
        );
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            resolve(ip("198.51.100.4"), &headers(&["203.0.113.9"]), &proxies),
            ip("198.51.100.4"),
            "not from a proxy"
        );
        assert_eq!(resolve(ip("10.0.0.2"), &headers(&["203.0.113.9"]), &proxies), ip("203.0.113.9"));
        // The client may send its own X-Forwarded-For: only the hops proxies appended count.
        assert_eq!(resolve(ip("10.0.0.2"), &headers(&["1.2.3.4, 203.0.113.9, 10.0.0.7"]), &proxies), ip("203.0.113.9"));
        assert_eq!(
            resolve(ip("10.0.0.2"), &headers(&["1.2.3.4", "203.0.113.9"]), &proxies),
            ip("203.0.113.9"),
            "several headers read as one list"
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), &headers(&["garbage, 10.0.0.7"]), &proxies),
            ip("10.0.0.7"),
            "an unreadable hop stops the walk"
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), &headers(&[]), &proxies),
            ip("10.0.0.2"),
            "a proxy without the header is the client"
        );
    }
}
