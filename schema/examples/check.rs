//! `check FILE...`: loads each app file and prints its diagnostics; exits 2 if any file has
//! errors. A stand-in for `tfctl check` until the CLI's is merged (bench/check.sh drives it).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut failed = false;
    for arg in std::env::args().skip(1) {
        match tfctl_schema::load(std::path::Path::new(&arg), &tfctl_schema::process_env) {
            Ok(app) => eprintln!("{arg}: app `{}` is valid ({} containers)", app.name, app.containers.len()),
            Err(d) => {
                eprint!("{}", d.render_plain(100));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
