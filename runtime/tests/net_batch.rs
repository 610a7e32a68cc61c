//! nf_tables batches against the kernel: atomic, one sendmsg whatever the size, and errors that
//! name the message that failed.

#[path = "../../tests/common/netns.rs"]
mod netns;

use netns::Ns;
use nftnl::{MsgType, ProtoFamily, Table};
use tfctl_runtime::net::nft::set::{KeyBuilder, KeyField, SetDef};
use tfctl_runtime::net::nft::Batch;

#[test]
fn error_names_the_failing_message_and_nothing_is_applied() {
    let ns = Ns::new("batch");
    let err = ns.run(|| {
        let mut b = Batch::new();
        let t = Table::new(c"tfctl_batchtest", ProtoFamily::Inet);
        b.add(&t, MsgType::Add, "creating table tfctl_batchtest");
        let missing = SetDef {
            table: "tfctl_batchtest".into(),
            family: ProtoFamily::Inet,
            name: "no_such_set".into(),
            id: 7,
            fields: vec![KeyField::Ifname],
            interval: false,
        };
        let e = KeyBuilder::default().ifname("tfvdeadbeef2").build(false);
        missing.elements_to(&mut b, &[(e, "container web".into())], false);
        let t2 = Table::new(c"tfctl_batchtest2", ProtoFamily::Inet);
        b.add(&t2, MsgType::Add, "creating table tfctl_batchtest2");
        b.finalize().send().unwrap_err()
    });
    let msg = err.to_string();
    assert!(
        msg.contains("no_such_set") && msg.contains("container web"),
        "{msg}"
    );
    assert_eq!(err.errno(), Some(libc::ENOENT), "{msg}");
    // Atomic: neither table was created.
    assert_eq!(ns.sh("nft list tables").trim(), "");
}

#[test]
fn a_large_batch_goes_in_one_piece() {
    let ns = Ns::new("big");
    let n = 20_000;
    let stats = ns.run(|| {
        let mut b = Batch::new();
        let t = Table::new(c"tfctl_bigbatch", ProtoFamily::Inet);
        b.add(&t, MsgType::Add, "creating table");
        let set = SetDef {
            table: "tfctl_bigbatch".into(),
            family: ProtoFamily::Inet,
            name: "s".into(),
            id: 1,
            fields: vec![KeyField::Ipv4Addr, KeyField::Ifname],
            interval: false,
        };
        set.add_to(&mut b);
        let elems: Vec<_> = (0..n)
            .map(|i: u32| {
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
                (
                    KeyBuilder::default()
                        .addr_range(ip, ip)
                        .ifname("tfvx")
                        .build(false),
                    format!("c{i}"),
                )
            })
            .collect();
        set.elements_to(&mut b, &elems, false);
        let fin = b.finalize();
        let bytes = fin.bytes();
        fin.send().unwrap();
        bytes
    });
    // Well past the 128 KiB pages nftnl's own batch would split it into.
    assert!(stats > 512 * 1024, "batch of {stats} bytes");
    let listed = ns.sh("nft list set inet tfctl_bigbatch s | grep -o tfvx | wc -l");
    assert_eq!(listed.trim(), n.to_string());
}

#[test]
fn delete_if_exists_both_ways() {
    use tfctl_runtime::net::nft::table::{delete_if_exists_with, exists};
    let ns = Ns::new("del");
    for destroy in [true, false] {
        ns.sh("nft add table inet tfctl_deltest");
        ns.run(|| {
            assert!(exists("tfctl_deltest", ProtoFamily::Inet).unwrap());
            for _ in 0..2 {
                // Present the first time, absent the second: both succeed.
                let mut b = Batch::new();
                delete_if_exists_with(&mut b, "tfctl_deltest", ProtoFamily::Inet, destroy).unwrap();
                if !b.is_empty() {
                    b.finalize().send().unwrap();
                }
            }
            assert!(!exists("tfctl_deltest", ProtoFamily::Inet).unwrap());
        });
    }
}
