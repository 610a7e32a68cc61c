//! cgroup v2: a single tree. Container cgroups are created in one folder per app, the place
//! [`super::place`] chooses (a delegated unit's cgroup, a transient scope, or tfctl's own subtree)
//! and records so that every command finds it again. Devices are filtered by an eBPF program
//! attached to each container's cgroup ([`super::devices_bpf`]).

use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::place::{self, Caller};
use super::*;

#[derive(Debug, Clone)]
pub struct V2Driver {
    /// Where container cgroups are created.
    pub base: PathBuf,
    /// Attach the eBPF device filter to each container cgroup (off only for synthetic trees,
    /// which are not cgroup2 and take no BPF programs).
    pub device_filter: bool,
}

impl V2Driver {
    /// Container cgroups in `base`, which exists and hands out controllers already.
    pub fn at(base: PathBuf) -> V2Driver {
        V2Driver {
            base,
            device_filter: true,
        }
    }

    /// The place of app `key`'s cgroups in the cgroup2 tree at `mount`: the one recorded in
    /// `record` while its cgroup exists; else, with `make`, a new one chosen for this caller,
    /// made and recorded (without `make`, where a new one would go: nothing is there).
    pub fn for_app(mount: &Path, key: &str, record: Option<&Path>, make: bool) -> Result<V2Driver, CgroupError> {
        if let Some(base) = record.and_then(|r| place::recorded(mount, r)) {
            if make {
                place::enable_controllers(&base)?;
            }
            return Ok(V2Driver::at(base));
        }
        let caller = Caller::read(mount)?;
        let homes = place::candidates(&caller, key);
        if !make {
            let last = homes.last().map_or("/tfctl", |h| h.path());
            return Ok(V2Driver::at(mount.join(last.trim_start_matches('/'))));
        }
        let mut failed = None;
        for home in &homes {
            match place::establish(mount, home) {
                Ok(base) => {
                    if let Some(record) = record {
                        write_record(record, &base)?;
                    }
                    return Ok(V2Driver::at(base));
                }
                Err(e) => {
                    tracing::debug!("cgroup place {home:?} for {key}: {e}");
                    failed = Some(e);
                }
            }
        }
        Err(failed.unwrap_or(CgroupError::NoCgroups))
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

/// Remembers an app's place (the app's folder usually exists: it holds the app's record).
fn write_record(record: &Path, base: &Path) -> Result<(), CgroupError> {
    if let Some(dir) = record.parent() {
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    }
    write_file(record, &format!("{}\n", base.display()), true)
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
        self.check(limits)?;
        let have = self.available();
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

    fn check(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
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
        Ok(())
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
            write_file(&self.dir.join("pids.max"), &limits.pids_max(), true)?;
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
            let prog = devices_bpf::load(&DeviceRule::allowed(&limits.devices))?;
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
