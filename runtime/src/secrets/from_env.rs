//! `secret "NAME" from-env="VAR"`: the value is taken from tfctl's environment once, then wiped
//! from this process's environment block, so neither /proc/PID/environ of the supervisor nor of
//! the processes it forks (the spawner) shows it afterwards. (The caller of `tfctl up` had it in
//! its own environment; that is the caller's business.)

use std::collections::HashMap;

use tfctl_schema::model::{SecretDef, SecretSource};

use super::{SecretError, SecretValue};

/// Reads every from-env secret of `defs`, then overwrites the variables' values in place with
/// NUL bytes. Call it before any thread exists.
pub fn take(defs: &[SecretDef]) -> Result<HashMap<String, SecretValue>, SecretError> {
    let mut out = HashMap::new();
    for def in defs {
        if let SecretSource::FromEnv(var) = &def.source {
            let value = std::env::var_os(var)
                .ok_or_else(|| SecretError::FromEnv { name: def.name.clone(), var: var.clone() })?;
            out.insert(def.name.clone(), SecretValue::new(std::os::unix::ffi::OsStringExt::into_vec(value)));
            crate::sys::wipe_environ_value(var);
        }
    }
    Ok(out)
}

