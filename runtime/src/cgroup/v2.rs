//! cgroup v2: a single tree. The supervisor first moves itself (and any process sharing its
//! cgroup) into a leaf, `<own cgroup>/supervisor`, so its own cgroup holds no process and can
//! enable controllers for children ("no internal processes"); containers are created as
//! siblings of that leaf, `<own cgroup>/<name>`. When the caller sits in the root cgroup (exempt
//! from that rule) containers go under `/tfctl` instead and nobody moves.
//! Devices are filtered by an eBPF program attached to each container's cgroup
//! ([`super::devices_bpf`]).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::*;

/// Controllers tfctl enables for container cgroups, when the parent offers them.
const WANTED: [&str; 3] = ["memory", "pids", "cpu"];
/// The supervisor's leaf, a sibling of the containers.
pub const SUPERVISOR_LEAF: &str = "supervisor";

#[derive(Debug, Clone)]
pub struct V2Driver {
    /// Where container cgroups are created.
    pub base: PathBuf,
    /// The leaf the supervisor moves into (`None` when `base` is under the root cgroup).
    pub leaf: Option<PathBuf>,
    /// Attach the eBPF device filter to each container cgroup (off only for synthetic trees,
    /// which are not cgroup2 and take no BPF programs).
    pub device_filter: bool,
}

impl V2Driver {
    /// The layout for a caller at `own_path` (from `/proc/self/cgroup`'s `0::` line) in the
    /// cgroup2 tree mounted at `mount`. Nothing is touched until [`V2Driver::prepare`].
    pub fn new(mount: &Path, own_path: &str) -> V2Driver {
        let rel = own_path.trim_start_matches('/');
        if rel.is_empty() {
            V2Driver {
                base: mount.join("tfctl"),
                leaf: None,
                device_filter: true,
            }
        } else {
            let base = mount.join(rel);
            V2Driver {
                leaf: Some(base.join(SUPERVISOR_LEAF)),
                base,
                device_filter: true,
            }
        }
    }

    /// Reads this process's cgroup and prepares the tree.
    pub fn discover(mount: &Path) -> Result<V2Driver, CgroupError> {
        let cgroup = read_file(Path::new("/proc/self/cgroup"))?;
        let own = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or(CgroupError::NoCgroups)?;
        let d = V2Driver::new(mount, own.trim());
        d.prepare()?;
        Ok(d)
    }

    /// Moves every process of the caller's cgroup into the supervisor leaf, then enables the
    /// wanted controllers for the containers. Idempotent.
    pub fn prepare(&self) -> Result<(), CgroupError> {
        if let Some(leaf) = &self.leaf {
            match std::fs::create_dir(leaf) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(CgroupError::Create {
                        path: leaf.clone(),
                        source,
                    })
                }
            }
            let procs = leaf.join("cgroup.procs");
            // One pid per write, as the kernel requires; one open so a synthetic tree keeps all.
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&procs)
                .map_err(|source| CgroupError::Write {
                    path: procs.clone(),
                    value: "pids".into(),
                    source,
                })?;
            for pid in read_pids(&self.base.join("cgroup.procs"))? {
                let line = format!("{pid}\n");
                match f.write(line.as_bytes()) {
                    Ok(_) => {}
                    // Exited meanwhile.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(source) => {
                        return Err(CgroupError::Write {
                            path: procs.clone(),
                            value: line,
                            source,
                        })
                    }
                }
            }
        } else {
            std::fs::create_dir_all(&self.base).map_err(|source| CgroupError::Create {
                path: self.base.clone(),
                source,
            })?;
            // The root must hand the controllers down to /tfctl first.
            if let Some(parent) = self.base.parent() {
                enable_controllers(parent)?;
            }
        }
        enable_controllers(&self.base)
    }

    fn available(&self) -> Vec<String> {
        read_file(&self.base.join("cgroup.subtree_control"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn require(
        &self,
        have: &[String],
        controller: &'static str,
        limit: &'static str,
    ) -> Result<(), CgroupError> {
        if have.iter().any(|c| c == controller) {
            Ok(())
        } else {
            Err(CgroupError::MissingController {
                controller,
                path: self.base.clone(),
                limit,
            })
        }
    }
}

/// Enables, in `dir`'s `cgroup.subtree_control`, the wanted controllers `dir` offers.
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let offered = read_file(&dir.join("cgroup.controllers"))?;
    let enable: Vec<String> = WANTED
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if enable.is_empty() {
        return Ok(());
    }
    write_file(&dir.join("cgroup.subtree_control"), &enable.join(" "), true)
}

impl CgroupDriver for V2Driver {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(
        &self,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<Box<dyn ContainerCgroup>, CgroupError> {
        check_name(name)?;
        let have = self.available();
        if limits.memory.is_some() {
            self.require(&have, "memory", "limits memory=")?;
        }
        if limits.cpus.is_some() {
            self.require(&have, "cpu", "limits cpus=")?;
        }
        if limits.pids_explicit {
            self.require(&have, "pids", "limits pids=")?;
        }
        let dir = self.base.join(name);
        make_dir_under(&self.base, &dir)?;
        let cg = V2Cgroup {
            name: name.to_string(),
            dir,
        };
        if let Err(e) = cg.apply(&have, limits, self.device_filter) {
            let _ = remove_dir(&cg.dir);
            return Err(e);
        }
        Ok(Box::new(cg))
    }

    fn open(&self, name: &str) -> Box<dyn ContainerCgroup> {
        Box::new(V2Cgroup {
            name: name.to_string(),
            dir: self.base.join(name),
        })
    }
}

#[derive(Debug)]
pub struct V2Cgroup {
    name: String,
    dir: PathBuf,
}

impl V2Cgroup {
    /// Interface files are written with O_CREAT: a no-op on cgroupfs, where they exist, and what
    /// lets the backend run against a synthetic tree in tests.
    fn apply(
        &self,
        have: &[String],
        limits: &CgroupLimits,
        device_filter: bool,
    ) -> Result<(), CgroupError> {
        let has = |c: &str| have.iter().any(|h| h == c);
        if let (Some(m), true) = (limits.memory, has("memory")) {
            write_file(&self.dir.join("memory.max"), &m.to_string(), true)?;
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0", true)?;
            }
        }
        if has("pids") {
            write_file(&self.dir.join("pids.max"), &limits.pids.to_string(), true)?;
        }
        if let (Some(q), true) = (limits.cpu_quota_us(), has("cpu")) {
            write_file(
                &self.dir.join("cpu.max"),
                &format!("{q} {CPU_PERIOD_US}"),
                true,
            )?;
        }
        if device_filter {
            let dir = std::fs::File::open(&self.dir).map_err(|source| CgroupError::Read {
                path: self.dir.clone(),
                source,
            })?;
            let prog = devices_bpf::load(&ALLOWED_DEVICES)?;
            devices_bpf::attach(dir.as_fd(), prog.as_fd())?;
        }
        Ok(())
    }
}

impl ContainerCgroup for V2Cgroup {
    fn name(&self) -> &str {
        &self.name
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn attach_files(&self) -> Result<AttachFiles, CgroupError> {
        Ok(AttachFiles {
            fds: vec![open_attach(&self.dir.join("cgroup.procs"))?],
        })
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        read_pids(&self.dir.join("cgroup.procs"))
    }

    /// `cgroup.kill` (Linux 5.14+) kills the whole subtree atomically; without it, SIGKILL
    /// every listed pid until none is left.
    fn kill(&self) -> Result<(), CgroupError> {
        let procs = self.dir.join("cgroup.procs");
        let kill_file = self.dir.join("cgroup.kill");
        if kill_file.exists() {
            write_file(&kill_file, "1", false)?;
        } else {
            for _ in 0..100 {
                let pids = read_pids(&procs)?;
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        wait_empty(&procs, Duration::from_secs(2))
    }

    fn remove(&self) -> Result<(), CgroupError> {
        if self.dir.exists() {
            self.kill()?;
        }
        remove_dir(&self.dir)
    }

    fn stats(&self) -> Result<CgroupStats, CgroupError> {
        Ok(CgroupStats {
            memory_bytes: read_u64(&self.dir.join("memory.current"))?,
            memory_peak_bytes: read_u64(&self.dir.join("memory.peak"))?,
            oom_kills: read_key(&self.dir.join("memory.events"), "oom_kill")?,
            pids: read_u64(&self.dir.join("pids.current"))?,
            cpu_usage_ns: read_key(&self.dir.join("cpu.stat"), "usage_usec")?.map(|us| us * 1000),
        })
    }
}
