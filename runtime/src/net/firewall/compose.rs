//! Composing one rule as both nft syntax and expressions, in the order nft itself emits them
//! (protocol dependencies inserted before the first field that needs them), so the golden tests
//! can hold every generated rule against `nft --debug=netlink` for its text.

use crate::net::nft::expr::{concat, fib, CmpOp, Expr, Field, Verdict, REG_1};
use ipnet::Ipv4Net;
use nftnl::nftnl_sys::libc;
use std::net::Ipv4Addr;

/// IP protocol numbers.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// A rule under construction.
#[derive(Clone, Debug, Default)]
pub struct RuleDef {
    /// What the rule is for: named in errors.
    pub label: String,
    /// The rule in nft syntax.
    pub text: String,
    pub exprs: Vec<Expr>,
    have_ipv4: bool,
    have_l4: Option<u8>,
}

fn proto_name(p: u8) -> &'static str {
    if p == UDP {
        "udp"
    } else {
        "tcp"
    }
}

fn cmp(op: CmpOp, data: Vec<u8>) -> Expr {
    Expr::Cmp {
        sreg: REG_1,
        op,
        data,
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "",
        CmpOp::Neq => "!= ",
    }
}

impl RuleDef {
    pub fn new(label: impl Into<String>) -> Self {
        RuleDef {
            label: label.into(),
            ..Default::default()
        }
    }

    fn word(&mut self, w: &str) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(w);
    }

    fn need_ipv4(&mut self) {
        if !self.have_ipv4 {
            self.have_ipv4 = true;
            self.exprs.push(Field::Nfproto.load(REG_1));
            self.exprs
                .push(cmp(CmpOp::Eq, vec![libc::NFPROTO_IPV4 as u8]));
        }
    }

    fn need_l4(&mut self, p: u8) {
        if self.have_l4 != Some(p) {
            self.have_l4 = Some(p);
            self.exprs.push(Field::L4proto.load(REG_1));
            self.exprs.push(cmp(CmpOp::Eq, vec![p]));
        }
    }

    /// `iifname "x"` / `oifname != "tfv*"`: a trailing `*` matches a prefix.
    pub fn ifname(mut self, field: Field, pattern: &str, op: CmpOp) -> Self {
        let kw = if field == Field::Iifname {
            "iifname"
        } else {
            "oifname"
        };
        self.word(&format!("{kw} {}\"{pattern}\"", op_text(op)));
        let data = match pattern.strip_suffix('*') {
            Some(prefix) => prefix.as_bytes().to_vec(),
            None => {
                let mut b = vec![0u8; 16];
                b[..pattern.len()].copy_from_slice(pattern.as_bytes());
                b
            }
        };
        self.exprs.push(field.load(REG_1));
        self.exprs.push(cmp(op, data));
        self
    }

    /// `meta nfproto ipv6`.
    pub fn nfproto_ipv6(mut self) -> Self {
        self.word("meta nfproto ipv6");
        self.exprs.push(Field::Nfproto.load(REG_1));
        self.exprs
            .push(cmp(CmpOp::Eq, vec![libc::NFPROTO_IPV6 as u8]));
        self
    }

    /// `meta l4proto tcp`.
    pub fn l4proto(mut self, p: u8) -> Self {
        self.word(&format!("meta l4proto {}", proto_name(p)));
        self.need_l4(p);
        self
    }

    /// `ip saddr 10.0.0.0/8` (or daddr; `!=` with Neq).
    pub fn addr(mut self, field: Field, net: Ipv4Net, op: CmpOp) -> Self {
        let kw = if field == Field::Saddr {
            "ip saddr"
        } else {
            "ip daddr"
        };
        let shown = if net.prefix_len() == 32 {
            net.addr().to_string()
        } else {
            net.to_string()
        };
        self.word(&format!("{kw} {}{shown}", op_text(op)));
        self.need_ipv4();
        let offset = if field == Field::Saddr { 12 } else { 16 };
        let base = libc::NFT_PAYLOAD_NETWORK_HEADER as u32;
        let p = net.prefix_len() as u32;
        let octets = net.network().octets();
        if p.is_multiple_of(8) {
            self.exprs.push(Expr::Payload {
                base,
                offset,
                len: p / 8,
                dreg: REG_1,
            });
            self.exprs
                .push(cmp(op, octets[..(p / 8) as usize].to_vec()));
        } else {
            self.exprs.push(Expr::Payload {
                base,
                offset,
                len: 4,
                dreg: REG_1,
            });
            self.exprs.push(Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: net.netmask().octets().to_vec(),
                xor: vec![0; 4],
            });
            self.exprs.push(cmp(op, octets.to_vec()));
        }
        self
    }

    /// `tcp dport 80`.
    pub fn dport(mut self, proto: u8, port: u16) -> Self {
        self.word(&format!("{} dport {port}", proto_name(proto)));
        self.need_l4(proto);
        self.exprs.push(Field::Dport.load(REG_1));
        self.exprs.push(cmp(CmpOp::Eq, port.to_be_bytes().to_vec()));
        self
    }

    /// `ip saddr . oifname . tcp dport @set` (`!=` when inverted): a lookup of concatenated
    /// fields. `proto` names the protocol of a `Dport` field.
    pub fn lookup(
        mut self,
        fields: &[Field],
        proto: Option<u8>,
        set: &str,
        set_id: u32,
        inverted: bool,
    ) -> Self {
        let words: Vec<String> = fields
            .iter()
            .map(|f| match f {
                Field::Saddr => "ip saddr".to_string(),
                Field::Daddr => "ip daddr".to_string(),
                Field::Iifname => "iifname".to_string(),
                Field::Oifname => "oifname".to_string(),
                Field::Dport => format!("{} dport", proto_name(proto.unwrap_or(TCP))),
                Field::Nfproto => "meta nfproto".to_string(),
                Field::L4proto => "meta l4proto".to_string(),
            })
            .collect();
        self.word(&format!(
            "{} {}@{set}",
            words.join(" . "),
            if inverted { "!= " } else { "" }
        ));
        for f in fields {
            match f {
                Field::Saddr | Field::Daddr => self.need_ipv4(),
                Field::Dport => self.need_l4(proto.unwrap_or(TCP)),
                _ => {}
            }
        }
        let (loads, _) = concat(fields);
        self.exprs.extend(loads);
        self.exprs.push(Expr::Lookup {
            set: set.to_string(),
            set_id: Some(set_id),
            sreg: REG_1,
            inverted,
        });
        self
    }

    /// `ct state established,related`.
    pub fn ct_established(self) -> Self {
        // NF_CT_STATE_BIT(ESTABLISHED) | NF_CT_STATE_BIT(RELATED)
        self.ct_any_bit("ct state established,related", libc::NFT_CT_STATE as u32, 6)
    }

    /// `ct status dnat`: the connection was destination-NATed (by a publish rule).
    pub fn ct_dnat(self) -> Self {
        // IPS_DST_NAT
        self.ct_any_bit("ct status dnat", libc::NFT_CT_STATUS as u32, 0x20)
    }

    /// Matches when conntrack's `key` has any bit of `mask` set (`text` for nft's listing).
    fn ct_any_bit(mut self, text: &str, key: u32, mask: u32) -> Self {
        self.word(text);
        self.exprs.push(Expr::Ct { key, dreg: REG_1 });
        self.exprs.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask: mask.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        });
        self.exprs.push(cmp(CmpOp::Neq, vec![0; 4]));
        self
    }

    /// `fib daddr type local`: the destination is one of the host's addresses.
    pub fn fib_daddr_local(mut self) -> Self {
        self.word("fib daddr type local");
        self.exprs.push(Expr::Fib {
            flags: fib::F_DADDR,
            result: fib::RESULT_ADDRTYPE,
            dreg: REG_1,
        });
        self.exprs
            .push(cmp(CmpOp::Eq, fib::RTN_LOCAL.to_ne_bytes().to_vec()));
        self
    }

    pub fn verdict(mut self, v: Verdict) -> Self {
        self.word(match v {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
        });
        self.exprs.push(Expr::Verdict(v));
        self
    }

    /// `dnat ip to ADDR:PORT`.
    pub fn dnat(mut self, addr: Ipv4Addr, port: u16) -> Self {
        self.word(&format!("dnat ip to {addr}:{port}"));
        self.exprs.push(Expr::Immediate {
            dreg: 1,
            data: addr.octets().to_vec(),
        });
        self.exprs.push(Expr::Immediate {
            dreg: 2,
            data: port.to_be_bytes().to_vec(),
        });
        self.exprs.push(Expr::Dnat {
            addr_reg: 1,
            port_reg: 2,
        });
        self
    }

    pub fn masquerade(mut self) -> Self {
        self.word("masquerade");
        self.exprs.push(Expr::Masquerade);
        self
    }
}
