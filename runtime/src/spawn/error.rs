//! Errors of the spawner and of a start, each naming where it happened and what to do.

use super::plan::{Mode, MountStep, StartPlan};
use crate::start::config::rlimit_name;
use crate::start::step::{split_tmpfs_file_index, Step};

/// Why the spawner could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnerError {
    #[error(
        "the spawner must be forked while tfctl is single-threaded, but {0} threads run already: \
         call Spawner::start() first thing in main, before tokio or any thread starts"
    )]
    NotSingleThreaded(usize),
    #[error("cannot create the spawner's socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("cannot fork the spawner: {0}")]
    Fork(#[source] std::io::Error),
}

/// Why a process was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("tfctl's process starter is gone ({0}): no container can be started from this tfctl process any more; run the command again")]
    SpawnerGone(String),
    #[error("cannot pass the container's settings to tfctl's process starter: {0} (command, environment and files given inline are limited to about 200 KB in all)")]
    Send(#[source] std::io::Error),
    /// Checked before the new process exists (the message says what, in the container's
    /// terms); the user never sees the word "spawner" or "plan".
    #[error("starting the container failed: {0}")]
    Refused(String),
    /// A step of the start sequence failed inside the new process.
    #[error("{}", describe(*step, *errno, subject.as_deref()))]
    Step { step: Step, errno: i32, subject: Option<String> },
}

impl StartError {
    /// The step that failed, if the failure happened in the start sequence.
    pub fn step(&self) -> Option<Step> {
        match self {
            StartError::Step { step, .. } => Some(*step),
            _ => None,
        }
    }

    /// The status `docker run` and `docker exec` give this failure: 127 when the command was not
    /// found, 126 when it could not be executed, 125 for every other failure of tfctl's own.
    pub fn run_status(&self) -> i32 {
        match (self.step(), self.errno()) {
            (Some(Step::Exec), Some(libc::ENOENT)) => 127,
            (Some(Step::Exec), Some(_)) | (Some(Step::Cwd), Some(_)) => 126,
            _ => 125,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            StartError::Step { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Builds the error for a failed step, naming the plan item the step's index points at.
    pub(crate) fn from_failure(plan: &StartPlan, step: Step, errno: i32, index: u32) -> StartError {
        let i = index as usize;
        let setup = match &plan.mode {
            Mode::Container(s) => Some(s.as_ref()),
            Mode::Join => None,
        };
        let subject = match step {
            Step::MountTarget | Step::Mount | Step::DevNodes => setup.and_then(|s| s.mounts.get(i)).map(|m| m.target().to_string()),
            Step::MaskPath => setup.and_then(|s| s.masked_paths.get(i)).cloned(),
            Step::ReadonlyPath => setup.and_then(|s| s.readonly_paths.get(i)).cloned(),
            Step::WriteFile => setup.and_then(|s| s.files.get(i)).map(|f| f.path.clone()),
            Step::TmpfsFile => {
                let (mount, file) = split_tmpfs_file_index(index);
                match setup.and_then(|s| s.mounts.get(mount)) {
                    Some(MountStep::Tmpfs { target, files, .. }) => {
                        files.get(file).map(|f| format!("{}/{}", target.trim_end_matches('/'), f.path.trim_start_matches('/')))
                    }
                    _ => None,
                }
            }
            Step::Sysctl => setup.and_then(|s| s.sysctls.get(i)).map(|(k, v)| format!("{k}={v}")),
            Step::Rlimit => plan.rlimits.get(i).map(|r| format!("{} {}:{}", rlimit_name(r.resource), r.soft, r.hard)),
            Step::Exec => plan.process.argv.first().cloned(),
            Step::Cwd | Step::Workdir => Some(plan.process.cwd.clone()),
            Step::Seccomp => Some(format!("filter #{i}")),
            Step::CgroupAttach => Some(format!("cgroup file #{i}")),
            Step::Uid => Some(plan.user.uid.to_string()),
            Step::Gid => Some(plan.user.gid.to_string()),
            _ => None,
        };
        StartError::Step { step, errno, subject }
    }
}

fn hint(step: Step, errno: i32, subject: Option<&str>) -> &'static str {
    match (step, errno) {
        (Step::Exec, libc::ENOENT) if subject.is_some_and(|s| s.contains('/')) => ": no such file in the container",
        (Step::Exec, libc::ENOENT) => ": no such executable in the container (argv[0] was searched in its PATH)",
        (Step::Exec, libc::EACCES) => ": the file is not executable, or sits on a noexec mount",
        (Step::Exec, libc::E2BIG) => ": the arguments and environment are too long (at most 128 KiB per string)",
        (Step::Exec, libc::ENOEXEC) => ": not an executable for this machine's architecture",
        (Step::Cwd, libc::ENOENT) => ": the working directory does not exist in the container",
        (Step::Workdir, libc::ENOTDIR) => ": the path is a file in the image, not a folder: choose another working directory",
        (Step::Rlimit, libc::EPERM) => {
            ": raising a hard limit needs CAP_SYS_RESOURCE, which this host denies; keep hard limits at most the current ones"
        }
        (Step::RootfsOverlay, libc::ENOENT | libc::ENOTDIR) => ": a layer, the upper or the work directory is missing: pull the image again",
        (Step::RootfsOverlay, _) => {
            ": the kernel refused the overlay; its reason is in the kernel log (`dmesg | grep overlayfs`): \
             overlayfs must be available, and the upper and work directories on one filesystem that supports it"
        }
        (Step::Sysctl, libc::ENOENT) => ": this kernel has no such sysctl in a container's namespaces (check the name in /proc/sys)",
        (Step::Sysctl, libc::EINVAL) => ": the kernel refused the value",
        (Step::CgroupAttach, _) => ": the container's cgroup must exist and accept this process",
        (Step::Seccomp, libc::EINVAL) => ": the kernel rejected the BPF program",
        (Step::DevNull, libc::ENODEV) => ": /dev/null in the container is not the real null device",
        _ => "",
    }
}

fn describe(step: Step, errno: i32, subject: Option<&str>) -> String {
    let err = std::io::Error::from_raw_os_error(errno);
    match subject {
        Some(s) => format!("starting the container failed while {} ({s}): {err}{}", step.describe(), hint(step, errno, subject)),
        None => format!("starting the container failed while {}: {err}{}", step.describe(), hint(step, errno, subject)),
    }
}
