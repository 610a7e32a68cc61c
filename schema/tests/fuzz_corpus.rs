//! Replays the fuzz corpus (fuzz/corpus/parse/) through the loader, as the fuzz target does, so
//! CI checks every committed input without a fuzzer: no panic, diagnostics render, and a model
//! that loads survives `to_kdl`.

use std::path::Path;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/root".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

#[test]
fn every_corpus_input_loads_or_is_diagnosed() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/parse");
    let dir = Path::new("/nonexistent/tfctl-fuzz");
    let mut count = 0;
    let (mut loaded, mut refused) = (0, 0);
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&data);
        match tfctl_schema::load_str("fuzz.kdl", &text, dir, &env) {
            Ok(app) => {
                let rendered = tfctl_schema::to_kdl(&app);
                let again = tfctl_schema::load_str("fuzz.kdl", &rendered, dir, &env)
                    .unwrap_or_else(|d| {
                        panic!(
                            "{}: to_kdl output does not load:\n{}",
                            path.display(),
                            d.render_plain(100)
                        )
                    });
                assert_eq!(again, app, "{}", path.display());
                loaded += 1;
            }
            Err(d) => {
                assert!(!d.is_empty());
                assert!(!d.render_plain(80).is_empty());
                refused += 1;
            }
        }
        let _ = tfctl_schema::load_config_str("config.kdl", &text, &env)
            .map_err(|d| d.render_plain(80));
        count += 1;
    }
    assert!(
        count >= 10,
        "the seed corpus is missing: {count} files in {}",
        corpus.display()
    );
    assert!(
        loaded > 0 && refused > 0,
        "the corpus should hold valid and invalid inputs ({loaded} loaded, {refused} refused)"
    );
}
