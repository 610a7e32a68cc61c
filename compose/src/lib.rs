//! `tfctl convert`: Docker Compose files (the Compose Specification, with interpolation, `.env`,
//! `extends`, `include`, anchors and overrides) to a tfctl app file.
//!
//! Everything Compose says is either written as a tfctl node or reported: as a [`Warning`] for
//! the command to print, and as a comment at its place in the output.

mod convert;
pub mod error;
mod interpolate;
pub mod keys;
mod load;
mod merge;
mod ports;

use std::path::PathBuf;

pub use error::Error;
pub use load::default_files;

/// What to convert.
pub struct Options<'a> {
    /// The Compose files, merged in order; the first one's folder is the project folder.
    pub files: Vec<PathBuf>,
    /// The project name (`docker compose -p`); else `name:`, `COMPOSE_PROJECT_NAME` or the
    /// project folder's name.
    pub project_name: Option<String>,
    /// The folder the app file will be in: its relative paths are written from there.
    pub out_dir: PathBuf,
    /// Variables: the environment of the converter (a `.env` in the project folder comes next).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A converted app file and what did not convert.
pub struct Conversion {
    pub kdl: String,
    pub warnings: Vec<Warning>,
}

/// Something of the Compose files that the app file does not express (or not exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The service it is about, if any.
    pub service: Option<String>,
    /// The Compose key: `build`, `deploy.placement`, `networks.backend.driver`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.service {
            Some(s) => write!(f, "service `{s}`: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Loads, merges and converts the Compose files.
pub fn convert(opts: &Options) -> Result<Conversion, Error> {
    let mut env = interpolate::Env { env: opts.env, dotenv: Vec::new() };
    let project = load::load(&opts.files, &mut env)?;
    let out_dir = std::path::absolute(&opts.out_dir).unwrap_or_else(|_| opts.out_dir.clone());
    convert::convert(&project, &env, opts.project_name.as_deref(), &load::normalize(&out_dir))
}
