//! What a running container uses, read from the kernel (`tfctl stats`, `tfctl top`, the usage
//! part of `tfctl inspect`): its cgroup's files first, and where this host's cgroups do not
//! account for it (on cgroup v1 a container has a memory or cpu cgroup only when it has that
//! limit) the sum over its processes in /proc; `source` says which. Network I/O is its network
//! namespace's (/proc/PID/net/dev of a process in it), loopback left out.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cgroup::{CgroupError, ContainerCgroup};
use crate::state::StateRoot;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("cannot find the cgroups of app {app}: {source}")]
    Driver { app: String, source: CgroupError },
    #[error("container {container}: cannot read its cgroup: {source}")]
    Cgroup { container: String, source: CgroupError },
}

/// Where a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The container's cgroup: everything it ever ran counts.
    Cgroup,
    /// The sum over its live processes in /proc (a process that exited no longer counts).
    Procs,
}

/// One reading of a container's usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    pub cpu_source: Source,
    /// Memory in use, in bytes (the cgroup's charge, else the processes' resident set).
    pub memory_bytes: u64,
    pub memory_source: Source,
    /// The memory limit in force, in bytes; `None` without one.
    pub memory_limit_bytes: Option<u64>,
    /// Processes (and threads, as `pids.current` counts them).
    pub pids: u64,
    /// Bytes received and sent on its network interfaces, loopback left out.
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Bytes read from and written to block devices.
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub block_source: Source,
    /// Times the kernel killed one of its processes at the memory limit (with a memory cgroup).
    pub oom_kills: Option<u64>,
}

/// The cgroup of a container of a supervised app, opened for reading.
pub fn container_cgroup(root: &StateRoot, app: &str, container: &str) -> Result<Box<dyn ContainerCgroup>, StatsError> {
    let driver = crate::container::cgroup_driver(root, app, false).map_err(|source| StatsError::Driver { app: app.to_string(), source })?;
    Ok(driver.open(&crate::container::cgroup_name(root, app, container)))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The first of `files` that exists in one of the cgroup's directories.
fn cgroup_file(dirs: &[PathBuf], files: &[&str]) -> Option<(PathBuf, String)> {
    files.iter().find_map(|f| dirs.iter().map(|d| d.join(f)).find_map(|p| read(&p).map(|t| (p, t))))
}

/// The processes in the container's cgroup.
pub fn pids(cg: &dyn ContainerCgroup, container: &str) -> Result<Vec<i32>, StatsError> {
    cg.pids().map_err(|source| StatsError::Cgroup { container: container.to_string(), source })
}

/// Reads a container's usage now.
pub fn usage(cg: &dyn ContainerCgroup, container: &str) -> Result<Usage, StatsError> {
    let stats = cg.stats().map_err(|source| StatsError::Cgroup { container: container.to_string(), source })?;
    let procs = pids(cg, container)?;
    let dirs = cg.paths();
    let (cpu_ns, cpu_source) = match stats.cpu_usage_ns {
        Some(ns) => (ns, Source::Cgroup),
        None => (procs.iter().map(|p| process_cpu_ns(*p)).sum(), Source::Procs),
    };
    let (memory_bytes, memory_source) = match stats.memory_bytes {
        Some(b) => (b, Source::Cgroup),
        None => (procs.iter().filter_map(|p| proc_status(*p).map(|s| s.rss_bytes)).sum(), Source::Procs),
    };
    let memory_limit_bytes = cgroup_file(&dirs, &["memory.max", "memory.limit_in_bytes"]).and_then(|(_, t)| limit(&t));
    let pids = stats.pids.unwrap_or(procs.len() as u64);
    let (net_rx_bytes, net_tx_bytes) = procs.first().and_then(|p| read(Path::new(&format!("/proc/{p}/net/dev")))).map(|t| net_dev(&t)).unwrap_or_default();
    let (block_read_bytes, block_write_bytes, block_source) = match cgroup_file(&dirs, &["io.stat", "blkio.throttle.io_service_bytes"]) {
        Some((p, t)) if p.ends_with("io.stat") => (io_stat(&t, "rbytes="), io_stat(&t, "wbytes="), Source::Cgroup),
        Some((_, t)) => (blkio(&t, "Read"), blkio(&t, "Write"), Source::Cgroup),
        None => {
            let (r, w) = procs.iter().filter_map(|p| read(Path::new(&format!("/proc/{p}/io")))).map(|t| proc_io(&t)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            (r, w, Source::Procs)
        }
    };
    Ok(Usage {
        cpu_ns,
        cpu_source,
        memory_bytes,
        memory_source,
        memory_limit_bytes,
        pids,
        net_rx_bytes,
        net_tx_bytes,
        block_read_bytes,
        block_write_bytes,
        block_source,
        oom_kills: stats.oom_kills,
    })
}

/// A memory limit as the kernel writes it: `max` (v2) or a huge page-rounded number (v1) mean
/// none.
fn limit(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|v| *v < (1 << 62))
}

/// CPU time of every thread of a process (`/proc/PID/task/*/schedstat`: nanoseconds on the CPU
/// first), so no clock-tick conversion is needed.
fn process_cpu_ns(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| read(&t.path().join("schedstat")))
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `/proc/net/dev`: received and sent bytes over every interface but loopback.
pub fn net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            if name.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 ...` per device, summed.
fn io_stat(text: &str, key: &str) -> u64 {
    text.split_whitespace().filter_map(|f| f.strip_prefix(key)?.parse::<u64>().ok()).sum()
}

/// v1 `blkio.throttle.io_service_bytes`: `8:0 Read 123` per device (and a `Total` line).
fn blkio(text: &str, op: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1] == op).then(|| f[2].parse::<u64>().ok()).flatten()
        })
        .sum()
}

/// `/proc/PID/io`: `read_bytes` and `write_bytes` (what reached the block layer).
fn proc_io(text: &str) -> (u64, u64) {
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)?.trim().parse().ok()).unwrap_or(0);
    (get("read_bytes:"), get("write_bytes:"))
}

/// What `/proc/PID/status` says of a process.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcStatus {
    pub name: String,
    pub state: String,
    pub ppid: i32,
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    /// Its pid in each pid namespace it is in, outermost first.
    pub ns_pids: Vec<i32>,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    /// 0 disabled, 1 strict, 2 filter.
    pub seccomp: u8,
    pub seccomp_filters: Option<u32>,
    pub no_new_privs: bool,
    pub rss_bytes: u64,
    pub threads: u32,
}

/// Parses `/proc/PID/status`.
pub fn parse_status(text: &str) -> ProcStatus {
    let mut s = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        let nums = || value.split_whitespace().filter_map(|v| v.parse::<u32>().ok()).collect::<Vec<_>>();
        let quad = || {
            let n = nums();
            [0, 1, 2, 3].map(|i| n.get(i).copied().unwrap_or(0))
        };
        let hex = || u64::from_str_radix(value, 16).unwrap_or(0);
        match key {
            "Name" => s.name = value.to_string(),
            "State" => s.state = value.to_string(),
            "PPid" => s.ppid = value.parse().unwrap_or(0),
            "Uid" => s.uid = quad(),
            "Gid" => s.gid = quad(),
            "Groups" => s.groups = nums(),
            "NSpid" => s.ns_pids = value.split_whitespace().filter_map(|v| v.parse().ok()).collect(),
            "CapInh" => s.cap_inh = hex(),
            "CapPrm" => s.cap_prm = hex(),
            "CapEff" => s.cap_eff = hex(),
            "CapBnd" => s.cap_bnd = hex(),
            "CapAmb" => s.cap_amb = hex(),
            "Seccomp" => s.seccomp = value.parse().unwrap_or(0),
            "Seccomp_filters" => s.seccomp_filters = value.parse().ok(),
            "NoNewPrivs" => s.no_new_privs = value == "1",
            "VmRSS" => s.rss_bytes = value.trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) * 1024,
            "Threads" => s.threads = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    s
}

/// `/proc/PID/status` of a live process.
pub fn proc_status(pid: i32) -> Option<ProcStatus> {
    read(Path::new(&format!("/proc/{pid}/status"))).map(|t| parse_status(&t))
}

/// A process's command line; its name in brackets when it has none (a kernel thread, a zombie).
pub fn command_line(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// One process of a container, as `tfctl top` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    /// Its pid on the host.
    pub pid: i32,
    /// Its pid inside the container (its innermost pid namespace).
    pub container_pid: Option<i32>,
    pub ppid: i32,
    /// Effective uid and gid, as the host numbers them.
    pub uid: u32,
    pub gid: u32,
    pub state: String,
    pub threads: u32,
    pub rss_bytes: u64,
    pub cpu_ns: u64,
    pub command: Vec<String>,
}

/// The container's processes, by pid; one that exits while being read is left out.
pub fn processes(cg: &dyn ContainerCgroup, container: &str) -> Result<Vec<Process>, StatsError> {
    let mut out: Vec<Process> = pids(cg, container)?
        .into_iter()
        .filter_map(|pid| {
            let s = proc_status(pid)?;
            let mut command = command_line(pid);
            if command.is_empty() {
                command = vec![format!("[{}]", s.name)];
            }
            Some(Process {
                pid,
                container_pid: s.ns_pids.last().copied(),
                ppid: s.ppid,
                uid: s.uid[1],
                gid: s.gid[1],
                state: s.state.clone(),
                threads: s.threads,
                rss_bytes: s.rss_bytes,
                cpu_ns: process_cpu_ns(pid),
                command,
            })
        })
        .collect();
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let status = "Name:\tsleep\nState:\tS (sleeping)\nPPid:\t7\nUid:\t1000\t1000\t1000\t1000\nGid:\t10\t11\t12\t13\nGroups:\t4 24 \nNSpid:\t4242\t1\nThreads:\t1\nVmRSS:\t     512 kB\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        let s = parse_status(status);
        assert_eq!((s.name.as_str(), s.ppid, s.uid, s.gid[1]), ("sleep", 7, [1000; 4], 11));
        assert_eq!((s.groups, s.ns_pids, s.rss_bytes), (vec![4, 24], vec![4242, 1], 512 * 1024));
        assert_eq!((s.cap_eff, s.cap_inh, s.seccomp, s.seccomp_filters, s.no_new_privs), (0xa80425fb, 0, 2, Some(1), true));
        let dev = "Inter-|   Receive  |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    2000      10    0    0    0     0          0         0      300       3    0    0    0     0       0          0\n";
        assert_eq!(net_dev(dev), (2000, 300));
        assert_eq!(io_stat("8:0 rbytes=10 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n", "rbytes="), 11);
        assert_eq!(blkio("8:0 Read 5\n8:0 Write 6\n8:0 Total 11\nTotal 11\n", "Write"), 6);
        assert_eq!(proc_io("rchar: 9\nread_bytes: 4096\nwrite_bytes: 8192\n"), (4096, 8192));
        assert_eq!((limit("max\n"), limit("9223372036854771712\n"), limit("268435456\n")), (None, None, Some(268435456)));
    }
}
