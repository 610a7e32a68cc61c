//! `check [--timings] FILE...`: loads each app file and prints its diagnostics; exits 2 if any
//! file has errors. A stand-in for `tfctl check` until the CLI's is merged (bench/check.sh
//! drives it). `--timings` also reports how long the KDL parse alone takes, since it dominates.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut failed = false;
    let mut timings = false;
    for arg in std::env::args().skip(1) {
        if arg == "--timings" {
            timings = true;
            continue;
        }
        let path = std::path::Path::new(&arg);
        let start = Instant::now();
        let result = tfctl_schema::load(path, &tfctl_schema::process_env);
        let total = start.elapsed();
        match result {
            Ok(app) => eprintln!(
                "{arg}: app `{}` is valid ({} containers)",
                app.name,
                app.containers.len()
            ),
            Err(d) => {
                eprint!("{}", d.render_plain(100));
                failed = true;
            }
        }
        if timings {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let start = Instant::now();
            let _ = kdl::KdlDocument::parse_v2(&text);
            let parse = start.elapsed();
            eprintln!(
                "{arg}: load {:.1} ms, of which the KDL parse {:.1} ms",
                total.as_secs_f64() * 1e3,
                parse.as_secs_f64() * 1e3
            );
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
