//! Host hooks run as root, so an app file is as trusted as a root crontab. `up` refuses files
//! that shape what runs as root (the app file, `.env`, `env-file`, `from=` files, hook scripts)
//! unless root owns them and no one else can write them, or the user says `--trust-file`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Untrusted {
    #[error("{path} is owned by uid {uid}, not root: whoever can edit it can run commands as root through tfctl's hooks; `chown root {path}`, or pass --trust-file if you trust its owner")]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error("{path} is writable by group or others (mode {mode:o}): whoever can edit it can run commands as root through tfctl's hooks; `chmod go-w {path}`, or pass --trust-file")]
    Writable { path: PathBuf, mode: u32 },
}

/// Checks each existing file (symlinks are checked as the file they name, and the link's own
/// folder is the app's). Missing files are validation's business, not this check's.
pub fn check(paths: &[PathBuf]) -> Result<(), Untrusted> {
    for path in paths {
        let Ok(meta) = std::fs::metadata(path) else { continue };
        if meta.uid() != 0 {
            return Err(Untrusted::NotRootOwned { path: path.clone(), uid: meta.uid() });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Untrusted::Writable { path: path.clone(), mode });
        }
    }
    Ok(())
}

/// The files a `run` hook step executes from the app's folder: its program and any argument
/// naming a file there (`sh ./hooks/notify.sh`).
pub fn hook_scripts(argv: &[String], app_dir: &Path) -> Vec<PathBuf> {
    argv.iter()
        .filter(|a| !a.is_empty() && !a.starts_with('-'))
        .map(|a| app_dir.join(a))
        .filter(|p| p.starts_with(app_dir) && p.is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_files_others_can_change() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.kdl");
        std::fs::write(&app, "app \"a\"").unwrap();
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check(&[app.clone()]), Ok(()));
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(check(&[app.clone()]), Err(Untrusted::Writable { .. })));
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&app, Some(1000), None).unwrap();
        let err = check(&[app.clone()]).unwrap_err();
        assert!(err.to_string().contains("--trust-file") && err.to_string().contains("app.kdl"));
    }

    #[test]
    fn finds_scripts_in_the_app_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("hooks")).unwrap();
        std::fs::write(dir.path().join("hooks/notify.sh"), "").unwrap();
        let argv: Vec<String> = ["sh", "./hooks/notify.sh", "-x", "/etc/passwd"].iter().map(|s| s.to_string()).collect();
        let found = hook_scripts(&argv, dir.path());
        assert_eq!(found, vec![dir.path().join("./hooks/notify.sh")]);
    }
}
