//! Replays the committed fuzz corpora (fuzz/corpus/image_*) through the fuzz targets' own
//! bodies, so CI checks every stored input without a fuzzer or a nightly toolchain.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: input {} fails", p.display());
        n += 1;
    }
    assert!(n >= 10, "{target}: only {n} corpus files");
}

#[test]
fn image_unpack_corpus() {
    replay("image_unpack", targets::image_unpack);
}

#[test]
fn image_reference_corpus() {
    replay("image_reference", targets::image_reference);
}
