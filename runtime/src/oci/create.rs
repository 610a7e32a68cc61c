//! `create`: the container's process set up and waiting at its start gate, its pid written to
//! `--pid-file`, and the runtime gone (see the module docs for how the process outlives it).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::hooks::{self, Kind};
use super::plan::{self, namespace};
use super::state::{write_atomic, Container, Record, Root, Status};
use crate::state::identity::stat_of;
use super::OciError;
use crate::cgroup::{self, ContainerCgroup};
use crate::spawn::{Child, Spawner, StartFds, StartPlan};

pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

/// `create [--bundle B] [--pid-file F] [--console-socket S] ID`.
pub fn create(root: &Root, id: &str, opts: &CreateOpts, spawner: &Spawner) -> Result<(), OciError> {
    let created = launch(root, id, opts, spawner, true)?;
    drop(created.child);
    Ok(())
}

/// A container just launched: its record written, its hooks run up to `createContainer`.
pub(crate) struct Launched {
    pub container: Container,
    pub spec: Spec,
    pub child: Child,
}

/// `create`'s work; `gated` false for `run`, whose process goes straight on to its execve and
/// stays the spawner's child (so its exit is heard).
pub(crate) fn launch(root: &Root, id: &str, opts: &CreateOpts, spawner: &Spawner, gated: bool) -> Result<Launched, OciError> {
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(OciError::io("cannot open the bundle", &opts.bundle))?;
    let spec = plan::load_spec(&bundle)?;
    if spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false) && opts.console_socket.is_none() {
        return Err(OciError::Config { path: bundle.join("config.json"), message: "process.terminal is true: give --console-socket to receive the terminal".into() });
    }
    let dir = root.make(id)?;
    let mut cgroup: Option<Box<dyn ContainerCgroup>> = None;
    let result = launch_in(&dir, id, &bundle, &spec, opts, spawner, gated, &mut cgroup);
    match result {
        Ok((container, child)) => Ok(Launched { container, spec, child }),
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn launch_in(
    dir: &Path,
    id: &str,
    bundle: &Path,
    spec: &Spec,
    opts: &CreateOpts,
    spawner: &Spawner,
    gated: bool,
    cgroup_out: &mut Option<Box<dyn ContainerCgroup>>,
) -> Result<(Container, Child), OciError> {
    let mountpoint = dir.join("rootfs");
    std::fs::create_dir(&mountpoint).map_err(OciError::io("cannot make", &mountpoint))?;
    let mut plan: StartPlan = plan::plan(spec, bundle, mountpoint)?;
    plan.detached = gated;

    let mut fds = StartFds::default();
    if gated {
        let fifo = dir.join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| OciError::io("cannot make the start FIFO", &fifo)(e.into()))?;
        // Read-write: the child's read then waits for a byte, not for a writer to appear.
        let gate = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(&fifo).map_err(OciError::io("cannot open", &fifo))?;
        fds.start_gate = Some(gate.into());
    }
    // tfctl's own cgroup place, named after the id and its state folder (two roots may use
    // the same id); the config's cgroupsPath is not used.
    let driver = cgroup::detect("oci")?;
    let cg = driver.create(&format!("oci-{id}-{:016x}", folder_hash(dir)), &plan::limits(spec))?;
    let cgroups = cg.paths();
    fds.cgroup_procs = cg.attach_files()?.fds;
    *cgroup_out = Some(cg);
    fds.netns = match namespace(spec, LinuxNamespaceType::Network) {
        Some(None) => None,
        Some(Some(path)) => Some(open_ns(&path)?),
        None => Some(open_ns(Path::new("/proc/self/ns/net"))?),
    };
    // The runtime's stdio is the container's: the shim hands its pipes or FIFOs this way.
    fds.stdin = std::io::stdin().as_fd().try_clone_to_owned().ok();
    fds.stdout = std::io::stdout().as_fd().try_clone_to_owned().ok();
    fds.stderr = std::io::stderr().as_fd().try_clone_to_owned().ok();

    let mut child = spawner.launch(&plan, fds)?;
    let pid = child.pid();
    if let (Some(master), Some(socket)) = (child.take_pty(), &opts.console_socket) {
        send_console(socket, master)?;
    }
    let record = Record {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid,
        pid_start: stat_of(pid).map_or(0, |(_, start)| start),
        bundle: bundle.to_path_buf(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroups,
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    let container = Container { dir: dir.to_path_buf(), record };
    let fail = |e: OciError| {
        let _ = child.signal(libc::SIGKILL);
        e
    };
    write_atomic(&dir.join("plan.json"), &serde_json::to_vec(&plan).unwrap_or_default()).map_err(fail)?;
    write_atomic(&dir.join("state.json"), &serde_json::to_vec(&container.record).unwrap_or_default()).map_err(fail)?;
    let mut doc = container.doc();
    doc.status = Status::Created;
    for kind in [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer] {
        hooks::run(kind, spec, &doc).map_err(fail)?;
    }
    if let Some(path) = &opts.pid_file {
        write_atomic(path, pid.to_string().as_bytes()).map_err(fail)?;
    }
    Ok((container, child))
}

fn folder_hash(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    h.finish()
}

fn open_ns(path: &Path) -> Result<OwnedFd, OciError> {
    std::fs::File::open(path).map(OwnedFd::from).map_err(OciError::io("cannot open the namespace", path))
}

/// The console socket protocol: the pty master, sent with SCM_RIGHTS over the caller's
/// unix socket.
pub(crate) fn send_console(socket: &Path, master: OwnedFd) -> Result<(), OciError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let fail = |source: std::io::Error| OciError::ConsoleSocket { path: socket.to_path_buf(), source };
    let stream = std::os::unix::net::UnixStream::connect(socket).map_err(fail)?;
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::MSG_NOSIGNAL, None).map_err(|e| fail(e.into()))?;
    Ok(())
}
