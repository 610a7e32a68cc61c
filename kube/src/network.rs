//! Services and NetworkPolicies.
//!
//! Each container gets a headless Service under its own name: its name resolves to the pod's
//! address, so `db:5432` reaches any port as on tfctl's app network. A `publish` gets a NodePort
//! or LoadBalancer Service of its own. The firewall becomes policies: the app's pods deny
//! everything by default, may reach each other and cluster DNS, and each `allow`, `publish`,
//! `egress` and `allow-egress` admits what tfctl's nftables rules admit.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tfctl_schema::model::{App, Container, EgressDest, Peer, PortRange, Probe, Proto};

use crate::{dns_name, meta, pod_labels, Object, Out, PublishAs, Resource, APP_LABEL};

/// tfctl drops traffic to link-local addresses (cloud metadata services) unless a CIDR inside
/// this network allows it.
const LINK_LOCAL: &str = "169.254.0.0/16";
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

/// The ports tfctl knows a container serves: those others are allowed to, published and
/// probed. A headless Service lists them for people to read; it does not limit any.
fn known_ports(c: &Container) -> Vec<(u16, Proto)> {
    let mut ports = Ports(Vec::new());
    for a in &c.allow {
        if let Some(r) = a.ports.filter(|r| r.start == r.end) {
            ports.insert((r.start, a.proto.unwrap_or(Proto::Tcp)));
        }
    }
    for p in &c.publish {
        ports.insert((p.container_port, p.proto));
    }
    match c.health.as_ref().map(|h| &h.probe) {
        Some(Probe::Tcp(p)) => {
            ports.insert((*p, Proto::Tcp));
        }
        Some(Probe::Http(url)) => {
            if let Some(h) = crate::workload::parse_http(url) {
                ports.insert((h.port, Proto::Tcp));
            }
        }
        _ => {}
    }
    ports.0.sort_by_key(|(port, proto)| (*port, *proto == Proto::Udp));
    ports.0
}

/// Ports without duplicates.
struct Ports(Vec<(u16, Proto)>);

impl Ports {
    fn insert(&mut self, p: (u16, Proto)) {
        if !self.0.contains(&p) {
            self.0.push(p);
        }
    }
}

pub fn services(app: &App, publish_as: PublishAs, out: &mut Out) {
    // An init container has no pod of its own to serve from.
    let init_only = crate::workload::init_only(app);
    for c in app.containers.iter().filter(|c| !init_only.contains(&c.name)) {
        let ports: Vec<ServicePort> = known_ports(c)
            .into_iter()
            .map(|(port, proto)| ServicePort {
                name: Some(format!("{}-{port}", proto_name(proto).to_ascii_lowercase())),
                port: i32::from(port),
                protocol: Some(proto_name(proto).into()),
                ..Default::default()
            })
            .collect();
        let svc = Service {
            metadata: meta(&c.name, Some(&c.name)),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                selector: Some(pod_labels(app, &c.name)),
                ports: (!ports.is_empty()).then_some(ports),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut o = Object::new(Resource::Service(svc));
        o.notes.push(format!(
            "Headless: \"{}\" resolves to the pod's address, so every port answers as on tfctl's app network; the ports listed are those the app file names.",
            c.name
        ));
        out.objects.push(o);
        if !c.publish.is_empty() {
            published(app, c, publish_as, out);
        }
    }
}

fn published(app: &App, c: &Container, publish_as: PublishAs, out: &mut Out) {
    let mut notes = Vec::new();
    let mut ports = Vec::new();
    for p in &c.publish {
        let node = format!("container \"{}\" > publish {}", c.name, p.host_port);
        if !p.host_ip.is_unspecified() {
            notes.push(out.warn(
                &node,
                format!("host-ip=\"{}\" is not exported: a Service listens on every node address (restrict who may connect with the cluster's firewall or loadBalancerSourceRanges)", p.host_ip),
            ));
        }
        let port = if p.host_port == 0 { p.container_port } else { p.host_port };
        let node_port = match publish_as {
            PublishAs::NodePort if NODE_PORTS.contains(&p.host_port) => Some(i32::from(p.host_port)),
            PublishAs::NodePort => {
                notes.push(format!(
                    "publish {}: host port {} lies outside the NodePort range 30000-32767, so Kubernetes picks the node port (`kubectl get svc {}-published`).",
                    p.container_port, p.host_port, c.name
                ));
                None
            }
            PublishAs::LoadBalancer => None,
        };
        ports.push(ServicePort {
            name: Some(format!("{}-{port}", proto_name(p.proto).to_ascii_lowercase())),
            port: i32::from(port),
            target_port: Some(IntOrString::Int(i32::from(p.container_port))),
            node_port,
            protocol: Some(proto_name(p.proto).into()),
            ..Default::default()
        });
    }
    let svc = Service {
        metadata: meta(&dns_name(&[&c.name, "published"]), Some(&c.name)),
        spec: Some(ServiceSpec {
            type_: Some(match publish_as {
                PublishAs::NodePort => "NodePort".into(),
                PublishAs::LoadBalancer => "LoadBalancer".into(),
            }),
            selector: Some(pod_labels(app, &c.name)),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut o = Object::new(Resource::Service(svc));
    o.notes = notes;
    out.objects.push(o);
}

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: Some(labels), ..Default::default() }
}

fn app_selector(app: &App) -> LabelSelector {
    selector(BTreeMap::from([(APP_LABEL.to_string(), app.name.clone())]))
}

/// Policy ports for a port range and protocol (`None`: tcp and udp; no range: every port).
fn policy_ports(ports: Option<PortRange>, proto: Option<Proto>) -> Vec<NetworkPolicyPort> {
    let protos = match proto {
        Some(p) => vec![p],
        None => vec![Proto::Tcp, Proto::Udp],
    };
    protos
        .into_iter()
        .map(|p| NetworkPolicyPort {
            protocol: Some(proto_name(p).into()),
            port: ports.map(|r| IntOrString::Int(i32::from(r.start))),
            end_port: ports.filter(|r| r.end != r.start).map(|r| i32::from(r.end)),
        })
        .collect()
}

fn policy(name: String, select: LabelSelector, ingress: Option<Vec<NetworkPolicyIngressRule>>, egress: Option<Vec<NetworkPolicyEgressRule>>) -> NetworkPolicy {
    let mut types = Vec::new();
    if ingress.is_some() {
        types.push("Ingress".to_string());
    }
    if egress.is_some() {
        types.push("Egress".to_string());
    }
    NetworkPolicy {
        metadata: meta(&name, None),
        spec: Some(NetworkPolicySpec { pod_selector: Some(select), policy_types: Some(types), ingress, egress }),
    }
}

fn push(out: &mut Out, p: NetworkPolicy, notes: Vec<String>) {
    let mut o = Object::new(Resource::NetworkPolicy(p));
    o.notes = notes;
    out.objects.push(o);
}

fn ip_block(cidr: String, except: Option<Vec<String>>) -> NetworkPolicyPeer {
    NetworkPolicyPeer { ip_block: Some(IPBlock { cidr, except }), ..Default::default() }
}

pub fn policies(app: &App, out: &mut Out) {
    // Default deny, both ways: policies only ever add to what a pod may do.
    push(
        out,
        policy(dns_name(&[&app.name, "default-deny"]), app_selector(app), Some(Vec::new()), Some(Vec::new())),
        vec![format!("Nothing reaches app \"{}\"'s pods, and they reach nothing, unless a policy below admits it, as tfctl's firewall does.", app.name)],
    );
    // Names resolve through the cluster's DNS, where tfctl answers them itself.
    let dns = NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(selector(BTreeMap::from([("kubernetes.io/metadata.name".into(), "kube-system".into())]))),
            pod_selector: Some(selector(BTreeMap::from([("k8s-app".into(), "kube-dns".into())]))),
            ..Default::default()
        }]),
        ports: Some(vec![
            NetworkPolicyPort { protocol: Some("UDP".into()), port: Some(IntOrString::Int(53)), end_port: None },
            NetworkPolicyPort { protocol: Some("TCP".into()), port: Some(IntOrString::Int(53)), end_port: None },
        ]),
    };
    // A container may always connect to the app's others; whether they admit it is their
    // `allow`'s business.
    let peers = NetworkPolicyEgressRule { to: Some(vec![NetworkPolicyPeer { pod_selector: Some(app_selector(app)), ..Default::default() }]), ports: None };
    push(
        out,
        policy(dns_name(&[&app.name, "egress-app"]), app_selector(app), None, Some(vec![dns, peers])),
        vec!["The app's containers may connect to each other and to the cluster's DNS (kube-dns in kube-system).".into()],
    );
    for c in &app.containers {
        ingress(app, c, out);
        egress(app, c, out);
    }
}

fn ingress(app: &App, c: &Container, out: &mut Out) {
    let me = selector(pod_labels(app, &c.name));
    for (i, a) in c.allow.iter().enumerate() {
        let node = format!("container \"{}\" > allow from=\"{}\"", c.name, peer_text(&a.from));
        let ports = policy_ports(a.ports, a.proto);
        let (from, notes) = match &a.from {
            Peer::Container(other) => (
                Some(vec![NetworkPolicyPeer { pod_selector: Some(selector(pod_labels(app, other))), ..Default::default() }]),
                Vec::new(),
            ),
            // No `from`: every source.
            Peer::Any => (None, Vec::new()),
            Peer::Cidr(net) => (Some(vec![ip_block(format!("{}/{}", net.network(), net.prefix), None)]), Vec::new()),
            Peer::Host => {
                let note = out.warn(
                    &node,
                    "a NetworkPolicy cannot name the node: this policy admits nothing until you give it an ipBlock with your nodes' addresses (most network plugins always admit the kubelet's probes)",
                );
                (Some(Vec::new()), vec![note])
            }
        };
        let rule = NetworkPolicyIngressRule { from, ports: Some(ports) };
        push(out, policy(dns_name(&[&c.name, "allow", &(i + 1).to_string()]), me.clone(), Some(vec![rule]), None), notes);
    }
    if !c.publish.is_empty() {
        // A published port is admitted from anywhere, as tfctl's DNAT rule admits it.
        let ports = c.publish.iter().flat_map(|p| policy_ports(Some(PortRange { start: p.container_port, end: p.container_port }), Some(p.proto))).collect();
        let rule = NetworkPolicyIngressRule { from: None, ports: Some(ports) };
        push(
            out,
            policy(dns_name(&[&c.name, "published"]), me, Some(vec![rule]), None),
            vec![format!("Container \"{}\"'s published ports, from anywhere.", c.name)],
        );
    }
}

fn egress(app: &App, c: &Container, out: &mut Out) {
    let me = selector(pod_labels(app, &c.name));
    let mut rules = Vec::new();
    let mut notes = Vec::new();
    if c.egress_or(app.egress) == tfctl_schema::model::Egress::Allow {
        // The outside world but link-local addresses, as tfctl's `egress "allow"`.
        rules.push(NetworkPolicyEgressRule { to: Some(vec![ip_block("0.0.0.0/0".into(), Some(vec![LINK_LOCAL.into()]))]), ports: None });
        notes.push(format!("egress \"allow\": container \"{}\" may connect anywhere but {LINK_LOCAL} (cloud metadata).", c.name));
    }
    for a in &c.allow_egress {
        let ports = Some(policy_ports(a.ports, a.proto));
        match &a.to {
            EgressDest::Cidr(net) => {
                let cidr = format!("{}/{}", net.network(), net.prefix);
                // tfctl opens link-local addresses only to a CIDR inside them: a wider one
                // keeps them closed.
                let except = (net.prefix < 16 && net.contains(std::net::Ipv4Addr::new(169, 254, 0, 0))).then(|| vec![LINK_LOCAL.to_string()]);
                rules.push(NetworkPolicyEgressRule { to: Some(vec![ip_block(cidr, except)]), ports });
            }
            EgressDest::Host => notes.push(out.warn(
                format!("container \"{}\" > allow-egress to=\"host\"", c.name),
                "a NetworkPolicy cannot name the node: add an ipBlock with your nodes' addresses to this policy",
            )),
        }
    }
    if !rules.is_empty() || !notes.is_empty() {
        push(out, policy(dns_name(&[&c.name, "egress"]), me, None, Some(rules)), notes);
    }
}

fn peer_text(p: &Peer) -> String {
    match p {
        Peer::Container(c) => c.clone(),
        Peer::Host => "host".into(),
        Peer::Any => "any".into(),
        Peer::Cidr(n) => n.to_string(),
    }
}
