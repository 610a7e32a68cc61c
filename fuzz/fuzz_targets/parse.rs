//! Feeds arbitrary bytes to the app-file loader and the config loader: whatever the input, they
//! return a model or diagnostics, and the diagnostics render; they never panic. A model that
//! loads also survives `to_kdl` and loads again to the same model.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/root".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A folder that does not exist: no .env, every host file unreadable, nothing touched.
    let dir = Path::new("/nonexistent/tfctl-fuzz");
    match tfctl_schema::load_str("fuzz.kdl", &text, dir, &env) {
        Ok(app) => {
            let again = tfctl_schema::load_str("fuzz.kdl", &tfctl_schema::to_kdl(&app), dir, &env)
                .expect("to_kdl output must load");
            assert_eq!(again, app, "to_kdl must round-trip");
        }
        Err(d) => {
            let _ = d.render_plain(80);
        }
    }
    if let Err(d) = tfctl_schema::load_config_str("config.kdl", &text, &env) {
        let _ = d.render_plain(80);
    }
});
