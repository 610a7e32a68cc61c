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
    if global.format == Format::Json {
        return check_json(&args.file);
    }
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

/// `check --format json`: one document on stdout, `{"schema": 1, "file", "valid", "app",
/// "containers", "diagnostics": [{"file", "line", "column", "code", "message", "label", "help"}]}`,
/// for CI to annotate the lines; the exit status is as without it (2 when invalid).
fn check_json(file: &std::path::Path) -> CmdResult {
    let (valid, doc) = match tfctl_schema::load(file, &tfctl_schema::process_env) {
        Ok(app) => (true, serde_json::json!({"file": file, "valid": true, "app": app.name, "containers": app.containers.len(), "diagnostics": []})),
        Err(diags) => (false, serde_json::json!({"file": file, "valid": false, "app": null, "containers": null, "diagnostics": diags})),
    };
    output::print_json(&doc);
    if valid {
        Ok(())
    } else {
        Err(Failure::silent(Exit::Usage))
    }
}

pub fn config(args: FileArg, global: &GlobalOpts) -> CmdResult {
    let app = load_app(&args.file)?;
    match global.format {
        Format::Json => output::print_json(&serde_json::json!({ "app": app })),
        Format::Text => print!("{}", tfctl_schema::to_kdl(&app)),
    }
    Ok(())
}
