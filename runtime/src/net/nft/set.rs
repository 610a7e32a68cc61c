//! Named sets with what the nftnl crate's `Set` lacks: concatenated key types, set flags
//! (interval + concat, the kernel's pipapo sets), elements given as [key, key_end] ranges, and
//! element deletes.

use super::batch::Batch;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::ProtoFamily;
use std::ffi::{c_void, CString};
use std::net::Ipv4Addr;

const NFT_SET_CONCAT: u32 = 0x80;
const TYPE_BITS: u32 = 6;

/// The datatypes tfctl's set keys are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyField {
    Ipv4Addr,
    Ifname,
    InetService,
}

impl KeyField {
    fn len(self) -> u32 {
        match self {
            KeyField::Ipv4Addr => 4,
            KeyField::Ifname => 16,
            KeyField::InetService => 2,
        }
    }
    /// nft's datatype numbers, so `nft list` prints the set's type.
    fn type_id(self) -> u32 {
        match self {
            KeyField::Ipv4Addr => 7,
            KeyField::Ifname => 41,
            KeyField::InetService => 13,
        }
    }
}

/// A named set of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDef {
    pub table: String,
    pub family: ProtoFamily,
    pub name: String,
    /// Batch-local id, so rules in the same batch can refer to the new set.
    pub id: u32,
    pub fields: Vec<KeyField>,
    /// Elements are ranges (for CIDRs and port ranges); needs more than one field here.
    pub interval: bool,
}

/// One element: every field as a range (start..=end), or as a single value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Elem {
    pub key: Vec<u8>,
    pub key_end: Option<Vec<u8>>,
}

/// Builds element keys field by field, each padded to 4 bytes as registers hold them.
#[derive(Default)]
pub struct KeyBuilder {
    start: Vec<u8>,
    end: Vec<u8>,
}

impl KeyBuilder {
    fn push(&mut self, a: &[u8], b: &[u8]) -> &mut Self {
        let pad = (4 - a.len() % 4) % 4;
        self.start.extend_from_slice(a);
        self.start.extend(std::iter::repeat_n(0, pad));
        self.end.extend_from_slice(b);
        self.end.extend(std::iter::repeat_n(0, pad));
        self
    }
    pub fn addr_range(&mut self, first: Ipv4Addr, last: Ipv4Addr) -> &mut Self {
        self.push(&first.octets(), &last.octets())
    }
    pub fn ifname(&mut self, name: &str) -> &mut Self {
        let mut b = [0u8; 16];
        let n = name.len().min(15);
        b[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.push(&b, &b)
    }
    pub fn port_range(&mut self, first: u16, last: u16) -> &mut Self {
        self.push(&first.to_be_bytes(), &last.to_be_bytes())
    }
    /// The element: a range for interval sets, the start key otherwise.
    pub fn build(&self, interval: bool) -> Elem {
        Elem {
            key: self.start.clone(),
            key_end: interval.then(|| self.end.clone()),
        }
    }
}

struct RawSet(*mut sys::nftnl_set);

impl Drop for RawSet {
    fn drop(&mut self) {
        // SAFETY: allocated by nftnl_set_alloc, freed once (its elements with it).
        unsafe { sys::nftnl_set_free(self.0) }
    }
}

impl SetDef {
    pub fn key_len(&self) -> u32 {
        self.fields.iter().map(|f| f.len().div_ceil(4) * 4).sum()
    }

    fn key_type(&self) -> u32 {
        self.fields
            .iter()
            .fold(0, |t, f| (t << TYPE_BITS) | f.type_id())
    }

    fn raw(&self) -> RawSet {
        let table = CString::new(self.table.as_str()).expect("no NUL");
        let name = CString::new(self.name.as_str()).expect("no NUL");
        // SAFETY: a fresh set; libnftnl copies strings and data.
        unsafe {
            let s = sys::nftnl_set_alloc();
            if s.is_null() {
                std::process::abort();
            }
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_NAME as u16, name.as_ptr());
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_FAMILY as u16, self.family as u32);
            sys::nftnl_set_set_u32(s, sys::NFTNL_SET_ID as u16, self.id);
            RawSet(s)
        }
    }

    /// Adds the "create this set" message.
    pub fn add_to(&self, batch: &mut Batch) {
        let s = self.raw();
        let mut flags = 0u32;
        if self.interval {
            flags |= libc::NFT_SET_INTERVAL as u32;
            if self.fields.len() > 1 {
                flags |= NFT_SET_CONCAT;
            }
        }
        // SAFETY: s is live; the field-length array is copied by libnftnl.
        unsafe {
            sys::nftnl_set_set_u32(s.0, sys::NFTNL_SET_KEY_LEN as u16, self.key_len());
            sys::nftnl_set_set_u32(s.0, sys::NFTNL_SET_KEY_TYPE as u16, self.key_type());
            sys::nftnl_set_set_u32(s.0, sys::NFTNL_SET_FLAGS as u16, flags);
            if self.interval && self.fields.len() > 1 {
                let lens: Vec<u8> = self.fields.iter().map(|f| f.len() as u8).collect();
                sys::nftnl_set_set_data(
                    s.0,
                    sys::NFTNL_SET_DESC_CONCAT as u16,
                    lens.as_ptr().cast(),
                    lens.len() as u32,
                );
            }
        }
        let family = self.family as u16;
        // SAFETY: builds one NEWSET message (well under 64 KiB) at buf.
        unsafe {
            batch.add_raw(
                format!("creating set {}", self.name),
                |buf: *mut c_void, seq| {
                    let nlh = sys::nftnl_nlmsg_build_hdr(
                        buf.cast(),
                        libc::NFT_MSG_NEWSET as u16,
                        family,
                        (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
                        seq,
                    );
                    sys::nftnl_set_nlmsg_build_payload(nlh, s.0);
                },
            )
        };
    }

    /// Adds (or deletes) elements, in messages of at most 128 elements each, every message
    /// labelled with the first element's owner given by `label`.
    pub fn elements_to(&self, batch: &mut Batch, elems: &[(Elem, String)], delete: bool) {
        for chunk in elems.chunks(128) {
            let s = self.raw();
            for (e, _) in chunk {
                // SAFETY: a fresh element, handed to the set which then owns it.
                unsafe {
                    let el = sys::nftnl_set_elem_alloc();
                    if el.is_null() {
                        std::process::abort();
                    }
                    sys::nftnl_set_elem_set(
                        el,
                        sys::NFTNL_SET_ELEM_KEY as u16,
                        e.key.as_ptr().cast(),
                        e.key.len() as u32,
                    );
                    if let Some(end) = &e.key_end {
                        sys::nftnl_set_elem_set(
                            el,
                            sys::NFTNL_SET_ELEM_KEY_END as u16,
                            end.as_ptr().cast(),
                            end.len() as u32,
                        );
                    }
                    sys::nftnl_set_elem_add(s.0, el);
                }
            }
            let (ty, verb) = if delete {
                (libc::NFT_MSG_DELSETELEM, "removing")
            } else {
                (libc::NFT_MSG_NEWSETELEM, "adding")
            };
            let owners: Vec<&str> = chunk.iter().map(|(_, l)| l.as_str()).collect();
            let label = format!(
                "{verb} {} element(s) of set {} ({})",
                chunk.len(),
                self.name,
                summarize(&owners)
            );
            let family = self.family as u16;
            // SAFETY: 128 elements of at most 2 x 32 bytes of key fit in one message.
            unsafe {
                batch.add_raw(label, |buf: *mut c_void, seq| {
                    let nlh = sys::nftnl_nlmsg_build_hdr(
                        buf.cast(),
                        ty as u16,
                        family,
                        libc::NLM_F_CREATE as u16,
                        seq,
                    );
                    sys::nftnl_set_elems_nlmsg_build_payload(nlh, s.0);
                })
            };
        }
    }
}

fn summarize(owners: &[&str]) -> String {
    let mut v: Vec<&str> = owners.to_vec();
    v.dedup();
    if v.len() > 3 {
        format!("{}, {}, ... {}", v[0], v[1], v[v.len() - 1])
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_per_field_like_registers() {
        let e = KeyBuilder::default()
            .addr_range(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9))
            .ifname("tfvab")
            .port_range(80, 443)
            .build(true);
        assert_eq!(e.key.len(), 4 + 16 + 4);
        assert_eq!(&e.key[..4], &[10, 0, 0, 1]);
        assert_eq!(&e.key[4..9], b"tfvab");
        assert!(e.key[9..20].iter().all(|b| *b == 0));
        assert_eq!(
            &e.key[20..],
            &[0, 80, 0, 0],
            "port in network order, then padding"
        );
        assert_eq!(&e.key_end.as_ref().unwrap()[20..], &[1, 187, 0, 0]);
        assert_eq!(KeyBuilder::default().ifname("x").build(false).key_end, None);
        let set = SetDef {
            table: "t".into(),
            family: ProtoFamily::Inet,
            name: "s".into(),
            id: 1,
            fields: vec![KeyField::Ipv4Addr, KeyField::Ifname, KeyField::InetService],
            interval: true,
        };
        assert_eq!(set.key_len(), 24);
        // nft's concatenated type id: ipv4_addr(7) . ifname(41) . inet_service(13), 6 bits each.
        assert_eq!(set.key_type(), (7 << 12) | (41 << 6) | 13);
    }
}
