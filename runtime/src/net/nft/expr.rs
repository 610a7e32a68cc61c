//! Our own nf_tables expressions, for what the nftnl crate's wrappers cannot say: loads into any
//! register (concatenations: `ip saddr . oifname . tcp dport @set`), lookups in named sets by
//! register with inversion, `fib`, comparisons of any length (interface-name prefixes), and the
//! rest of what tfctl's rules use, so that one type covers a whole rule. Each variant maps to one
//! libnftnl expression; [`rule_text`] prints a rule the way `nft --debug=netlink` does, which the
//! golden tests compare against nft's own output for the same rule.

use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::Rule;
use std::ffi::CString;
use std::ptr::NonNull;

/// The first 128-bit register; concatenated fields continue in 32-bit registers.
pub const REG_1: u32 = 1;
const NFT_REG32_00: u32 = 8;

/// A packet field that can be loaded into a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Iifname,
    Oifname,
    Nfproto,
    L4proto,
    Saddr,
    Daddr,
    /// Destination port of TCP or UDP (`tcp dport`, `udp dport`, `th dport`).
    Dport,
}

impl Field {
    /// Bytes loaded.
    pub fn size(self) -> u32 {
        match self {
            Field::Iifname | Field::Oifname => 16,
            Field::Nfproto | Field::L4proto => 1,
            Field::Saddr | Field::Daddr => 4,
            Field::Dport => 2,
        }
    }

    /// The expression loading this field into `dreg`.
    pub fn load(self, dreg: u32) -> Expr {
        match self {
            Field::Iifname => Expr::Meta {
                key: libc::NFT_META_IIFNAME as u32,
                dreg,
            },
            Field::Oifname => Expr::Meta {
                key: libc::NFT_META_OIFNAME as u32,
                dreg,
            },
            Field::Nfproto => Expr::Meta {
                key: libc::NFT_META_NFPROTO as u32,
                dreg,
            },
            Field::L4proto => Expr::Meta {
                key: libc::NFT_META_L4PROTO as u32,
                dreg,
            },
            Field::Saddr => Expr::Payload {
                base: libc::NFT_PAYLOAD_NETWORK_HEADER as u32,
                offset: 12,
                len: 4,
                dreg,
            },
            Field::Daddr => Expr::Payload {
                base: libc::NFT_PAYLOAD_NETWORK_HEADER as u32,
                offset: 16,
                len: 4,
                dreg,
            },
            Field::Dport => Expr::Payload {
                base: libc::NFT_PAYLOAD_TRANSPORT_HEADER as u32,
                offset: 2,
                len: 2,
                dreg,
            },
        }
    }
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
}

/// Verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

/// `fib` flags (NFTA_FIB_F_*) and results (NFT_FIB_RESULT_*).
pub mod fib {
    pub const F_SADDR: u32 = 1 << 0;
    pub const F_DADDR: u32 = 1 << 1;
    pub const F_IIF: u32 = 1 << 3;
    pub const RESULT_OIF: u32 = 1;
    pub const RESULT_ADDRTYPE: u32 = 3;
    /// RTN_LOCAL, the address type of the host's own addresses.
    pub const RTN_LOCAL: u32 = 2;
}

/// One nf_tables expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Meta {
        key: u32,
        dreg: u32,
    },
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    Cmp {
        sreg: u32,
        op: CmpOp,
        data: Vec<u8>,
    },
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// Lookup of `sreg..` in the named set; `inverted` matches when the key is absent.
    Lookup {
        set: String,
        set_id: Option<u32>,
        sreg: u32,
        inverted: bool,
    },
    Fib {
        flags: u32,
        result: u32,
        dreg: u32,
    },
    Ct {
        key: u32,
        dreg: u32,
    },
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    Verdict(Verdict),
    /// `dnat ip to <addr reg>:<port reg>`.
    Dnat {
        addr_reg: u32,
        port_reg: u32,
    },
    Masquerade,
}

/// Loads `fields` into consecutive registers the way nft lays out a concatenation (the first at
/// reg 1, each next one right after the previous field's length rounded to 4 bytes) and
/// returns the loads and the key's length in bytes.
pub fn concat(fields: &[Field]) -> (Vec<Expr>, u32) {
    let mut exprs = Vec::with_capacity(fields.len());
    let mut offset = 0;
    for f in fields {
        // As nft numbers them: a field starting on a 16-byte boundary uses the 128-bit
        // register name (reg 1, reg 2, ...), any other the 32-bit one (reg 9, reg 13, ...).
        let word = offset / 4;
        let reg = if word % 4 == 0 {
            REG_1 + word / 4
        } else {
            NFT_REG32_00 + word
        };
        exprs.push(f.load(reg));
        offset += f.size().div_ceil(4) * 4;
    }
    (exprs, offset)
}

fn alloc(name: &str) -> NonNull<sys::nftnl_expr> {
    let c = CString::new(name).expect("expression names have no NUL");
    // SAFETY: nftnl_expr_alloc copies nothing from the name beyond the call; a null return
    // means out of memory, where aborting is what the allocator would do.
    let p = unsafe { sys::nftnl_expr_alloc(c.as_ptr()) };
    NonNull::new(p).unwrap_or_else(|| std::process::abort())
}

fn set_u32(e: NonNull<sys::nftnl_expr>, attr: u32, v: u32) {
    // SAFETY: e is a live expression of the kind that has `attr`.
    unsafe { sys::nftnl_expr_set_u32(e.as_ptr(), attr as u16, v) }
}

fn set_data(e: NonNull<sys::nftnl_expr>, attr: u32, data: &[u8]) {
    // SAFETY: libnftnl copies `data.len()` bytes from the pointer.
    unsafe {
        sys::nftnl_expr_set(
            e.as_ptr(),
            attr as u16,
            data.as_ptr().cast(),
            data.len() as u32,
        )
    };
}

impl nftnl::expr::Expression for Expr {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        match self {
            Expr::Meta { key, dreg } => {
                let e = alloc("meta");
                set_u32(e, sys::NFTNL_EXPR_META_KEY, *key);
                set_u32(e, sys::NFTNL_EXPR_META_DREG, *dreg);
                e
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                let e = alloc("payload");
                set_u32(e, sys::NFTNL_EXPR_PAYLOAD_BASE, *base);
                set_u32(e, sys::NFTNL_EXPR_PAYLOAD_OFFSET, *offset);
                set_u32(e, sys::NFTNL_EXPR_PAYLOAD_LEN, *len);
                set_u32(e, sys::NFTNL_EXPR_PAYLOAD_DREG, *dreg);
                e
            }
            Expr::Cmp { sreg, op, data } => {
                let e = alloc("cmp");
                set_u32(e, sys::NFTNL_EXPR_CMP_SREG, *sreg);
                let op = match op {
                    CmpOp::Eq => libc::NFT_CMP_EQ,
                    CmpOp::Neq => libc::NFT_CMP_NEQ,
                };
                set_u32(e, sys::NFTNL_EXPR_CMP_OP, op as u32);
                set_data(e, sys::NFTNL_EXPR_CMP_DATA, data);
                e
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                let e = alloc("bitwise");
                set_u32(e, sys::NFTNL_EXPR_BITWISE_SREG, *sreg);
                set_u32(e, sys::NFTNL_EXPR_BITWISE_DREG, *dreg);
                set_u32(e, sys::NFTNL_EXPR_BITWISE_LEN, mask.len() as u32);
                set_data(e, sys::NFTNL_EXPR_BITWISE_MASK, mask);
                set_data(e, sys::NFTNL_EXPR_BITWISE_XOR, xor);
                e
            }
            Expr::Lookup {
                set,
                set_id,
                sreg,
                inverted,
            } => {
                let e = alloc("lookup");
                let name = CString::new(set.as_str()).expect("set names have no NUL");
                // SAFETY: libnftnl copies the string.
                unsafe {
                    sys::nftnl_expr_set_str(
                        e.as_ptr(),
                        sys::NFTNL_EXPR_LOOKUP_SET as u16,
                        name.as_ptr(),
                    )
                };
                if let Some(id) = set_id {
                    set_u32(e, sys::NFTNL_EXPR_LOOKUP_SET_ID, *id);
                }
                set_u32(e, sys::NFTNL_EXPR_LOOKUP_SREG, *sreg);
                if *inverted {
                    set_u32(
                        e,
                        sys::NFTNL_EXPR_LOOKUP_FLAGS,
                        libc::NFT_LOOKUP_F_INV as u32,
                    );
                }
                e
            }
            Expr::Fib {
                flags,
                result,
                dreg,
            } => {
                let e = alloc("fib");
                set_u32(e, sys::NFTNL_EXPR_FIB_FLAGS, *flags);
                set_u32(e, sys::NFTNL_EXPR_FIB_RESULT, *result);
                set_u32(e, sys::NFTNL_EXPR_FIB_DREG, *dreg);
                e
            }
            Expr::Ct { key, dreg } => {
                let e = alloc("ct");
                set_u32(e, sys::NFTNL_EXPR_CT_KEY, *key);
                set_u32(e, sys::NFTNL_EXPR_CT_DREG, *dreg);
                e
            }
            Expr::Immediate { dreg, data } => {
                let e = alloc("immediate");
                set_u32(e, sys::NFTNL_EXPR_IMM_DREG, *dreg);
                set_data(e, sys::NFTNL_EXPR_IMM_DATA, data);
                e
            }
            Expr::Verdict(v) => {
                let e = alloc("immediate");
                set_u32(e, sys::NFTNL_EXPR_IMM_DREG, libc::NFT_REG_VERDICT as u32);
                let code = match v {
                    Verdict::Accept => libc::NF_ACCEPT,
                    Verdict::Drop => libc::NF_DROP,
                };
                set_u32(e, sys::NFTNL_EXPR_IMM_VERDICT, code as u32);
                e
            }
            Expr::Dnat { addr_reg, port_reg } => {
                let e = alloc("nat");
                set_u32(e, sys::NFTNL_EXPR_NAT_TYPE, libc::NFT_NAT_DNAT as u32);
                set_u32(e, sys::NFTNL_EXPR_NAT_FAMILY, libc::NFPROTO_IPV4 as u32);
                set_u32(e, sys::NFTNL_EXPR_NAT_REG_ADDR_MIN, *addr_reg);
                set_u32(e, sys::NFTNL_EXPR_NAT_REG_PROTO_MIN, *port_reg);
                // NF_NAT_RANGE_PROTO_SPECIFIED, as nft sends it; the kernel adds MAP_IPS.
                set_u32(e, sys::NFTNL_EXPR_NAT_FLAGS, 2);
                e
            }
            Expr::Masquerade => alloc("masq"),
        }
    }
}

/// Prints a rule's expressions as `nft --debug=netlink` does (one `[ ... ]` per line), by
/// encoding the rule to its netlink message and parsing it back with libnftnl: this checks the
/// wire form, not just our intent.
pub fn rule_text(rule: &Rule) -> String {
    use nftnl::NlMsg;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = vec![0u8; 64 * 1024];
    // SAFETY: buf has room for any single rule message; the parsed rule is freed below; out is
    // a writable buffer of the length passed.
    unsafe {
        rule.write(buf.as_mut_ptr().cast(), 0, nftnl::MsgType::Add);
        let parsed = sys::nftnl_rule_alloc();
        let ok = sys::nftnl_rule_nlmsg_parse(buf.as_ptr().cast(), parsed);
        assert!(ok >= 0, "libnftnl could not parse the rule we encoded");
        let n = sys::nftnl_rule_snprintf(out.as_mut_ptr().cast(), out.len(), parsed, 0, 0);
        sys::nftnl_rule_free(parsed);
        out.truncate(n.max(0) as usize);
    }
    let text = String::from_utf8_lossy(&out);
    // The first line names family, table, chain and handle; keep only the expressions.
    text.lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
