//! `secret "NAME" from-env="VAR"`: the value is taken from tfctl's environment once, then wiped
//! from this process's environment block, so neither /proc/PID/environ of the supervisor nor of
//! the processes it forks (the spawner) shows it afterwards. (The caller of `tfctl up` had it in
//! its own environment; that is the caller's business.)

use std::collections::HashMap;
use std::ffi::CStr;

use tfctl_schema::model::{SecretDef, SecretSource};

use super::{SecretError, SecretValue};

extern "C" {
    static mut environ: *const *mut libc::c_char;
}

/// Reads every from-env secret of `defs`, then overwrites the variables' values in place with
/// NUL bytes. Call it before any thread exists.
pub fn take(defs: &[SecretDef]) -> Result<HashMap<String, SecretValue>, SecretError> {
    let mut out = HashMap::new();
    for def in defs {
        if let SecretSource::FromEnv(var) = &def.source {
            let value = std::env::var_os(var)
                .ok_or_else(|| SecretError::FromEnv { name: def.name.clone(), var: var.clone() })?;
            out.insert(def.name.clone(), SecretValue::new(std::os::unix::ffi::OsStringExt::into_vec(value)));
            wipe(var);
        }
    }
    Ok(out)
}

fn wipe(var: &str) {
    let prefix = format!("{var}=");
    // SAFETY: `environ` is the process's environment array, NULL-terminated, whose entries are
    // NUL-terminated strings; tfctl calls this while it has a single thread, so nothing reads or
    // changes the environment meanwhile. Each matching entry's value is overwritten within its
    // own length, in place, so the block the kernel shows as /proc/PID/environ no longer holds
    // it; the entry stays (as `VAR=` followed by NULs), so no pointer is invalidated.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return;
        }
        while !(*p).is_null() {
            let entry = CStr::from_ptr(*p);
            let bytes = entry.to_bytes();
            if bytes.starts_with(prefix.as_bytes()) {
                let value = (*p).add(prefix.len());
                std::ptr::write_bytes(value, 0, bytes.len() - prefix.len());
            }
            p = p.add(1);
        }
    }
}
