//! A container started by `tfctl run` in the foreground (no `-d`, `-p` or `--app`): a
//! one-container app with no supervisor, whose tfctl process waits for it. It is listed by `ps`,
//! stopped by `stop`, signalled by `kill` and removed by `rm` through one file,
//! `apps/<name>/run.json`. That file is also the lock the running tfctl holds.
//!
//! A start takes that folder from a few spares under `tmp/one-off/` by renaming one into place,
//! and `--rm` gives it back the same way; only without a spare are a folder and a file created
//! (and deleted at the end). Creating an inode on ext4 passes over every recently deleted one
//! (not yet written back): 40 µs on a quiet filesystem, 1.7 ms after a burst of 20,000
//! deletions (a build, a test run), on the path of every start. A rename allocates nothing:
//! 12 µs either way.
//!
//! The record names the tfctl process and the container's init by identity (pid, start time,
//! boot id), never by pid alone, and says which image the container uses (for `images rm` and
//! `prune`). Once the container has exited, a kept one (`run` without `--rm`) records its exit
//! status instead of its processes.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record::app_dir;
use crate::state::files::Lock;
use crate::state::identity::ProcessIdentity;
use crate::state::StateRoot;

const FILE: &str = "run.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    pub name: String,
    /// The image's name as stored (`images rm` refuses to remove it while this exists).
    pub image: String,
    /// The cgroup name under tfctl's own, so `rm` can remove it after a crash.
    pub cgroup: String,
    /// Seconds since the epoch at the start.
    pub started_at: u64,
    /// Removed at exit (`--rm`).
    pub remove: bool,
    /// While it runs: the tfctl process waiting for it, and the container's init.
    pub tfctl: Option<ProcessIdentity>,
    pub init: Option<ProcessIdentity>,
    /// Once it has exited: its status as `run` reported it (128+N for signal N).
    pub exit_code: Option<i32>,
    /// While it runs: how `exec` joins it (no supervisor holds its plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecTemplate>,
    /// `run --stop-signal` (canonical name), else the image's StopSignal: what `stop` sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `run --stop-timeout`, in seconds: how long `stop` waits before SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// `run --label`, for `ps --format json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    /// Its host modes (`run --privileged`, ...), for `ps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_modes: Vec<String>,
}

/// What `exec` needs to start a process in a one-off container with the container's own
/// confinement: its start plan (user, capabilities, seccomp, rlimits, environment), and its
/// capability changes for `exec -u`. It holds no secret: `run` has none to give.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecTemplate {
    pub plan: crate::spawn::StartPlan,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
}

/// What `ps` says of a one-off container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its tfctl has taken the name and not yet written the record.
    Starting,
    Running,
    Exited(i32),
    /// Its tfctl is gone without recording an exit (killed with SIGKILL, or the host rebooted):
    /// `rm` removes what is left.
    Dead,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Exited(_) => "exited",
            RunState::Dead => "dead",
        }
    }
}

pub fn path(root: &StateRoot, name: &str) -> PathBuf {
    app_dir(root, name).join(FILE)
}

/// Whether `name` is a one-off container under this root (running or not).
pub fn exists(root: &StateRoot, name: &str) -> bool {
    path(root, name).exists()
}

/// The record of `name`, if it has one that can be read. A blank one is a start under way while
/// its tfctl holds the lock, and a dead one after.
pub fn load(root: &StateRoot, name: &str) -> Option<(Option<RunRecord>, RunState)> {
    let file = path(root, name);
    let bytes = crate::state::files::read_nofollow(&file).ok()??;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        // Taken and not yet written, or left by a tfctl that died before writing it.
        let held = Lock::is_held(&file).unwrap_or(true);
        return Some((None, if held { RunState::Starting } else { RunState::Dead }));
    }
    let r: RunRecord = serde_json::from_slice(&bytes).ok()?;
    let state = match (&r.exit_code, &r.tfctl) {
        (Some(code), _) => RunState::Exited(*code),
        (None, Some(t)) if t.is_alive() => RunState::Running,
        _ => RunState::Dead,
    };
    Some((Some(r), state))
}

/// The image of the one-off container whose folder is `app_dir`, if it is one.
pub fn image_in(app_dir: &Path) -> Option<String> {
    let bytes = crate::state::files::read_nofollow(&app_dir.join(FILE)).ok()??;
    serde_json::from_slice::<RunRecord>(&bytes).ok().map(|r| r.image)
}

/// Every one-off container under the root, by name.
pub fn all(root: &StateRoot) -> Vec<(String, Option<RunRecord>, RunState)> {
    let Ok(entries) = std::fs::read_dir(root.path().join("apps")) else { return Vec::new() };
    let mut out: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            load(root, &name).map(|(r, s)| (name, r, s))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The running tfctl's hold on a one-off container's name: the record file, locked. Dropped,
/// it removes the container's folder (a failed start, or `--rm`), unless [`Claim::keep`] said
/// otherwise.
pub struct Claim {
    file: Lock,
    dir: PathBuf,
    spares: PathBuf,
    kept: bool,
}

/// How many emptied record folders a state root keeps for later starts (one per start under
/// way at the same time is enough; more would only sit there).
const SPARES: usize = 4;

fn spare(spares: &Path, k: usize) -> PathBuf {
    spares.join(format!("spare-{k}"))
}

/// `rename` that never replaces what is at `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(rustix::fs::CWD, from, rustix::fs::CWD, to, rustix::fs::RenameFlags::NOREPLACE).map_err(std::io::Error::from)
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("a container named {0} already exists under this state root: choose another --name, or remove it with `tfctl rm {0}`")]
    Exists(String),
    #[error("container {0} is being started by another tfctl")]
    Busy(String),
    #[error("cannot create {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Claim {
    /// Takes `name` for a one-off container: fails if any app or container has it.
    pub fn take(root: &StateRoot, name: &str) -> Result<Claim, ClaimError> {
        let dir = app_dir(root, name);
        let spares = root.path().join("tmp/one-off");
        for k in 0..SPARES {
            match rename_noreplace(&spare(&spares, k), &dir) {
                Ok(()) => {
                    // Its last holder may still be letting go of the lock it renamed out.
                    let file = dir.join(FILE);
                    return match Lock::exclusive(&file) {
                        Ok(file) => Ok(Claim { file, dir, spares, kept: false }),
                        Err(source) => Err(ClaimError::Io { path: file, source }),
                    };
                }
                // Taken by another start, or none kept yet.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // The name is in use, or renames fail here: the checks below say which.
                Err(_) => break,
            }
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClaimError::Io { path, source }
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // An app's folder, or a one-off container's, kept or running: never reused.
                if std::fs::read_dir(&dir).map_err(io(&dir))?.next().is_some() {
                    return Err(ClaimError::Exists(name.to_string()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            }
            Err(e) => return Err(io(&dir)(e)),
        }
        let file = dir.join(FILE);
        match Lock::try_exclusive(&file).map_err(io(&file))? {
            Some(file) => Ok(Claim { file, dir, spares, kept: false }),
            None => Err(ClaimError::Busy(name.to_string())),
        }
    }

    /// Writes the record over the previous one, in one write. Never truncated: on ext4,
    /// closing a file that was truncated to zero and rewritten forces its writeback, which a
    /// container start would wait for. A shorter record is padded with spaces, which JSON
    /// readers skip.
    pub fn record(&self, r: &RunRecord) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        let f: &File = self.file.file();
        let old = f.metadata()?.len() as usize;
        if bytes.len() < old {
            bytes.resize(old, b' ');
        }
        f.write_all_at(&bytes, 0)
    }

    /// Leaves the container's folder for `ps`, `rm` and inspection, with its last record.
    pub fn keep(mut self, r: &RunRecord) -> std::io::Result<()> {
        self.kept = true;
        self.record(r)
    }

    /// Empties the record and renames the folder to a free spare slot, still holding its lock;
    /// false if it holds anything but the record, or no slot is free.
    fn give_back(&self) -> bool {
        let only_record = std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.all(|e| e.is_ok_and(|e| e.file_name() == FILE)));
        if !only_record {
            return false;
        }
        let f: &File = self.file.file();
        // Blank, not truncated (see `record`): a reader sees a record not yet written.
        if f.metadata().and_then(|m| f.write_all_at(&vec![b' '; m.len() as usize], 0)).is_err() {
            return false;
        }
        for k in 0..SPARES {
            let mut renamed = rename_noreplace(&self.dir, &spare(&self.spares, k));
            if matches!(&renamed, Err(e) if e.kind() == std::io::ErrorKind::NotFound) && std::fs::create_dir_all(&self.spares).is_ok() {
                renamed = rename_noreplace(&self.dir, &spare(&self.spares, k));
            }
            match renamed {
                Ok(()) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.kept {
            // A `userns "auto"` container's host ids are free again.
            if let (Some(name), Some(root)) = (self.dir.file_name(), self.dir.parent().and_then(Path::parent)) {
                crate::userns::release(&crate::userns::app_prefix(root, &name.to_string_lossy()));
            }
            if !self.give_back() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// A descriptor for the process `id` names, if it still runs: opened first and checked after,
/// so it cannot name a process that took over a reused pid.
pub fn pidfd(id: &ProcessIdentity) -> Option<OwnedFd> {
    let fd = crate::sys::pidfd_open(id.pid).ok()?;
    // SAFETY: pidfd_open returned a new descriptor that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    id.is_alive().then_some(fd)
}

/// Sends `signal` to the container's init; `Ok(false)` if it no longer runs.
pub fn signal(r: &RunRecord, signal: i32) -> std::io::Result<bool> {
    let Some(fd) = r.init.as_ref().and_then(pidfd) else { return Ok(false) };
    match crate::sys::pidfd_send_signal(fd.as_raw_fd(), signal) {
        Ok(()) => Ok(true),
        Err(e) if e == libc::ESRCH => Ok(false),
        Err(e) => Err(std::io::Error::from_raw_os_error(e)),
    }
}

/// Waits until the tfctl process of `r` has exited (it cleans up after its container first),
/// at most `patience`; says whether it did.
pub fn wait_for_tfctl(r: &RunRecord, patience: Duration) -> bool {
    let Some(fd) = r.tfctl.as_ref().and_then(pidfd) else { return true };
    let ms = patience.as_millis().min(i32::MAX as u128) as i32;
    // A pidfd becomes readable when its process exits.
    matches!(crate::sys::poll_one(fd.as_raw_fd(), libc::POLLIN, ms), Ok(r) if r != 0)
}

/// The signal `stop` sends, as `docker stop` chooses it: `run --stop-signal`, else the image's
/// StopSignal (SIGQUIT for nginx, SIGINT for PostgreSQL), else SIGTERM.
fn stop_signal(root: &StateRoot, r: &RunRecord) -> i32 {
    if let Some(n) = r.stop_signal.as_deref().and_then(crate::supervise::supervisor::signal_number) {
        return n;
    }
    let store = crate::image::Store::open(root.path()).ok();
    let image = store.as_ref().and_then(|s| s.image_of(&s.get(&r.image).ok()??).ok());
    image
        .and_then(|i| i.config.config().as_ref()?.stop_signal().clone())
        .and_then(|n| crate::supervise::supervisor::signal_number(&n))
        .unwrap_or(libc::SIGTERM)
}

/// `stop`: the stop signal to the init, then SIGKILL after its stop timeout (`run
/// --stop-timeout`, else `grace`), as `docker stop`; returns once the waiting tfctl has exited
/// (and so has cleaned up), or says why not.
pub fn stop(root: &StateRoot, r: &RunRecord, grace: Duration) -> Result<(), String> {
    let grace = r.stop_timeout.map_or(grace, Duration::from_secs);
    if signal(r, stop_signal(root, r)).map_err(|e| format!("cannot signal it: {e}"))? && !wait_for_tfctl(r, grace) {
        let _ = signal(r, libc::SIGKILL);
    }
    if wait_for_tfctl(r, Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(format!("its tfctl (pid {}) did not exit after the container was killed", r.tfctl.as_ref().map_or(0, |t| t.pid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn record(name: &str) -> RunRecord {
        RunRecord {
            schema: 1,
            name: name.to_string(),
            image: "oci:/images/box".to_string(),
            cgroup: format!("x-{name}"),
            started_at: 1,
            remove: true,
            tfctl: Some(ProcessIdentity::current()),
            init: None,
            exit_code: None,
            exec: None,
            stop_signal: None,
            stop_timeout: None,
            labels: Vec::new(),
            host_modes: Vec::new(),
        }
    }

    #[test]
    fn a_removed_runs_folder_is_reused_by_the_next_start_without_its_record() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(&tmp.path().join("state")).unwrap();
        std::fs::create_dir_all(root.path().join("apps")).unwrap();

        let first = Claim::take(&root, "first-with-a-longer-name").unwrap();
        first.record(&record("first-with-a-longer-name")).unwrap();
        assert_eq!(load(&root, "first-with-a-longer-name").unwrap().1, RunState::Running);
        let inode = std::fs::metadata(path(&root, "first-with-a-longer-name")).unwrap().ino();
        drop(first);
        assert!(!app_dir(&root, "first-with-a-longer-name").exists(), "a --rm run's folder stays under apps/");
        assert!(all(&root).is_empty());

        // The next start gets the same file, emptied: never the previous container's record.
        let second = Claim::take(&root, "second").unwrap();
        assert_eq!(std::fs::metadata(path(&root, "second")).unwrap().ino(), inode, "the spare was not reused");
        let (r, state) = load(&root, "second").unwrap();
        assert!(r.is_none() && state == RunState::Starting, "{r:?} {state:?}");
        second.record(&record("second")).unwrap();
        let (r, _) = load(&root, "second").unwrap();
        assert_eq!(r.unwrap().name, "second");

        // A name in use is never taken over by a spare, kept or not.
        let _ = Claim::take(&root, "third").map(drop);
        assert!(matches!(Claim::take(&root, "second"), Err(ClaimError::Exists(_))));
        second.keep(&RunRecord { exit_code: Some(0), ..record("second") }).unwrap();
        assert!(matches!(Claim::take(&root, "second"), Err(ClaimError::Exists(_))));
        assert_eq!(load(&root, "second").unwrap().1, RunState::Exited(0));
    }

    #[test]
    fn an_empty_record_nobody_holds_is_dead_not_starting() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(&tmp.path().join("state")).unwrap();
        std::fs::create_dir_all(app_dir(&root, "gone")).unwrap();
        std::fs::write(path(&root, "gone"), "   ").unwrap();
        assert_eq!(load(&root, "gone").unwrap().1, RunState::Dead, "a tfctl that died before writing leaves an unremovable entry");
        let held = Claim::take(&root, "held").unwrap();
        assert_eq!(load(&root, "held").unwrap().1, RunState::Starting);
        drop(held);
    }
}
