//! tfctl's seccomp compiler against libseccomp: the differential check of the fuzz target
//! (fuzz/seccomp_diff.rs), run on a few thousand seeded random inputs so CI exercises it
//! without libFuzzer, plus the regression cases the check found.

#[path = "../../fuzz/seccomp_diff.rs"]
mod seccomp_diff;

use tfctl_runtime::seccomp::Arch;

/// splitmix64: a fixed sequence, so a failure names a case that reproduces.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..len.div_ceil(8)).flat_map(|_| next().to_le_bytes()).take(len).collect()
}

#[test]
fn tfctl_and_libseccomp_answer_alike_for_random_profiles() {
    // TFCTL_SECCOMP_CASES raises the count for a longer local run.
    let cases: u64 = std::env::var("TFCTL_SECCOMP_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(3000);
    for seed in 0..cases {
        let data = random_bytes(seed, 1024);
        if let Err(e) = std::panic::catch_unwind(|| seccomp_diff::seccomp_differential(&data)) {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            panic!("seed {seed}: {msg}");
        }
    }
    eprintln!(
        "{cases} profiles, 64 syscalls each: libseccomp's merged filter was wrong {} times where its rules one at a time, \
         tfctl and the profile agreed",
        seccomp_diff::LIBSECCOMP_MERGE_DEFECTS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn the_syscall_tables_agree_with_libseccomp() {
    // The differential check only uses syscalls both tables number alike; most must be.
    for (arch, at_least) in [(Arch::X86_64, 330), (Arch::Aarch64, 270)] {
        let shared = seccomp_diff::shared_syscalls(arch).len();
        assert!(shared >= at_least, "{arch:?}: only {shared} syscalls numbered alike by tfctl and libseccomp");
    }
}
