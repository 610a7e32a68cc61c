//! Delete-if-exists for tables, which the nftnl crate lacks: NFT_MSG_DESTROYTABLE where the kernel
//! has it (Linux 6.3), else a lookup and NFT_MSG_DELTABLE (Debian 12's 6.1).

use super::batch::Batch;
use crate::net::error::NetError;
use crate::net::rtnl::for_each_message;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::ProtoFamily;
use std::ffi::{c_void, CString};
use std::sync::OnceLock;

/// NFT_MSG_DESTROYTABLE: delete the table if it exists, succeed if it does not.
pub const NFT_MSG_DESTROYTABLE: u16 = 26;

/// Adds "delete table `name` if it exists" to the batch.
pub fn delete_if_exists(
    batch: &mut Batch,
    name: &str,
    family: ProtoFamily,
) -> Result<(), NetError> {
    delete_if_exists_with(batch, name, family, destroy_supported())
}

/// As [`delete_if_exists`], choosing the method (`destroy: false` is the pre-6.3 path; public so
/// that both paths are tested on any kernel).
pub fn delete_if_exists_with(
    batch: &mut Batch,
    name: &str,
    family: ProtoFamily,
    destroy: bool,
) -> Result<(), NetError> {
    if destroy {
        table_msg(batch, name, family, NFT_MSG_DESTROYTABLE);
    } else if exists(name, family)? {
        table_msg(batch, name, family, libc::NFT_MSG_DELTABLE as u16);
    }
    Ok(())
}

/// Whether the kernel knows NFT_MSG_DESTROYTABLE (probed once, with a name nothing uses).
fn destroy_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let mut b = Batch::new();
        table_msg(
            &mut b,
            "tfctl_probe_destroy_support",
            ProtoFamily::Inet,
            NFT_MSG_DESTROYTABLE,
        );
        !matches!(
            b.finalize().send().map_err(|e| e.errno()),
            Err(Some(libc::EINVAL | libc::EOPNOTSUPP))
        )
    })
}

/// Whether the table exists (in the calling thread's network namespace).
pub fn exists(name: &str, family: ProtoFamily) -> Result<bool, NetError> {
    let sock = mnl::Socket::new(mnl::Bus::Netfilter).map_err(|source| NetError::Netlink {
        step: "socket",
        source,
    })?;
    let mut req = vec![0u8; 512];
    let cname = CString::new(name).expect("no NUL");
    // SAFETY: a fresh table object, freed below; a GETTABLE request is a few dozen bytes.
    let len = unsafe {
        let t = sys::nftnl_table_alloc();
        if t.is_null() {
            std::process::abort();
        }
        sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, cname.as_ptr());
        let nlh = sys::nftnl_nlmsg_build_hdr(
            req.as_mut_ptr().cast(),
            libc::NFT_MSG_GETTABLE as u16,
            family as u16,
            libc::NLM_F_ACK as u16,
            1,
        );
        sys::nftnl_table_nlmsg_build_payload(nlh, t);
        sys::nftnl_table_free(t);
        (*nlh).nlmsg_len as usize
    };
    sock.send(&req[..len]).map_err(|source| NetError::Netlink {
        step: "send (get table)",
        source,
    })?;
    let mut buf = vec![0u8; 16 * 1024];
    let n = sock
        .recv_raw(&mut buf)
        .map_err(|source| NetError::Netlink {
            step: "receive (get table)",
            source,
        })?;
    let mut answer = None;
    for_each_message(&buf[..n], |_, code| {
        if answer.is_none() {
            answer = Some(code);
        }
    });
    match answer {
        Some(None) => Ok(true), // the table itself
        Some(Some(0)) => Ok(true),
        Some(Some(e)) if -e == libc::ENOENT => Ok(false),
        Some(Some(e)) => Err(NetError::refused(format!("looking up table {name}"), -e)),
        None => Err(NetError::Decode {
            what: format!("looking up table {name}"),
            detail: "empty answer".into(),
        }),
    }
}

fn table_msg(batch: &mut Batch, name: &str, family: ProtoFamily, ty: u16) {
    let cname = CString::new(name).expect("no NUL");
    // SAFETY: a fresh table object, freed below; the message is a few dozen bytes.
    unsafe {
        let t = sys::nftnl_table_alloc();
        if t.is_null() {
            std::process::abort();
        }
        sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, cname.as_ptr());
        sys::nftnl_table_set_u32(t, sys::NFTNL_TABLE_FAMILY as u16, family as u32);
        batch.add_raw(format!("removing table {name}"), |buf: *mut c_void, seq| {
            let nlh = sys::nftnl_nlmsg_build_hdr(buf.cast(), ty, family as u16, 0, seq);
            sys::nftnl_table_nlmsg_build_payload(nlh, t);
        });
        sys::nftnl_table_free(t);
    }
}
