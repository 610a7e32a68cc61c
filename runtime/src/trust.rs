//! Host hooks run as root, so an app file is as trusted as a root crontab. `up` refuses files
//! that shape what runs as root (the app file, `.env`, `env-file`, `from=` files, the programs
//! and scripts hooks run) unless root or the caller owns them and no one else can write them,
//! nor any folder above them (the rule OpenSSH's StrictModes applies: a root-owned sticky folder
//! such as /tmp is fine), or the user says `--trust-file`.
//!
//! Checking a path is not enough when the hook runs later: a host hook's files are opened and
//! checked when the hook runs, and what runs is that descriptor (`/dev/fd/N`), so nothing can be
//! swapped in between.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Untrusted {
    #[error("{path} is owned by uid {uid}, not root: whoever can edit it can run commands as root through tfctl's hooks; `chown root {path}`, or pass --trust-file if you trust its owner")]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error("{path} is writable by group or others (mode {mode:o}): whoever can edit it can run commands as root through tfctl's hooks; `chmod go-w {path}`, or pass --trust-file")]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path} is in the folder {folder}, owned by uid {uid}, not root: whoever owns the folder can replace the file and run commands as root through tfctl's hooks; `chown root {folder}`, or pass --trust-file if you trust its owner")]
    FolderNotRootOwned { path: PathBuf, folder: PathBuf, uid: u32 },
    #[error("{path} is in the folder {folder}, writable by group or others (mode {mode:o}): whoever can write there can replace the file and run commands as root through tfctl's hooks; `chmod go-w {folder}`, or pass --trust-file")]
    FolderWritable { path: PathBuf, folder: PathBuf, mode: u32 },
    #[error("cannot open {path} to check it: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// Whose files may shape what runs as root: root's, and the caller's own.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::getuid().as_raw()
}

/// The file itself: owned by root or the caller, and no one else may write it.
fn check_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), Untrusted> {
    if !trusted_owner(meta.uid()) {
        return Err(Untrusted::NotRootOwned { path: path.to_path_buf(), uid: meta.uid() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Untrusted::Writable { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Every folder above `path`, both as written and as resolved (a symlink in the path is the
/// folder's to change): owned by root or the caller, and writable by no one else unless it is
/// root's and sticky (others cannot rename or remove what they do not own there).
fn check_folders(path: &Path) -> Result<(), Untrusted> {
    let written = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| written.clone());
    for chain in [&written, &resolved] {
        for folder in chain.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(folder) else { continue };
            if !trusted_owner(meta.uid()) {
                return Err(Untrusted::FolderNotRootOwned { path: path.to_path_buf(), folder: folder.to_path_buf(), uid: meta.uid() });
            }
            let mode = meta.mode() & 0o7777;
            let sticky_root = meta.uid() == 0 && mode & 0o1000 != 0;
            if mode & 0o022 != 0 && !sticky_root {
                return Err(Untrusted::FolderWritable { path: path.to_path_buf(), folder: folder.to_path_buf(), mode });
            }
        }
    }
    Ok(())
}

/// Checks each existing file and the folders above it (symlinks are checked as the file they
/// name, and the link's own folders too). Missing files are validation's business, not this
/// check's.
pub fn check(paths: &[PathBuf]) -> Result<(), Untrusted> {
    for path in paths {
        let Ok(meta) = std::fs::metadata(path) else { continue };
        check_file(path, &meta)?;
        check_folders(path)?;
    }
    Ok(())
}

/// The default search path of host hooks, for a program named without a slash.
const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The program a hook step runs, as a path: relative to the app's folder when it has a slash,
/// else found on `search` (a PATH value) as execvp would.
fn program_path(program: &str, app_dir: &Path, search: Option<&str>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = app_dir.join(program);
        return p.is_file().then_some(p);
    }
    search
        .unwrap_or(SEARCH_PATH)
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// The files a `run` hook step executes, by their place in `argv`: the program itself (found as
/// execvp finds it) and any argument naming a file in the app's folder (`sh ./hooks/notify.sh`)
/// or an absolute path to an existing file (`sh /opt/hooks/notify.sh`).
pub fn hook_files(argv: &[String], app_dir: &Path, search: Option<&str>) -> Vec<(usize, PathBuf)> {
    let mut found = Vec::new();
    let Some((program, args)) = argv.split_first() else { return found };
    if let Some(p) = program_path(program, app_dir, search) {
        found.push((0, p));
    }
    for (i, a) in args.iter().enumerate() {
        if a.is_empty() || a.starts_with('-') {
            continue;
        }
        let p = app_dir.join(a);
        if (p.starts_with(app_dir) || Path::new(a).is_absolute()) && p.is_file() {
            found.push((i + 1, p));
        }
    }
    found
}

/// The files a `run` hook step executes, for `up`'s check.
pub fn hook_scripts(argv: &[String], app_dir: &Path) -> Vec<PathBuf> {
    hook_files(argv, app_dir, None).into_iter().map(|(_, p)| p).collect()
}

/// A hook step ready to run by descriptor: each file it executes opened once (and checked, when
/// asked), its argv naming those descriptors.
#[derive(Debug)]
pub struct Pinned {
    /// What to execute: `/dev/fd/N` when the program is a checked file.
    pub program: OsString,
    /// argv[0] as the hook wrote it, so a multi-call binary or `$0` keeps its name.
    pub arg0: OsString,
    pub args: Vec<OsString>,
    /// The open files, without close-on-exec so the hook's process (and an interpreter it
    /// starts) can open `/dev/fd/N`: held until the hook has started.
    pub files: Vec<OwnedFd>,
}

/// Opens every file `argv` executes once, checks what was opened (owner and mode by its
/// descriptor, the folders above it by path) when `check_owners`, and gives back the argv that
/// runs those descriptors.
pub fn pin(argv: &[String], app_dir: &Path, search: Option<&str>, check_owners: bool) -> Result<Pinned, Untrusted> {
    let mut out: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let mut files = Vec::new();
    for (i, path) in hook_files(argv, app_dir, search) {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Untrusted::Unreadable { path: path.clone(), reason: e.to_string() })?;
        if check_owners {
            let meta = file.metadata().map_err(|e| Untrusted::Unreadable { path: path.clone(), reason: e.to_string() })?;
            check_file(&path, &meta)?;
            check_folders(&path)?;
        }
        // A copy without close-on-exec: what the hook's process inherits.
        let inherited = nix::unistd::dup(&file).map_err(|e| Untrusted::Unreadable { path: path.clone(), reason: e.to_string() })?;
        out[i] = OsString::from(format!("/dev/fd/{}", inherited.as_raw_fd()));
        files.push(inherited);
    }
    let mut it = out.into_iter();
    let program = it.next().unwrap_or_default();
    Ok(Pinned { program, arg0: argv.first().map(OsString::from).unwrap_or_default(), args: it.collect(), files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn refuses_files_others_can_change() {
        assert!(root(), "this test changes file owners: run it as root");
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

    /// The attack: a root-owned script in a folder another user owns (or may write) can be
    /// replaced by that user; the control: the same script in root's folder, and in /tmp's
    /// sticky root-owned kind of folder, passes.
    #[test]
    fn refuses_a_script_in_a_folder_another_user_can_change() {
        assert!(root(), "this test changes file owners: run it as root");
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        let script = hooks.join("notify.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check(&[script.clone()]), Ok(()));

        std::os::unix::fs::chown(&hooks, Some(1000), None).unwrap();
        let err = check(&[script.clone()]).unwrap_err();
        assert!(matches!(&err, Untrusted::FolderNotRootOwned { folder, uid: 1000, .. } if *folder == hooks), "{err}");
        assert!(err.to_string().contains("chown root"), "{err}");

        std::os::unix::fs::chown(&hooks, Some(0), None).unwrap();
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(matches!(check(&[script.clone()]), Err(Untrusted::FolderWritable { mode: 0o775, .. })));

        // World-writable and sticky, owned by root (as /tmp): others cannot replace root's file.
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(check(&[script.clone()]), Ok(()));
        // Sticky but another user's: its owner can still replace the file.
        std::os::unix::fs::chown(&hooks, Some(1000), None).unwrap();
        assert!(check(&[script.clone()]).is_err());

        // Through a symlink in a safe folder to a script in an unsafe one: the target's folders count.
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = dir.path().join("link.sh");
        std::os::unix::fs::symlink(&script, &link).unwrap();
        assert!(matches!(check(&[link]), Err(Untrusted::FolderNotRootOwned { .. })));
    }

    #[test]
    fn finds_what_a_step_executes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("hooks")).unwrap();
        std::fs::write(dir.path().join("hooks/notify.sh"), "").unwrap();
        let argv: Vec<String> = ["sh", "./hooks/notify.sh", "-x", "/no/such/file", "word"].iter().map(|s| s.to_string()).collect();
        let found = hook_files(&argv, dir.path(), Some("/usr/bin:/bin"));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, 0);
        assert!(found[0].1.ends_with("sh") && found[0].1.is_absolute());
        assert_eq!(found[1], (1, dir.path().join("./hooks/notify.sh")));
    }

    /// What runs is what was opened: a script replaced after `pin` still runs as checked.
    #[test]
    fn a_pinned_script_runs_as_it_was_opened() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho checked\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let argv = vec!["./run.sh".to_string()];
        let pinned = pin(&argv, dir.path(), None, true).unwrap();
        // Replaced, by rename, as an attacker would: the pinned descriptor keeps the checked file.
        let evil = dir.path().join("evil");
        std::fs::write(&evil, "#!/bin/sh\necho replaced\n").unwrap();
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&evil, &script).unwrap();
        let out = std::process::Command::new(&pinned.program).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "checked\n");
        drop(pinned);
    }
}
