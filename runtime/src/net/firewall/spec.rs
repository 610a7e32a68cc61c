//! The firewall intent: plain types the caller fills from the app model.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// An inclusive port range (`port=N` is N..=N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn one(p: u16) -> Self {
        PortRange { first: p, last: p }
    }
}

/// Who an `allow` admits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Another container of the same app, by name.
    Container(String),
    /// The host itself (any of its addresses).
    Host,
    /// Everyone: other containers, the host and the outside.
    Any,
    /// Senders in a network, on the forward path: never the host, even from an address inside.
    Cidr(Ipv4Net),
}

/// Where an `allow-egress` lets a container go.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// Any of the host's addresses, the gateway included, but its link-local ones.
    Host,
    /// A network behind the host: never the host itself, even where the CIDR covers its
    /// addresses, and 169.254.0.0/16 only when the CIDR lies inside it.
    Cidr(Ipv4Net),
}

/// `allow from=... port=... proto=...`. `proto: None` with `ports: None` admits every protocol;
/// `proto: None` with ports means both TCP and UDP on those ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allow {
    pub from: Source,
    pub ports: Option<PortRange>,
    pub proto: Option<Proto>,
}

/// `allow-egress to=... port=... proto=...` (same rules for `proto`/`ports` as [`Allow`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowEgress {
    pub to: Destination,
    pub ports: Option<PortRange>,
    pub proto: Option<Proto>,
}

/// Traffic from a container to the outside world.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Egress {
    /// Masqueraded to the outside (the default).
    #[default]
    Allow,
    /// Dropped, except to admitted peers and `allow-egress` destinations.
    Deny,
}

/// `publish HOSTPORT to=PORT host-ip=IP proto=...`. `host_ip` 0.0.0.0 means every address of the
/// host (as Docker); a 127/8 address is reachable from the host only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// One container's rules. The container must have an address in the app's `NetRecord`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRules {
    pub name: String,
    pub allow: Vec<Allow>,
    pub egress: Egress,
    pub allow_egress: Vec<AllowEgress>,
    pub publish: Vec<Publish>,
}

impl ContainerRules {
    /// A container nothing may reach, with egress allowed.
    pub fn new(name: impl Into<String>) -> Self {
        ContainerRules {
            name: name.into(),
            allow: vec![],
            egress: Egress::Allow,
            allow_egress: vec![],
            publish: vec![],
        }
    }
}

/// The firewall of one app.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallSpec {
    pub containers: Vec<ContainerRules>,
}
