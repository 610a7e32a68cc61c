//! Links the unwinder into the binary (gcc's libgcc_eh.a) instead of loading libgcc_s.so.1 at
//! every start.
//!
//! Every `tfctl run` pays its own exec, and libgcc_s is the costliest library to load here: its
//! constructor probes the CPU with `cpuid`, which traps to the hypervisor on a virtual machine
//! (0.09 ms of a 0.68 ms exec of an empty program on these machines). Rust's std asks the linker
//! for `-lgcc_s` by name; an archive of that name found first on the search path satisfies it
//! statically, with the same unwinder code. Where gcc has no libgcc_eh.a (another toolchain),
//! nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") || std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu") {
        return;
    }
    let Some(eh) = gcc_file("libgcc_eh.a") else { return };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-unwinder");
    let _ = std::fs::create_dir_all(&out);
    let link = out.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    if std::os::unix::fs::symlink(&eh, &link).is_ok() {
        println!("cargo:rustc-link-search=native={}", out.display());
    }
}

/// The path of one of gcc's own files, if gcc (the linker driver rustc uses) has it.
fn gcc_file(name: &str) -> Option<PathBuf> {
    let cc = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc).arg(format!("-print-file-name={name}")).output().ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // gcc prints the bare name back when it does not have the file.
    (path.is_absolute() && path.is_file()).then_some(path)
}
