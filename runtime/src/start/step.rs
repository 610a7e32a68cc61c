//! The named steps of the start sequence and the failure record a child sends back.

use crate::sys::Errno;

macro_rules! steps {
    ($($name:ident = $n:literal: $text:literal,)*) => {
        /// One step of the start sequence; a failure names the step it happened in.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Step { $($name = $n,)* }

        impl Step {
            pub fn from_u32(n: u32) -> Option<Step> {
                match n { $($n => Some(Step::$name),)* _ => None }
            }
            /// What the step does, as a phrase ("mounting /proc").
            pub fn describe(self) -> &'static str {
                match self { $(Step::$name => $text,)* }
            }
        }
    };
}

steps! {
    DeathSignal = 1: "setting the parent-death signal",
    Dumpable = 2: "making the process non-dumpable",
    CgroupAttach = 3: "attaching to the container's cgroup (writing 0 to its tasks/cgroup.procs file)",
    Rprivate = 4: "making / rprivate in the new mount namespace",
    CgroupNamespace = 5: "unsharing the cgroup namespace",
    JoinNetwork = 6: "joining the network namespace",
    JoinNamespaces = 7: "joining the target container's namespaces",
    RootfsUpper = 8: "mounting the tmpfs for the overlay's upper directory",
    RootfsOverlay = 9: "mounting the image overlay",
    RootfsBind = 10: "bind-mounting the root directory",
    RootfsAttach = 11: "attaching the root filesystem at its mountpoint",
    MountTarget = 12: "resolving or creating a mount point inside the rootfs",
    Mount = 13: "mounting a filesystem",
    DevNodes = 14: "creating the /dev nodes",
    WriteFile = 15: "writing a file into the container",
    TmpfsFile = 51: "writing a file into a tmpfs mount",
    ReadonlyRootfs = 16: "making the rootfs read-only",
    PivotRoot = 17: "pivot_root into the rootfs",
    DetachOldRoot = 18: "detaching the old root",
    DevNull = 19: "opening the container's /dev/null (it must be the char device 1:3)",
    MaskPath = 20: "masking a path",
    ReadonlyPath = 21: "making a path read-only",
    Hostname = 22: "setting the hostname",
    Stdio = 23: "installing stdin/stdout/stderr",
    Setsid = 24: "starting a new session (setsid)",
    ControllingTty = 25: "making the terminal the controlling tty",
    Rlimit = 26: "setting a resource limit",
    KeepCaps = 27: "keeping capabilities across the user change",
    BoundingSet = 28: "dropping capabilities from the bounding set",
    Groups = 29: "setting the supplementary groups",
    Gid = 30: "setting the group id",
    Uid = 31: "setting the user id",
    Cwd = 32: "changing to the working directory",
    Capset = 33: "setting the capability sets",
    Ambient = 34: "setting the ambient capabilities",
    NoNewPrivs = 35: "setting no_new_privs",
    CloseFds = 36: "marking inherited descriptors close-on-exec",
    Seccomp = 37: "installing a seccomp filter",
    InitFork = 38: "forking the process under the init reaper",
    Exec = 39: "executing the process",
    Pty = 40: "allocating a pty in the container's devpts (/dev/pts/ptmx)",
    SecretMount = 41: "placing a secret file (a mount of one file of the secrets tmpfs)",
    OverlayLinks = 42: "naming the image layers for the overlay (links in a private tmpfs)",
    InitName = 43: "naming the init process (its command line in /proc)",
    IdmapLayers = 44: "mounting the image layers idmapped for the container's user namespace (needs Linux 5.19 and a file system that supports idmapped mounts)",
    JoinUserNamespace = 45: "joining the container's user namespace",
    FsIds = 47: "making files as the container's root for its user namespace (setfsuid, securebits)",
    Sysctl = 48: "setting a sysctl in the container's namespaces",
    Workdir = 49: "creating the working directory in the rootfs",
    Console = 50: "binding the terminal on /dev/console",
    StartGate = 52: "waiting for the start signal (the exec FIFO of `tfctl oci create`)",
    UnprivilegedPorts = 46: "letting the container's root bind ports below 1024 in its network namespace (net.ipv4.ip_unprivileged_port_start)",
}

/// A failed step: the step, the kernel's errno, and an index into the plan's list the step walks
/// (mount step, masked path, rlimit, file, seccomp program...), 0 otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub errno: Errno,
    pub index: u32,
}

impl Failure {
    pub fn new(step: Step, errno: Errno) -> Failure {
        Failure { step, errno, index: 0 }
    }
    pub fn at(step: Step, index: usize) -> impl FnOnce(Errno) -> Failure {
        move |errno| Failure { step, errno, index: index as u32 }
    }
}

/// The failure index of file `file` of the tmpfs mount `mount`: both numbers in one index, 16
/// bits each (a plan has far fewer mounts and files; larger ones saturate and name nothing).
pub(crate) fn tmpfs_file_index(mount: usize, file: usize) -> usize {
    mount.min(0xffff) << 16 | file.min(0xffff)
}

/// The mount and file indexes `tmpfs_file_index` put together.
pub(crate) fn split_tmpfs_file_index(index: u32) -> (usize, usize) {
    ((index >> 16) as usize, (index & 0xffff) as usize)
}

/// Attaches a step to a syscall result.
pub(crate) trait StepExt<T> {
    fn step(self, step: Step) -> Result<T, Failure>;
    fn step_at(self, step: Step, index: usize) -> Result<T, Failure>;
}

impl<T> StepExt<T> for Result<T, Errno> {
    #[inline]
    fn step(self, step: Step) -> Result<T, Failure> {
        self.map_err(|errno| Failure::new(step, errno))
    }
    #[inline]
    fn step_at(self, step: Step, index: usize) -> Result<T, Failure> {
        self.map_err(Failure::at(step, index))
    }
}

/// The fixed-size record a child (or its init) writes on the sync socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncMsg {
    Failed(Failure),
    /// Init mode only: the process under the init has been executed.
    Executed,
    /// Init mode only: the process exited with this raw wait status.
    Exited(i32),
    /// The pty master travels with this message (SCM_RIGHTS).
    PtyMaster,
}

const KIND_FAILED: u32 = 1;
const KIND_EXECUTED: u32 = 2;
const KIND_EXITED: u32 = 3;
const KIND_PTY_MASTER: u32 = 4;
pub(crate) const SYNC_MSG_LEN: usize = 16;

impl SyncMsg {
    pub fn encode(self) -> [u8; SYNC_MSG_LEN] {
        let (kind, a, b, c) = match self {
            SyncMsg::Failed(f) => (KIND_FAILED, f.step as u32, f.errno as u32, f.index),
            SyncMsg::Executed => (KIND_EXECUTED, 0, 0, 0),
            SyncMsg::Exited(status) => (KIND_EXITED, status as u32, 0, 0),
            SyncMsg::PtyMaster => (KIND_PTY_MASTER, 0, 0, 0),
        };
        let mut out = [0u8; SYNC_MSG_LEN];
        for (i, v) in [kind, a, b, c].into_iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Option<SyncMsg> {
        if buf.len() != SYNC_MSG_LEN {
            return None;
        }
        let w = |i: usize| u32::from_ne_bytes(buf[i * 4..i * 4 + 4].try_into().unwrap());
        match w(0) {
            KIND_FAILED => Some(SyncMsg::Failed(Failure { step: Step::from_u32(w(1))?, errno: w(2) as i32, index: w(3) })),
            KIND_EXECUTED => Some(SyncMsg::Executed),
            KIND_EXITED => Some(SyncMsg::Exited(w(1) as i32)),
            KIND_PTY_MASTER => Some(SyncMsg::PtyMaster),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_messages_round_trip() {
        for m in [SyncMsg::Failed(Failure { step: Step::Exec, errno: libc::ENOENT, index: 7 }), SyncMsg::Executed, SyncMsg::Exited(9), SyncMsg::PtyMaster] {
            assert_eq!(SyncMsg::decode(&m.encode()), Some(m));
        }
        assert_eq!(SyncMsg::decode(&[0u8; 16]), None);
    }
}
