//! The tfctl app-file model: KDL parsing, validation with miette diagnostics, and the vocabulary
//! reference. Nothing here touches the host beyond reading the files an app file names.
//!
//! - [`load`] / [`load_str`]: an app file to the resolved [`model::App`], or every problem of
//!   the file as [`Diagnostics`].
//! - [`load_config`] / [`load_config_str`]: tfctl's own config file (tfctl-config(5)) to a
//!   [`model::HostConfig`], validated the same way.
//! - [`to_kdl`]: the resolved app as KDL, for `tfctl config`.
//! - [`vocab`]: the table of every node and property, which validation, suggestions and the
//!   man pages' test share.
//!
//! Each [`Problem`] is a `miette::Diagnostic` with a stable code (`tfctl::unknown-node`, ...),
//! the file as its source, a primary label at the offending occurrence and a help line.
//! Render them all with [`Diagnostics::render_plain`] (no colour, fixed width) or
//! [`Diagnostics::render_with`] and a handler of your own; miette's graphical handler heads each
//! one with `[FILE:LINE:COL]` of its primary label.
//!
//! ```no_run
//! let app = tfctl_schema::load(std::path::Path::new("app.kdl"), &tfctl_schema::process_env);
//! match app {
//!     Ok(app) => println!("{}", tfctl_schema::to_kdl(&app)),
//!     Err(diags) => eprint!("{}", diags.render_plain(100)),
//! }
//! ```

pub mod config;
mod container;
mod crossref;
pub mod diag;
pub mod diff;
mod lower;
pub mod model;
mod network;
mod reader;
pub mod reference;
mod render;
mod syntax;
pub mod values;
pub mod vars;
pub mod vocab;

use std::path::{Path, PathBuf};

pub use config::{load_config, load_config_str};
pub use diag::{Diagnostics, Problem};
pub use model::App;
/// `kdl_string`: a KDL string literal that loads back as the given text (`$` doubled).
pub use render::{q as kdl_string, to_kdl};
/// `a/./b/../c` as `a/c`, without asking the file system (as Compose resolves relative paths).
pub use reader::normalize as normalize_path;

use crate::reader::Cx;
use crate::vars::Vars;

/// Looks a variable up in the process environment: the `env` argument `load` wants in
/// production.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads and validates an app file. Variables come from `env` first, then from a `.env` file
/// beside the app file. Every problem of the file is reported, in file order.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<App, Diagnostics> {
    let text = read_text(path, "app file")?;
    let abs = reader::normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let dir = abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    load_at(&path.display().to_string(), &text, abs, dir, env)
}

/// Loads an app file's text: `name` is what diagnostics call the file, `base_dir` where its
/// relative paths (and its `.env`) are. `App::file` becomes `base_dir/name`.
pub fn load_str(
    name: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<App, Diagnostics> {
    let dir = reader::normalize(
        &std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf()),
    );
    let file = dir.join(name);
    load_at(name, text, file, dir, env)
}

fn load_at(
    name: &str,
    text: &str,
    file: PathBuf,
    dir: PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<App, Diagnostics> {
    let mut cx = Cx {
        src: diag::source(name, text),
        dir,
        vars: Vars::new(env),
        diags: Diagnostics::new(),
    };
    read_dotenv(&mut cx, env);
    let doc = match syntax::parse(&cx.src, text) {
        Ok(doc) => doc,
        Err(problems) => {
            cx.diags.problems.extend(problems);
            return Err(finish(cx.diags));
        }
    };
    match lower::app(&mut cx, &doc, file) {
        Some(app) if cx.diags.is_empty() => Ok(app),
        _ => Err(finish(cx.diags)),
    }
}

/// Reads `.env` beside the app file, when there is one.
fn read_dotenv(cx: &mut Cx<'_>, env: &dyn Fn(&str) -> Option<String>) {
    let path = cx.dir.join(".env");
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let src = diag::source(&path.display().to_string(), &text);
    let (vars, problems) = vars::parse_dotenv(&src, &text, env);
    cx.diags.problems.extend(problems);
    cx.vars.add_dotenv(vars);
}

pub(crate) fn read_text(path: &Path, what: &str) -> Result<String, Diagnostics> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics::from(
            Problem::without_source(
                "tfctl::unreadable-file",
                format!("cannot read {what} {}: {e}", path.display()),
            )
            .help("check the path and its permissions"),
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        Diagnostics::from(
            Problem::without_source(
                "tfctl::not-utf8",
                format!(
                    "{what} {} is not UTF-8 (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ),
            )
            .help("KDL files are UTF-8 text"),
        )
    })
}

fn finish(mut d: Diagnostics) -> Diagnostics {
    d.sort();
    d
}
