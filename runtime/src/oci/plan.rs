//! A bundle's `config.json` as a spawner plan: read through the same compilation a tfctl
//! container goes through ([`crate::container::plan::start_plan`]), with the bundle's root
//! folder as the root and the confinement taken from the config rather than computed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::OciError;
use crate::capabilities::{self, CapSet, ProcessCaps};
use crate::cgroup::CgroupLimits;
use crate::container::plan::{start_plan, ExtraFiles, RootfsPlan};
use crate::seccomp::{parse_docker_profile, SeccompPolicy};
use crate::spawn::{Mode, OverlayUpper, Rlimit, RootfsSource, StartPlan};
use crate::spec::{CompiledContainer, ResolvedUser};

/// The bundle's config, checked for a version this runtime reads (1.0.0 through 1.2.x).
pub fn load_spec(bundle: &Path) -> Result<Spec, OciError> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| OciError::Config { path: path.clone(), message: e.to_string() })?;
    let version = spec.version();
    let minor_ok = version.strip_prefix("1.").and_then(|r| r.split(['.', '-', '+']).next()).and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m <= 2);
    if !minor_ok {
        return Err(OciError::Config { path, message: format!("ociVersion `{version}` is not one this runtime reads (1.0.0 through 1.2.x)") });
    }
    Ok(spec)
}

/// The root folder, as the config names it (relative to the bundle, or absolute).
pub fn rootfs_dir(spec: &Spec, bundle: &Path) -> Result<PathBuf, OciError> {
    let root = spec.root().as_ref().ok_or_else(|| OciError::Config { path: bundle.join("config.json"), message: "no `root`".into() })?;
    Ok(if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) })
}

/// Capability names as the config lists them (`CAP_KILL`) to a set.
fn caps(list: Option<&oci_spec::runtime::Capabilities>) -> Result<CapSet, OciError> {
    let mut set = 0u64;
    for c in list.into_iter().flatten() {
        let name = serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        set |= 1 << capabilities::cap_index(&name)?;
    }
    Ok(CapSet(set))
}

/// What the config asks of a namespace: `None` not listed (the host's), `Some(None)` a new
/// one, `Some(Some(path))` join the one at path.
pub fn namespace(spec: &Spec, typ: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    let list = spec.linux().as_ref()?.namespaces().as_ref()?;
    list.iter().find(|n| n.typ() == typ).map(|n| n.path().clone())
}

/// The cgroup limits the config's resources ask for (memory, cpu quota, pids).
pub fn limits(spec: &Spec) -> CgroupLimits {
    let r = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let memory = r.as_ref().and_then(|r| r.memory().as_ref()).and_then(|m| m.limit()).filter(|&l| l > 0).map(|l| l as u64);
    let cpus = r.as_ref().and_then(|r| r.cpu().as_ref()).and_then(|c| match (c.quota(), c.period()) {
        (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
        _ => None,
    });
    let pids = r.as_ref().and_then(|r| r.pids().as_ref()).map(|p| p.limit()).filter(|&l| l > 0);
    CgroupLimits { memory, cpus, pids: pids.map_or(u64::MAX, |p| p as u64), pids_explicit: pids.is_some(), devices: Vec::new() }
}

/// The plan that starts the config's process on `bundle`'s root, attached at `mountpoint`.
pub fn plan(spec: &Spec, bundle: &Path, mountpoint: PathBuf) -> Result<StartPlan, OciError> {
    let config = bundle.join("config.json");
    let process = spec.process().as_ref().ok_or_else(|| OciError::Config { path: config.clone(), message: "no `process`".into() })?;
    for (typ, what) in [(LinuxNamespaceType::User, "a user namespace"), (LinuxNamespaceType::Time, "a time namespace")] {
        if namespace(spec, typ).is_some() {
            return Err(OciError::Unsupported(what.into()));
        }
    }
    for (typ, what) in [(LinuxNamespaceType::Pid, "pid"), (LinuxNamespaceType::Mount, "mount"), (LinuxNamespaceType::Ipc, "ipc"), (LinuxNamespaceType::Uts, "uts")] {
        match namespace(spec, typ) {
            Some(None) => {}
            Some(Some(p)) => return Err(OciError::Unsupported(format!("joining the {what} namespace at {}", p.display()))),
            None => return Err(OciError::Unsupported(format!("the host's {what} namespace"))),
        }
    }
    let user = process.user();
    let c = process.capabilities().as_ref();
    let pcaps = ProcessCaps {
        bounding: caps(c.and_then(|c| c.bounding().as_ref()))?,
        permitted: caps(c.and_then(|c| c.permitted().as_ref()))?,
        effective: caps(c.and_then(|c| c.effective().as_ref()))?,
        inheritable: caps(c.and_then(|c| c.inheritable().as_ref()))?,
        ambient: caps(c.and_then(|c| c.ambient().as_ref()))?,
    };
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        None => SeccompPolicy::Unconfined,
        Some(s) => {
            // The config's seccomp object is the Docker profile format less its extensions.
            let json = serde_json::to_string(s).map_err(|e| OciError::Config { path: config.clone(), message: format!("seccomp: {e}") })?;
            let profile = parse_docker_profile(&json).map_err(|e| OciError::Config { path: config.clone(), message: format!("seccomp: {e}") })?;
            SeccompPolicy::Profile(Arc::new(profile))
        }
    };
    let mut rlimits = Vec::new();
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let resource = crate::spec::rlimit_resource(&name).ok_or_else(|| OciError::Config { path: config.clone(), message: format!("rlimit `{name}` is not a resource limit") })?;
        rlimits.push(Rlimit { resource, soft: r.soft(), hard: r.hard() });
    }
    let compiled = CompiledContainer {
        spec: spec.clone(),
        user: ResolvedUser { uid: user.uid(), gid: user.gid(), additional_gids: user.additional_gids().clone().unwrap_or_default(), home: "/".into(), name: None },
        caps: pcaps,
        seccomp,
        cgroup: limits(spec),
        rlimits,
        init: false,
    };
    let rootfs = RootfsPlan { layers: vec![], upper: OverlayUpper::Tmpfs { size_bytes: 0 }, mountpoint };
    let mut plan = start_plan(&compiled, rootfs, ExtraFiles::default())?;
    if let Mode::Container(setup) = &mut plan.mode {
        // The bundle's root is a prepared folder (containerd's overlay), bound as it is.
        setup.rootfs.source = RootfsSource::Directory(rootfs_dir(spec, bundle)?);
    }
    plan.pty = process.terminal().unwrap_or(false);
    Ok(plan)
}
