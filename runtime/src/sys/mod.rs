//! Raw Linux syscalls the start sequence needs, as thin wrappers that neither allocate nor touch
//! any lock, so they may run in a freshly cloned child.
//!
//! Each wrapper returns `Err(errno)`; the errno is read right after the call, before anything
//! else can overwrite it. Constants the `libc` crate does not carry yet (the mount API) are
//! defined here from the kernel's uapi headers.

use std::ffi::CStr;
use std::os::fd::RawFd;

pub mod mountapi;
pub mod signal_pipe;
pub mod userns;

pub use mountapi::*;

/// An errno value: the child sends it back as is, the parent names it.
pub type Errno = i32;
pub type SysResult<T> = Result<T, Errno>;

/// The calling thread's errno.
#[inline]
pub fn errno() -> Errno {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

#[inline]
fn check(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

#[inline]
fn check_int(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// What `clone3` returned: in the parent the child's pid and pidfd, in the child nothing.
pub enum Cloned {
    Parent { pid: libc::pid_t, pidfd: RawFd },
    Child,
}

/// clone3 with fork semantics (no new stack: the child continues on a copy of ours) and
/// CLONE_PIDFD always set.
///
/// Where clone3 answers ENOSYS, the classic clone(2) does the same: a seccomp filter that
/// restricts namespaces must refuse clone3 that way, as it cannot see clone3's flags (systemd's
/// `RestrictNamespaces=`, which `tfctl systemd`'s unit sets, and Docker's default profile do).
///
/// # Safety
/// The caller must be single-threaded, or the child must only make async-signal-safe calls:
/// locks held by other threads at the time of the clone stay locked forever in the child.
pub unsafe fn clone3_fork(flags: u64) -> SysResult<Cloned> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone_args is plain old data; zeroed is its documented "no option" value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: args lives across the call and is sized as passed; stack 0 means fork semantics.
    let mut ret = unsafe {
        libc::syscall(libc::SYS_clone3, &mut args as *mut libc::clone_args, std::mem::size_of::<libc::clone_args>())
    };
    if ret < 0 && errno() == libc::ENOSYS {
        // SAFETY: as clone3 above: stack 0 is fork semantics; with CLONE_PIDFD the kernel
        // stores the pidfd through the third argument (parent_tid); child_tid and tls are
        // unused (their order differs between architectures, both are 0).
        ret = unsafe {
            libc::syscall(libc::SYS_clone, args.flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong, 0usize, &mut pidfd as *mut libc::c_int, 0usize, 0usize)
        };
    }
    match check(ret)? {
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent { pid: pid as libc::pid_t, pidfd }),
    }
}

/// The size of a memory page.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// A stack for a child that shares its parent's memory ([`clone_vm`]): mapped once and reused,
/// with an inaccessible guard page below it so an overflow faults instead of writing into
/// whatever lies there.
pub struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    pub fn new(len: usize) -> SysResult<ChildStack> {
        let page = page_size();
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let base = unsafe { libc::mmap(std::ptr::null_mut(), len + page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK, -1, 0) };
        if base == libc::MAP_FAILED {
            return Err(errno());
        }
        let stack = ChildStack { base, len: len + page };
        // SAFETY: the first page of our own mapping.
        check_int(unsafe { libc::mprotect(base, page, libc::PROT_NONE) })?;
        Ok(stack)
    }

    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our mapping: where a downward-growing stack starts.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by any child (see clone_vm).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// clone(2) with CLONE_VM and CLONE_PIDFD: the child runs `entry(arg)` on `stack`, in the
/// caller's memory, until it executes a program (which gives it memory of its own) or exits.
/// No page table is copied at the clone and none is torn down at the execve: this is how
/// posix_spawn starts processes, and it saves a container start about 0.2 ms. Returns the
/// child's pid and a pidfd.
///
/// # Safety
/// The caller must be single-threaded. Until the child has executed a program or exited:
/// - `arg` and `stack` stay valid and no other child uses `stack`;
/// - the child allocates nothing, takes no lock and writes no memory the caller uses (it
///   shares the caller's errno, so the caller makes no call whose errno it reads);
/// - `entry` never returns.
///
/// A child that has closed a close-on-exec descriptor at execve, or any descriptor at exit, has
/// already left the caller's memory (the kernel replaces or drops the memory first).
pub unsafe fn clone_vm(flags: libc::c_int, stack: &ChildStack, entry: extern "C" fn(*mut libc::c_void) -> libc::c_int, arg: *mut libc::c_void) -> SysResult<(libc::pid_t, RawFd)> {
    let mut pidfd: libc::c_int = -1;
    let flags = flags | libc::CLONE_VM | libc::CLONE_PIDFD | libc::SIGCHLD;
    // SAFETY: guaranteed by the caller; with CLONE_PIDFD glibc's wrapper stores the pidfd
    // through its parent_tid argument.
    let pid = unsafe { libc::clone(entry, stack.top(), flags, arg, &mut pidfd as *mut libc::c_int) };
    check_int(pid).map(|pid| (pid, pidfd))
}

/// The classic clone(SIGCHLD) syscall with fork semantics. Used after seccomp is installed,
/// where clone3 answers ENOSYS. Returns 0 in the child.
///
/// # Safety
/// As for [`clone3_fork`].
pub unsafe fn fork_raw() -> SysResult<libc::pid_t> {
    // SAFETY: on x86_64 and aarch64 clone(flags, stack=0, ...) duplicates the process like fork.
    let ret = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    check(ret).map(|p| p as libc::pid_t)
}

/// A CPU affinity mask (`cpu_set_t`: CPUs 0 to 1023).
#[derive(Clone, Copy)]
pub struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// The affinity mask of thread `tid` (0: the calling thread).
    pub fn of(tid: libc::pid_t) -> SysResult<CpuSet> {
        // SAFETY: cpu_set_t is plain old data; all zeroes is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a writable cpu_set_t of the size passed.
        check_int(unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
        Ok(CpuSet(set))
    }

    /// Makes this the affinity mask of thread `tid` (0: the calling thread).
    pub fn apply(&self, tid: libc::pid_t) -> SysResult<()> {
        // SAFETY: the kernel reads a cpu_set_t of the size passed.
        check_int(unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &self.0) }).map(drop)
    }

    /// The same set without `cpu`.
    pub fn without(mut self, cpu: usize) -> CpuSet {
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: `cpu` is within the set's bounds, checked above.
            unsafe { libc::CPU_CLR(cpu, &mut self.0) };
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        // SAFETY: CPU_COUNT only reads the set.
        unsafe { libc::CPU_COUNT(&self.0) == 0 }
    }
}

/// The CPU the calling thread runs on (as of the call).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

pub fn prctl(option: libc::c_int, a2: libc::c_ulong, a3: libc::c_ulong, a4: libc::c_ulong, a5: libc::c_ulong) -> SysResult<libc::c_int> {
    // SAFETY: prctl takes integers for every option used here (no pointers are passed).
    check_int(unsafe { libc::prctl(option, a2, a3, a4, a5) })
}

pub fn setns(fd: RawFd, nstype: libc::c_int) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

pub fn unshare(flags: libc::c_int) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

pub fn mount(source: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong, data: Option<&CStr>) -> SysResult<()> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is a NUL-terminated string or null, valid for the call.
    check_int(unsafe { libc::mount(p(source), target.as_ptr(), p(fstype), flags, p(data).cast()) }).map(drop)
}

pub fn umount2(target: &CStr, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: target is NUL-terminated.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: both NUL-terminated; no libc wrapper exists.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) }).map(drop)
}

pub fn fchdir(fd: RawFd) -> SysResult<()> {
    // SAFETY: integer argument.
    check_int(unsafe { libc::fchdir(fd) }).map(drop)
}

pub fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// getcwd into a caller's buffer; fails with ENOENT when the cwd is unreachable from the root.
pub fn getcwd(buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the buffer is writable for its length; the raw syscall never allocates.
    check(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) }).map(|n| n as usize)
}

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd we own; errors (EINTR) leave it closed on Linux.
    unsafe { libc::close(fd) };
}

pub fn close_range(first: libc::c_uint, last: libc::c_uint, flags: libc::c_uint) -> SysResult<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }).map(drop)
}

/// Marks every descriptor from `first` on close-on-exec: close_range(CLOSE_RANGE_CLOEXEC), or
/// before Linux 5.11 (EINVAL) each descriptor /proc/self/fd lists. No allocation: the listing
/// is read into a buffer on the stack.
/// `TFCTL_FORCE_LEGACY_MOUNT=1` takes the listing too (read before the clone, by
/// [`mountapi::mount_setattr_supported`]).
pub fn cloexec_from(first: libc::c_uint) -> SysResult<()> {
    if !mountapi::force_legacy() {
        match close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) {
            Err(libc::EINVAL) => {}
            other => return other,
        }
    }
    let dir = openat2(libc::AT_FDCWD, c"/proc/self/fd", libc::O_RDONLY | libc::O_DIRECTORY, 0, 0)?;
    let mut buf = [0u8; 4096];
    let result = loop {
        // SAFETY: the buffer is ours and its length is passed.
        let n = match check(unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) }) {
            Ok(0) => break Ok(()),
            Ok(n) => n as usize,
            Err(e) => break Err(e),
        };
        let mut at = 0;
        while at + 19 < n {
            // linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let mut fd: u32 = 0;
            let mut digits = 0;
            for &b in buf[at + 19..(at + reclen).min(n)].iter().take_while(|b| b.is_ascii_digit()) {
                fd = fd.saturating_mul(10).saturating_add(u32::from(b - b'0'));
                digits += 1;
            }
            if digits > 0 && fd >= first {
                // SAFETY: integer arguments; a descriptor closed meanwhile just answers EBADF.
                unsafe { libc::fcntl(fd as RawFd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            at += reclen;
        }
    };
    close(dir);
    result
}

pub fn dup3(old: RawFd, new: RawFd, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: integer arguments.
    check_int(unsafe { libc::dup3(old, new, flags) }).map(drop)
}

pub fn write_all(fd: RawFd, mut data: &[u8]) -> SysResult<()> {
    while !data.is_empty() {
        // SAFETY: data is readable for its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// openat2 with a `RESOLVE_*` policy: the way every path inside a container's rootfs is opened.
pub fn openat2(dirfd: RawFd, path: &CStr, flags: libc::c_int, mode: u64, resolve: u64) -> SysResult<RawFd> {
    // SAFETY: open_how is plain data; zeroed is a valid value before we fill it.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode;
    how.resolve = resolve;
    // SAFETY: how lives across the call and its size is passed.
    check(unsafe { libc::syscall(libc::SYS_openat2, dirfd, path.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>()) })
        .map(|fd| fd as RawFd)
}

pub fn mkdirat(dirfd: RawFd, path: &CStr, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: NUL-terminated path.
    check_int(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dirfd: RawFd, path: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> SysResult<()> {
    // SAFETY: NUL-terminated path.
    check_int(unsafe { libc::mknodat(dirfd, path.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dirfd: RawFd, path: &CStr) -> SysResult<()> {
    // SAFETY: both NUL-terminated.
    check_int(unsafe { libc::symlinkat(target.as_ptr(), dirfd, path.as_ptr()) }).map(drop)
}

pub fn fstat(fd: RawFd) -> SysResult<libc::stat> {
    // SAFETY: stat is plain data, filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is writable.
    check_int(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: always succeeds.
    unsafe { libc::umask(mask) }
}

pub fn sethostname(name: &[u8]) -> SysResult<()> {
    // SAFETY: name is readable for its length.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn setsid() -> SysResult<()> {
    // SAFETY: no arguments.
    check_int(unsafe { libc::setsid() }).map(drop)
}

pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> SysResult<()> {
    let lim = libc::rlimit64 { rlim_cur: soft, rlim_max: hard };
    // SAFETY: prlimit64 on ourselves (pid 0) reads lim and writes nothing (old is null).
    check(unsafe { libc::syscall(libc::SYS_prlimit64, 0, resource, &lim as *const libc::rlimit64, std::ptr::null_mut::<libc::rlimit64>()) }).map(drop)
}

pub fn getrlimit(resource: u32) -> SysResult<(u64, u64)> {
    let mut lim = libc::rlimit64 { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit64 on ourselves writes only lim.
    check(unsafe { libc::syscall(libc::SYS_prlimit64, 0, resource, std::ptr::null::<libc::rlimit64>(), &mut lim as *mut libc::rlimit64) })?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// setgroups/setresgid/setresuid as raw syscalls: glibc's wrappers broadcast the change to every
/// thread through a signal handshake, which is not async-signal-safe (and we are alone anyway).
pub fn setgroups(groups: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: groups is readable for its length.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

pub fn setresgid(gid: libc::gid_t) -> SysResult<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// setfsuid: the uid files are made and checked with; returns the previous one (it never fails).
pub fn setfsuid(uid: libc::uid_t) -> libc::uid_t {
    // SAFETY: an integer argument; a raw syscall, as the rest of the start sequence.
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) as libc::uid_t }
}

/// setfsgid: as [`setfsuid`], for the gid.
pub fn setfsgid(gid: libc::gid_t) -> libc::gid_t {
    // SAFETY: an integer argument.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) as libc::gid_t }
}

pub fn setresuid(uid: libc::uid_t) -> SysResult<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// execve; returns only on failure.
///
/// # Safety
/// `argv` and `envp` must be null-terminated arrays of pointers to NUL-terminated strings, all
/// alive for the call.
pub unsafe fn execve(path: &CStr, argv: *const *const libc::c_char, envp: *const *const libc::c_char) -> Errno {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::execve(path.as_ptr(), argv, envp) };
    errno()
}

pub fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, which a child must not run.
    unsafe { libc::_exit(code) }
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: integer arguments.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// wait4 on any child; returns (pid, raw wait status).
pub fn wait_any(flags: libc::c_int) -> SysResult<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    // SAFETY: status is writable; no rusage requested.
    let pid = check_int(unsafe { libc::wait4(-1, &mut status, flags, std::ptr::null_mut()) })?;
    Ok((pid, status))
}

/// Collects the exit of the child behind `pidfd` if it can be collected now: its raw wait
/// status, or `None` while it cannot. `None` does not mean running: a zombie that another
/// process ptraces is shown to its tracer first, and to us only once the tracer has waited for
/// it or gone (we then get SIGCHLD). Only exits are asked for (WEXITED), never stops.
pub fn collect_exit(pidfd: RawFd) -> SysResult<Option<libc::c_int>> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed, si_pid stays 0 when nothing is collected.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is writable for the call; integer arguments otherwise.
        match check_int(unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG) }) {
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // SAFETY: waitid filled the SIGCHLD fields of info (or left it zeroed).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        // Back to the raw form waitpid gives (what ExitStatus::from_wait_status reads).
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_DUMPED => (status & 0x7f) | 0x80,
            _ => status & 0x7f,
        }));
    }
}

pub fn pidfd_send_signal(pidfd: RawFd, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: integer arguments; no siginfo passed.
    check(unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, std::ptr::null::<libc::siginfo_t>(), 0u32) }).map(drop)
}

/// A pidfd for `pid` (close-on-exec). The caller owns the descriptor.
pub fn pidfd_open(pid: libc::pid_t) -> SysResult<RawFd> {
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) }).map(|fd| fd as RawFd)
}

/// Blocks every signal (or restores `old`), returning the previous mask.
pub fn sigprocmask(how: libc::c_int, set: &libc::sigset_t) -> SysResult<libc::sigset_t> {
    // SAFETY: sigset_t is plain data.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: raw rt_sigprocmask with the kernel's sigset size; both pointers valid.
    check(unsafe { libc::syscall(libc::SYS_rt_sigprocmask, how, set as *const libc::sigset_t, &mut old as *mut libc::sigset_t, 8usize) })?;
    Ok(old)
}

pub fn full_sigset() -> libc::sigset_t {
    // SAFETY: sigfillset only writes the set.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut s);
        s
    }
}

pub fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset only writes the set.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        s
    }
}

/// Waits for a blocked signal; returns its number.
pub fn sigwait(set: &libc::sigset_t) -> SysResult<libc::c_int> {
    // SAFETY: raw rt_sigtimedwait without info or timeout; set valid for the call.
    check(unsafe { libc::syscall(libc::SYS_rt_sigtimedwait, set as *const libc::sigset_t, std::ptr::null_mut::<libc::siginfo_t>(), std::ptr::null::<libc::timespec>(), 8usize) })
        .map(|s| s as libc::c_int)
}

pub fn ioctl_int(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> SysResult<()> {
    // SAFETY: only used with requests taking an integer argument (TIOCSCTTY).
    check_int(unsafe { libc::ioctl(fd, req, arg) }).map(drop)
}

pub fn poll_one(fd: RawFd, events: libc::c_short, timeout_ms: libc::c_int) -> SysResult<libc::c_short> {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: p is one valid pollfd.
    check_int(unsafe { libc::poll(&mut p, 1, timeout_ms) })?;
    Ok(p.revents)
}

/// poll(2) on several descriptors, retried on EINTR; returns how many have events.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> SysResult<usize> {
    loop {
        // SAFETY: fds is a valid, writable array of its length.
        match check_int(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }) {
            Err(libc::EINTR) => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

pub fn pipe2(flags: libc::c_int) -> SysResult<[RawFd; 2]> {
    let mut fds = [-1; 2];
    // SAFETY: fds has room for two descriptors.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    Ok(fds)
}

/// The namespaces a pidfd can hand out (PIDFD_GET_*_NAMESPACE, Linux 6.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    Cgroup,
    Ipc,
    Mount,
    Net,
    Pid,
    Uts,
}

/// A descriptor of one namespace of the process behind `pidfd` (for setns, or to keep it).
pub fn pidfd_namespace(pidfd: RawFd, ns: Namespace) -> SysResult<RawFd> {
    let req = match ns {
        Namespace::Cgroup => libc::PIDFD_GET_CGROUP_NAMESPACE,
        Namespace::Ipc => libc::PIDFD_GET_IPC_NAMESPACE,
        Namespace::Mount => libc::PIDFD_GET_MNT_NAMESPACE,
        Namespace::Net => libc::PIDFD_GET_NET_NAMESPACE,
        Namespace::Pid => libc::PIDFD_GET_PID_NAMESPACE,
        Namespace::Uts => libc::PIDFD_GET_UTS_NAMESPACE,
    };
    // SAFETY: these ioctls take no argument and return a new descriptor.
    check_int(unsafe { libc::ioctl(pidfd, req as _, 0) })
}

/// Sends `data` with one descriptor (SCM_RIGHTS) on a connected socket, without allocating.
pub fn send_with_fd(sock: RawFd, data: &[u8], fd: RawFd) -> SysResult<()> {
    // Room for one cmsghdr carrying one int, 8-byte aligned.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic; the buffer above is larger than CMSG_SPACE(4).
    unsafe {
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, fd);
    }
    // SAFETY: msg points at iov and control, both alive for the call.
    check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as libc::c_long).map(drop)
}

/// A new pty from the devpts instance whose `ptmx` is `ptmx_path` (in the current root):
/// returns (master, slave), both close-on-exec, the slave owned by `uid`:`gid`.
pub fn open_pty(ptmx_path: &CStr, uid: libc::uid_t, gid: libc::gid_t) -> SysResult<(RawFd, RawFd)> {
    let master = openat2(libc::AT_FDCWD, ptmx_path, libc::O_RDWR | libc::O_NOCTTY, 0, libc::RESOLVE_NO_MAGICLINKS)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int; TIOCGPTPEER takes open flags and returns a new fd.
    let slave = unsafe {
        if libc::ioctl(master, libc::TIOCSPTLCK, &unlock) < 0 {
            let e = errno();
            close(master);
            return Err(e);
        }
        libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC)
    };
    if slave < 0 {
        let e = errno();
        close(master);
        return Err(e);
    }
    // SAFETY: integer arguments on descriptors we own.
    if unsafe { libc::fchown(slave, uid, gid) } < 0 {
        let e = errno();
        close(master);
        close(slave);
        return Err(e);
    }
    Ok((master, slave))
}

/// capset(2) on the calling thread: the low and high words of the effective, permitted and
/// inheritable sets (version 3).
pub fn capset(words: [[u32; 3]; 2]) -> SysResult<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: header and the two data words (each effective, permitted, inheritable: the
    // layout of struct __user_cap_data_struct) are valid for the call, as capset(2) requires.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, words.as_ptr()) }).map(drop)
}

/// Takes ownership of descriptors the kernel just installed (SCM_RIGHTS).
pub fn owned_received_fds(raw: impl IntoIterator<Item = RawFd>) -> Vec<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller passes descriptors a recvmsg just installed in this process, which
    // nothing else refers to: each is owned exactly once from here.
    raw.into_iter().map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }).collect()
}

/// Overwrites, in place, the value of every `VAR=` entry of the process's environment block,
/// so /proc/PID/environ no longer shows it. Call only while the process has a single thread.
pub fn wipe_environ_value(var: &str) {
    extern "C" {
        static mut environ: *const *mut libc::c_char;
    }
    let prefix = format!("{var}=");
    // SAFETY: `environ` is the process's environment array, NULL-terminated, whose entries are
    // NUL-terminated strings; the caller has a single thread, so nothing reads or changes the
    // environment meanwhile. Each matching entry's value is overwritten within its own length,
    // so the entry stays (as `VAR=` followed by NULs) and no pointer is invalidated.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return;
        }
        while !(*p).is_null() {
            let entry = CStr::from_ptr(*p);
            let len = entry.to_bytes().len();
            if entry.to_bytes().starts_with(prefix.as_bytes()) {
                std::ptr::write_bytes((*p).add(prefix.len()), 0, len - prefix.len());
            }
            p = p.add(1);
        }
    }
}

/// Copies the window size of the terminal `from` to the terminal (or pty) `to`.
pub fn copy_window_size(from: RawFd, to: RawFd) -> SysResult<()> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills the winsize we pass; TIOCSWINSZ reads it.
    check_int(unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) })?;
    // SAFETY: as above; TIOCSWINSZ only reads the winsize.
    check_int(unsafe { libc::ioctl(to, libc::TIOCSWINSZ, &ws as *const libc::winsize) }).map(drop)
}

/// How many threads this process has now: the entries of /proc/self/task (cheaper for the
/// kernel to list than /proc/self/status is to write; every `run` asks).
pub fn thread_count() -> std::io::Result<u32> {
    Ok(std::fs::read_dir("/proc/self/task")?.count() as u32)
}

/// Forks when the process has a single thread, and only then: the child may then run any code
/// (no lock can be held by a thread that does not exist in it).
pub fn fork_single_threaded() -> std::io::Result<nix::unistd::ForkResult> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(std::io::Error::other(format!("cannot fork safely: the process has {threads} threads")));
    }
    // SAFETY: checked just above that this is the only thread.
    unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)
}

/// Restores SIGPIPE's default disposition (Rust's runtime ignores it), so writing into a closed
/// pipe ends the process quietly, as it does `ls`.
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL runs no handler code; the disposition is process-wide and the
    // caller does it before any thread of its own exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
