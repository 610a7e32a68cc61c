//! cgroup v1: one directory per hierarchy the container needs (devices, pids, freezer; memory and
//! cpu for their limits), each nested under the caller's own cgroup in that hierarchy
//! (`/proc/self/cgroup`; the paths differ per hierarchy), at `<mount>/<caller path>/tfctl/<name>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::*;

/// The controllers tfctl uses; other hierarchies (cpuset, blkio, named ones) are left alone.
const USED: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "devices", "freezer"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers co-mounted here (`cpu,cpuacct` on some hosts).
    pub controllers: Vec<String>,
    /// `<mount point>/<caller path>/tfctl`.
    pub base: PathBuf,
}

impl Hierarchy {
    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

#[derive(Debug, Clone)]
pub struct V1Driver {
    pub hierarchies: Vec<Hierarchy>,
}

impl V1Driver {
    /// Finds the v1 hierarchies from this process's mountinfo and cgroup files.
    pub fn discover() -> Result<V1Driver, CgroupError> {
        let mountinfo = read_file(Path::new("/proc/self/mountinfo"))?;
        let cgroup = read_file(Path::new("/proc/self/cgroup"))?;
        let hierarchies = parse_hierarchies(&mountinfo, &cgroup);
        if hierarchies.is_empty() {
            return Err(CgroupError::NoCgroups);
        }
        Ok(V1Driver { hierarchies })
    }

    fn find(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(controller))
    }

    fn dirs(&self, name: &str) -> Vec<(Hierarchy, PathBuf)> {
        self.hierarchies
            .iter()
            .map(|h| (h.clone(), h.base.join(name)))
            .collect()
    }

    /// The hierarchies a container with `limits` needs a cgroup in: devices (the allow-list),
    /// pids (`pids.max` always applies) and freezer (a kill nothing escapes by forking), plus
    /// memory and cpu only for their limits. Each directory costs a mkdir, an attach and an
    /// rmdir per start, and a cgroup without a limit would only account what its parent
    /// already does.
    fn needed(&self, limits: &CgroupLimits) -> impl Iterator<Item = &Hierarchy> + '_ {
        let (memory, cpu) = (limits.memory.is_some(), limits.cpu_quota_us().is_some());
        self.hierarchies.iter().filter(move |h| {
            h.has("devices") || h.has("pids") || h.has("freezer") || (memory && h.has("memory")) || (cpu && h.has("cpu"))
        })
    }

    fn require(&self, controller: &'static str, limit: &'static str) -> Result<(), CgroupError> {
        match self.find(controller) {
            Some(_) => Ok(()),
            None => Err(CgroupError::MissingController {
                controller,
                path: PathBuf::from("/sys/fs/cgroup"),
                limit,
            }),
        }
    }
}

/// Pairs cgroup v1 mounts (`mountinfo`) with this process's path in each (`/proc/self/cgroup`).
pub fn parse_hierarchies(mountinfo: &str, cgroup: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if post.first() != Some(&"cgroup") || pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mount_point) = (pre[3], pre[4]);
        let controllers: Vec<String> = post[2]
            .split(',')
            .filter(|o| USED.contains(o))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() {
            continue;
        }
        // This process's line for the same controller set.
        let own = cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let mut set: Vec<&str> = ctrls.split(',').filter(|c| USED.contains(c)).collect();
            let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
            set.sort();
            want.sort();
            (set == want).then_some(path)
        });
        let Some(own) = own else { continue };
        // A mount of a subtree (inside a container) shows paths relative to its root.
        let rel = own
            .strip_prefix(root)
            .unwrap_or(own)
            .trim_start_matches('/');
        let base = Path::new(mount_point).join(rel).join("tfctl");
        if !out.iter().any(|h: &Hierarchy| h.base == base) {
            out.push(Hierarchy { controllers, base });
        }
    }
    out
}

impl CgroupDriver for V1Driver {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(
        &self,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<Box<dyn ContainerCgroup>, CgroupError> {
        check_name(name)?;
        self.check(limits)?;
        let cg = V1Cgroup {
            name: name.to_string(),
            dirs: self.needed(limits).map(|h| (h.clone(), h.base.join(name))).collect(),
        };
        let mut made = Vec::new();
        let result = (|| {
            for (h, dir) in &cg.dirs {
                make_dir_under(&h.base, dir)?;
                made.push(dir.clone());
                cg.apply(h, dir, limits)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for dir in made.iter().rev() {
                let _ = remove_dir(dir);
            }
            return Err(e);
        }
        Ok(Box::new(cg))
    }

    fn check(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        if limits.memory.is_some() {
            self.require("memory", "limits memory=")?;
        }
        if limits.cpus.is_some() {
            self.require("cpu", "limits cpus=")?;
        }
        if limits.pids_explicit {
            self.require("pids", "limits pids=")?;
        }
        Ok(())
    }

    /// Only the hierarchies the container has a folder in: it was made in those it needed.
    fn open(&self, name: &str) -> Box<dyn ContainerCgroup> {
        Box::new(V1Cgroup {
            name: name.to_string(),
            dirs: self.dirs(name).into_iter().filter(|(_, d)| d.is_dir()).collect(),
        })
    }
}

#[derive(Debug)]
pub struct V1Cgroup {
    name: String,
    dirs: Vec<(Hierarchy, PathBuf)>,
}

impl V1Cgroup {
    fn apply(&self, h: &Hierarchy, dir: &Path, limits: &CgroupLimits) -> Result<(), CgroupError> {
        if h.has("memory") {
            if let Some(m) = limits.memory {
                write_file(&dir.join("memory.limit_in_bytes"), &m.to_string(), false)?;
                // memsw (memory + swap) equal to the limit: no swap on top.
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write_file(&memsw, &m.to_string(), false)?;
                }
            }
        }
        if h.has("pids") {
            write_file(&dir.join("pids.max"), &limits.pids_max(), false)?;
        }
        if h.has("cpu") {
            if let Some(q) = limits.cpu_quota_us() {
                write_file(
                    &dir.join("cpu.cfs_period_us"),
                    &CPU_PERIOD_US.to_string(),
                    false,
                )?;
                write_file(&dir.join("cpu.cfs_quota_us"), &q.to_string(), false)?;
            }
        }
        if h.has("devices") {
            write_file(&dir.join("devices.deny"), "a", false)?;
            // One descriptor for the whole list: the kernel takes one rule per write.
            let allow = dir.join("devices.allow");
            let mut f = open_write(&allow)?;
            for rule in DeviceRule::allowed(&limits.devices) {
                let line = rule.v1_line();
                f.write_all(line.as_bytes()).map_err(|source| CgroupError::Write { path: allow.clone(), value: line, source })?;
            }
        }
        Ok(())
    }

    fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.has(controller))
            .map(|(_, d)| d.as_path())
    }

    /// The directory whose `cgroup.procs` lists the container's processes.
    fn procs(&self) -> Option<PathBuf> {
        self.dir_of("freezer")
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()))
            .map(|d| d.join("cgroup.procs"))
    }

    fn freeze(&self, dir: &Path, state: &str) -> Result<(), CgroupError> {
        write_file(&dir.join("freezer.state"), state, false)?;
        if state == "FROZEN" {
            // FREEZING until every task has stopped.
            for _ in 0..500 {
                if read_file(&dir.join("freezer.state"))?.trim() == "FROZEN" {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }
}

impl ContainerCgroup for V1Cgroup {
    fn name(&self) -> &str {
        &self.name
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn attach_files(&self) -> Result<AttachFiles, CgroupError> {
        let fds = self
            .dirs
            .iter()
            .map(|(_, d)| open_attach(&d.join("tasks")))
            .collect::<Result<_, _>>()?;
        Ok(AttachFiles { fds })
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.procs().map_or(Ok(Vec::new()), |p| read_pids(&p))
    }

    /// Freeze, SIGKILL everything listed, thaw (frozen tasks die when thawed); repeat until
    /// empty, so a process forking in the meantime cannot escape.
    fn kill(&self) -> Result<(), CgroupError> {
        let Some(procs) = self.procs() else {
            return Ok(());
        };
        // The usual case at cleanup: the container's processes are gone already.
        if read_pids(&procs)?.is_empty() {
            return Ok(());
        }
        let freezer = self
            .dir_of("freezer")
            .filter(|d| d.exists())
            .map(Path::to_path_buf);
        for _ in 0..100 {
            if let Some(f) = &freezer {
                self.freeze(f, "FROZEN")?;
            }
            let pids = read_pids(&procs)?;
            for &pid in &pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if let Some(f) = &freezer {
                self.freeze(f, "THAWED")?;
            }
            if pids.is_empty() {
                return Ok(());
            }
            if wait_empty(&procs, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
        }
        wait_empty(&procs, Duration::from_secs(1))
    }

    fn remove(&self) -> Result<(), CgroupError> {
        self.kill()?;
        // The shared `tfctl` folders stay (as under v2): making and removing them again with
        // every short-lived container doubled the cgroup directories a start touches.
        for (_, dir) in &self.dirs {
            remove_dir(dir)?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let mut s = CgroupStats::default();
        if let Some(d) = self.dir_of("memory") {
            s.memory_bytes = read_u64(&d.join("memory.usage_in_bytes"))?;
            s.memory_peak_bytes = read_u64(&d.join("memory.max_usage_in_bytes"))?;
            s.oom_kills = read_key(&d.join("memory.oom_control"), "oom_kill")?;
        }
        if let Some(d) = self.dir_of("pids") {
            s.pids = read_u64(&d.join("pids.current"))?;
        }
        if let Some(d) = self.dir_of("cpuacct") {
            s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage"))?;
        }
        Ok(s)
    }
}
