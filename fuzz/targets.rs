//! The bodies of the image fuzz targets, shared with the corpus replay test
//! (tests/image_fuzz_corpus.rs), so CI runs the committed corpus without a fuzzer.

use std::os::fd::AsFd;
use std::path::Path;

/// Arbitrary bytes as a layer: unpacking may fail, but must not panic, and nothing may appear
/// outside the target directory (checked: the sibling canary directory stays empty).
pub fn image_unpack(data: &[u8]) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("layer");
    let canary = tmp.path().join("canary");
    std::fs::create_dir(&target).unwrap();
    std::fs::create_dir(&canary).unwrap();
    let dir = std::fs::File::open(&target).unwrap();
    let _ = tfctl_runtime::image::unpack_layer(data, dir.as_fd());
    let outside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside.len(), 2, "unpack created {outside:?} next to the layer");
    assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 0, "unpack wrote into a sibling directory");
}

/// Arbitrary text as an image reference: parsing must not panic, and a parsed reference's
/// canonical form must parse back to the same value.
pub fn image_reference(data: &[u8]) {
    use tfctl_schema::reference::ImageSource;
    let Ok(s) = std::str::from_utf8(data) else { return };
    let base = Path::new("/base");
    if let Ok(parsed) = ImageSource::parse(s, base) {
        let canonical = parsed.to_string();
        let again = ImageSource::parse(&canonical, base).unwrap_or_else(|e| panic!("{s:?} -> {canonical:?} does not parse: {e}"));
        assert_eq!(again, parsed, "{s:?} -> {canonical:?}");
    }
}
