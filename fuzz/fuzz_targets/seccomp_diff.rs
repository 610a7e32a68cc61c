//! tfctl's seccomp compiler against the profile's reference semantics and libseccomp's own
//! filter for the same rules (the body is in ../seccomp_diff.rs, shared with the seeded test
//! runtime/tests/seccomp_differential.rs).
#![no_main]

#[path = "../seccomp_diff.rs"]
mod seccomp_diff;

libfuzzer_sys::fuzz_target!(|data: &[u8]| seccomp_diff::seccomp_differential(data));
