//! `tfctl check FILE` and `tfctl config FILE`: validate an app file; print its resolved model.
//! Neither touches the state root nor contacts a registry.

use tfctl_schema::{App, Diagnostics};

use crate::args::{FileArg, Format, GlobalOpts};
use crate::exit::{CmdResult, Exit, Failure};
use crate::output;

/// Loads an app file, or prints every diagnostic and fails with exit 2.
pub fn load_app(file: &std::path::Path) -> Result<App, Failure> {
    tfctl_schema::load(file, &tfctl_schema::process_env).map_err(|diags| print_diagnostics(&diags))
}

pub fn print_diagnostics(diags: &Diagnostics) -> Failure {
    eprint!("{}", diags.render_with(&output::report_handler()));
    eprintln!("error: {diags}");
    Failure::silent(Exit::Usage)
}

pub fn check(args: FileArg, global: &GlobalOpts) -> CmdResult {
    let app = load_app(&args.file)?;
    // Host modes are valid, but each gives a container part of the host: said on every check,
    // even a quiet one, so that nobody runs one unknowingly. The exit status stays 0.
    for c in &app.containers {
        let modes = c.host_modes();
        if !modes.is_empty() {
            eprintln!("warning: container {}: host modes {}: not confined from the host", c.name, modes.join(", "));
        }
    }
    if !global.quiet {
        let n = app.containers.len();
        eprintln!("{}: app \"{}\" is valid ({n} container{})", args.file.display(), app.name, if n == 1 { "" } else { "s" });
    }
    Ok(())
}

pub fn config(args: FileArg, global: &GlobalOpts) -> CmdResult {
    let app = load_app(&args.file)?;
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({ "app": app })),
        Format::Text => print!("{}", tfctl_schema::to_kdl(&app)),
    }
    Ok(())
}
