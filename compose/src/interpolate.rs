//! Compose's variable interpolation (`$VAR`, `${VAR:-default}`, `${VAR:?message}`, `$$`) over
//! every string value of a parsed file, with tfctl's own expander (`tfctl_schema::vars`, which
//! follows Compose's rules). Keys are not interpolated, as in Compose.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml_ng::Value;
use tfctl_schema::vars::{self, VarErrorKind};

use crate::error::Error;

/// Where variables come from: the environment of the converter first, then the project's
/// `.env` file.
pub struct Env<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub dotenv: Vec<(String, String)>,
}

impl Env<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        (self.env)(name).or_else(|| {
            self.dotenv.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    /// Reads the `.env` file of the project folder, if there is one.
    pub fn load_dotenv(&mut self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(".env");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(Error::Read { path, source }),
        };
        let src = tfctl_schema::diag::source(&path.display().to_string(), &text);
        let (found, problems) = vars::parse_dotenv(&src, &text, self.env);
        if let Some(p) = problems.first() {
            return Err(Error::Invalid { path, message: p.message.clone() });
        }
        self.dotenv = found;
        Ok(())
    }
}

/// Interpolates every string of `value` in place. Variables that are not set become empty
/// strings, as in Compose; their names are added to `unset` so the caller can warn.
pub fn interpolate(
    value: &mut Value,
    env: &Env,
    file: &Path,
    at: &str,
    unset: &mut BTreeSet<String>,
) -> Result<(), Error> {
    match value {
        Value::String(s) => {
            *s = expand(s, env, file, at, unset)?;
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                interpolate(v, env, file, &format!("{at}[{i}]"), unset)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                let path = if at.is_empty() { key } else { format!("{at}.{key}") };
                interpolate(v, env, file, &path, unset)?;
            }
        }
        Value::Tagged(t) => interpolate(&mut t.value, env, file, at, unset)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// Expands one string. An unset `$VAR` is an error for the shared expander; here it is retried
/// as empty, the way Compose treats it.
pub fn expand(
    s: &str,
    env: &Env,
    file: &Path,
    at: &str,
    unset: &mut BTreeSet<String>,
) -> Result<String, Error> {
    let blank: RefCell<BTreeSet<String>> = RefCell::new(BTreeSet::new());
    loop {
        let lookup = |name: &str| {
            env.get(name).or_else(|| blank.borrow().contains(name).then(String::new))
        };
        match vars::expand(s, &lookup) {
            Ok(out) => {
                unset.extend(blank.into_inner());
                return Ok(out);
            }
            Err(e) => match e.kind {
                VarErrorKind::Unset(name) if !blank.borrow().contains(&name) => {
                    blank.borrow_mut().insert(name);
                }
                VarErrorKind::Unset(name) => {
                    return Err(Error::Variable {
                        path: file.to_path_buf(),
                        what: at.to_string(),
                        message: format!("variable `{name}` is not set"),
                    })
                }
                VarErrorKind::Required(name, message) => {
                    let message = if message.is_empty() {
                        format!("variable `{name}` is required: set it in the environment or in .env")
                    } else {
                        format!("variable `{name}` is required: {message}")
                    };
                    return Err(Error::Variable { path: file.to_path_buf(), what: at.to_string(), message });
                }
                VarErrorKind::Syntax(message) => {
                    return Err(Error::Variable { path: file.to_path_buf(), what: at.to_string(), message })
                }
            },
        }
    }
}
