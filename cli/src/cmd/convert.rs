//! `tfctl convert`: Compose files to an app file (the work is tfctl-compose's).

use std::path::PathBuf;

use crate::args::{ConvertArgs, GlobalOpts};
use crate::exit::{CmdResult, Exit, Failure};

pub fn convert(args: ConvertArgs, global: &GlobalOpts) -> CmdResult {
    let mut files: Vec<PathBuf> = args.file.into_iter().collect();
    files.extend(args.files);
    let cwd = std::env::current_dir().map_err(|e| Failure::msg(Exit::Failed, format!("cannot read the current folder: {e}")))?;
    if files.is_empty() {
        files = tfctl_compose::default_files(&cwd, &tfctl_schema::process_env).map_err(|e| Failure::msg(Exit::Usage, e.to_string()))?;
    }
    let out_dir = match &args.output {
        Some(out) => out.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| cwd.clone()),
        None => cwd,
    };
    let opts = tfctl_compose::Options {
        files,
        project_name: args.project_name,
        out_dir,
        env: &tfctl_schema::process_env,
    };
    let conv = tfctl_compose::convert(&opts).map_err(|e| Failure::msg(Exit::Usage, e.to_string()))?;
    let level = if args.strict { "error" } else { "warning" };
    if !global.quiet || args.strict {
        for w in &conv.warnings {
            eprintln!("{level}: {w}");
        }
    }
    if args.strict && !conv.warnings.is_empty() {
        let n = conv.warnings.len();
        return Err(Failure::msg(Exit::Usage, format!("--strict: {n} thing{} did not convert exactly; nothing written", if n == 1 { "" } else { "s" })));
    }
    match &args.output {
        Some(out) => std::fs::write(out, &conv.kdl)
            .map_err(|e| Failure::msg(Exit::Failed, format!("cannot write {}: {e}", out.display())))?,
        None => print!("{}", conv.kdl),
    }
    Ok(())
}
