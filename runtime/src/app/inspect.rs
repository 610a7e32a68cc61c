//! `tfctl inspect APP/CONTAINER`: a container's effective configuration as the kernel sees it.
//!
//! The supervisor says what only it knows (the container's definition as it runs now, its
//! image's digests, its state, restart count and address, the firewall rules it gave it) and
//! hands over a pidfd of the container's init. The rest is read from the kernel by the caller:
//! /proc/PID/status (user, capabilities, seccomp, no_new_privs), /proc/PID/ns/* (compared with
//! the host's, PID 1's), /proc/PID/mountinfo, /proc/PID/cmdline, the cgroup's limit and usage
//! files; the health history comes from the app's event journal. What was read under a pid is
//! kept only if the pidfd still names a live process afterwards, so a reused pid cannot lend
//! another process's figures.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

use serde::Serialize;

use super::driver::HostDriver;
use super::events::{self, EventFilter};
use super::stats::{self, ProcStatus, Usage};
use crate::capabilities::CapSet;
use crate::control::Connection;
use crate::state::StateRoot;
use crate::supervise::Supervisor;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Client(#[from] super::client::ClientError),
    #[error("lost the connection to the supervisor of {app}: {source}")]
    Broken { app: String, source: std::io::Error },
    #[error("the supervisor of {app} closed the connection without answering")]
    Closed { app: String },
    #[error("{container} exited while it was being inspected: inspect it again")]
    Gone { container: String },
    #[error(transparent)]
    Stats(#[from] stats::StatsError),
}

/// The supervisor's side of `inspect`: the pidfd of the container's init (none when it does not
/// run), then what it knows.
pub async fn serve(sup: &Supervisor<HostDriver>, mut conn: Connection, req: &serde_json::Value) {
    let name = req["container"].as_str().unwrap_or_default();
    let app = sup.app();
    let Some(c) = app.container(name) else {
        let _ = conn.send_fds(&[]).await;
        let _ = conn.send(&serde_json::json!({"ok": false, "error": format!("app {} has no container {name}", app.name)})).await;
        return;
    };
    let status = sup.status().borrow().get(name).cloned();
    let model = sup.driver().model();
    let image = model.images.get(name).map(|i| serde_json::json!({"name": i.name, "manifest_digest": i.manifest_digest, "config_digest": i.config_digest}));
    let address = model.net.as_ref().and_then(|n| n.containers.get(name)).filter(|_| c.network != tfctl_schema::model::NetworkMode::None).map(|a| a.address);
    let root = &sup.driver().context().root;
    // The rules the firewall holds for it: from the running model and the host ports chosen.
    let ports = super::record::load(root, &app.name).ok().flatten().map(|r| r.ports).unwrap_or_default();
    let rules = super::lifecycle::firewall_spec(&app, &ports).containers.into_iter().find(|r| r.name == name);
    // The app's nftables table, and whether the kernel holds it now (read over netlink in this
    // network namespace, the app's host side).
    let table = model.net.as_ref().map(|n| n.table.clone());
    let loaded = table.as_deref().map(|t| crate::net::nft::table::exists(t, nftnl::ProtoFamily::Inet).map_err(|e| e.to_string()));
    let mut firewall = serde_json::to_value(&rules).unwrap_or_default();
    if let Some(o) = firewall.as_object_mut() {
        o.insert("table".into(), table.into());
        match loaded {
            Some(Ok(l)) => o.insert("table_loaded".into(), l.into()),
            Some(Err(e)) => o.insert("table_loaded".into(), format!("unknown: {e}").into()),
            None => o.insert("table_loaded".into(), false.into()),
        };
    }
    let reply = serde_json::json!({
        "ok": true,
        "definition": c,
        "status": status,
        "image": image,
        "address": address,
        "firewall": firewall,
        "published": ports.iter().filter(|p| p.container == name).collect::<Vec<_>>(),
    });
    // Only a live container's: the driver keeps the pidfd of one that has exited.
    let live = status.as_ref().is_some_and(|s| matches!(s.state, crate::supervise::State::Running | crate::supervise::State::Starting));
    let pidfd = sup.driver().pidfd(name).filter(|_| live);
    let fds: Vec<_> = pidfd.iter().map(|f| f.as_fd()).collect();
    if conn.send_fds(&fds).await.is_ok() {
        let _ = conn.send(&reply).await;
    }
}

/// A capability set as the kernel holds it: its mask and the names in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Caps {
    pub hex: String,
    pub names: Vec<String>,
}

impl Caps {
    fn of(mask: u64) -> Caps {
        Caps { hex: format!("{mask:016x}"), names: CapSet(mask).names() }
    }
}

/// A namespace the process is in, and whether the host (PID 1) is in the same one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Namespace {
    /// `net:[4026532008]`.
    pub id: String,
    pub shared_with_host: bool,
}

/// A line of /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    pub target: String,
    pub fstype: String,
    pub source: String,
    /// Per-mount options (`ro`, `nosuid`...), then the filesystem's own.
    pub options: String,
    pub fs_options: String,
}

/// The container's init as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelView {
    /// Its pid on the host.
    pub pid: i32,
    pub command: Vec<String>,
    /// Effective ids and supplementary groups, as the host numbers them.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub capabilities: BTreeMap<&'static str, Caps>,
    /// `disabled`, `strict` or `filter`.
    pub seccomp: &'static str,
    pub seccomp_filters: Option<u32>,
    pub no_new_privs: bool,
    pub namespaces: BTreeMap<String, Namespace>,
    pub mounts: Vec<Mount>,
}

/// The cgroup's limits and usage, read from its files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CgroupView {
    pub paths: Vec<std::path::PathBuf>,
    /// `memory.max` / `memory.limit_in_bytes`, `cpu.max` / `cpu.cfs_quota_us cpu.cfs_period_us`,
    /// `pids.max`, as the kernel reads them (`max`: no limit; absent: no such cgroup here).
    pub limits: BTreeMap<&'static str, String>,
    pub usage: Usage,
}

/// A change of the container's health, from the event journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthChange {
    pub time: String,
    /// `healthy` or `unhealthy`.
    pub health: String,
}

/// Everything `tfctl inspect` shows of a container of a supervised app.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub app: String,
    pub container: String,
    /// The supervisor's status (state, health, restarts, exit code, started_at, reason).
    pub status: serde_json::Value,
    pub restarts: u64,
    /// The image: reference, manifest and config digests.
    pub image: serde_json::Value,
    pub address: Option<std::net::Ipv4Addr>,
    /// Labels of the container (`label` in the app file, `run --label`).
    pub labels: BTreeMap<String, String>,
    /// The firewall rules tfctl applied for it: who may reach it, its egress, its published
    /// ports (with the host port chosen); the app's nftables `table` and whether the kernel
    /// holds it (`table_loaded`).
    pub firewall: serde_json::Value,
    pub published: serde_json::Value,
    /// `None` when it does not run.
    pub process: Option<KernelView>,
    pub cgroup: Option<CgroupView>,
    pub health_history: Vec<HealthChange>,
    /// Its definition as the supervisor runs it now (the resolved app file's container).
    pub definition: serde_json::Value,
}

fn seccomp_mode(mode: u8) -> &'static str {
    match mode {
        0 => "disabled",
        1 => "strict",
        _ => "filter",
    }
}

/// Unescapes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/PID/mountinfo.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let h: Vec<&str> = head.split(' ').collect();
            let t: Vec<&str> = tail.split(' ').collect();
            Some(Mount {
                target: unescape(h.get(4)?),
                options: h.get(5)?.to_string(),
                fstype: t.first()?.to_string(),
                source: unescape(t.get(1)?),
                fs_options: t.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

fn namespaces(pid: i32) -> BTreeMap<String, Namespace> {
    let link = |p: String| std::fs::read_link(p).ok().map(|l| l.to_string_lossy().into_owned());
    NAMESPACES
        .iter()
        .filter_map(|ns| {
            let id = link(format!("/proc/{pid}/ns/{ns}"))?;
            let host = link(format!("/proc/1/ns/{ns}"));
            Some((ns.to_string(), Namespace { shared_with_host: host.as_deref() == Some(id.as_str()), id }))
        })
        .collect()
}

/// Reads the kernel's view of process `pid`; `None` when it is gone.
pub fn kernel_view(pid: i32) -> Option<KernelView> {
    let status: ProcStatus = stats::proc_status(pid)?;
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let capabilities = BTreeMap::from([
        ("effective", Caps::of(status.cap_eff)),
        ("permitted", Caps::of(status.cap_prm)),
        ("inheritable", Caps::of(status.cap_inh)),
        ("bounding", Caps::of(status.cap_bnd)),
        ("ambient", Caps::of(status.cap_amb)),
    ]);
    Some(KernelView {
        pid,
        command: stats::command_line(pid),
        uid: status.uid[1],
        gid: status.gid[1],
        groups: status.groups.clone(),
        capabilities,
        seccomp: seccomp_mode(status.seccomp),
        seccomp_filters: status.seccomp_filters,
        no_new_privs: status.no_new_privs,
        namespaces: namespaces(pid),
        mounts: parse_mountinfo(&mountinfo),
    })
}

fn cgroup_view(root: &StateRoot, app: &str, container: &str) -> Result<CgroupView, InspectError> {
    let cg = stats::container_cgroup(root, app, container)?;
    let paths = cg.paths();
    let read = |files: &[&str]| {
        files.iter().find_map(|f| paths.iter().find_map(|d| std::fs::read_to_string(d.join(f)).ok().map(|t| t.trim().to_string())))
    };
    let mut limits = BTreeMap::new();
    if let Some(v) = read(&["memory.max", "memory.limit_in_bytes"]) {
        limits.insert("memory", v);
    }
    let cpu = read(&["cpu.max"]).or_else(|| Some(format!("{} {}", read(&["cpu.cfs_quota_us"])?, read(&["cpu.cfs_period_us"])?)));
    if let Some(v) = cpu {
        limits.insert("cpu", v);
    }
    if let Some(v) = read(&["pids.max"]) {
        limits.insert("pids", v);
    }
    let usage = stats::usage(cg.as_ref(), container)?;
    Ok(CgroupView { paths, limits, usage })
}

/// Inspects a container of a live app.
pub async fn request(root: &StateRoot, app: &str, container: &str) -> Result<Inspection, InspectError> {
    let mut conn = super::client::open(root, app, &serde_json::json!({"op": "inspect", "container": container})).await?;
    let broken = |source| InspectError::Broken { app: app.to_string(), source };
    let fds = conn.recv_fds().await.map_err(broken)?;
    let reply: serde_json::Value = conn.recv().await.map_err(broken)?.ok_or_else(|| InspectError::Closed { app: app.to_string() })?;
    if reply["ok"] != true {
        return Err(super::client::ClientError::Refused(reply["error"].as_str().unwrap_or("failed").to_string()).into());
    }
    let pidfd: Option<OwnedFd> = fds.into_iter().next();
    let (process, cgroup) = match &pidfd {
        Some(fd) => {
            let gone = || InspectError::Gone { container: container.to_string() };
            let pid = super::ops::pidfd_pid(fd).map_err(|_| gone())?;
            let view = kernel_view(pid).ok_or_else(gone)?;
            let cgroup = cgroup_view(root, app, container)?;
            if !super::ops::still_alive(fd) {
                return Err(gone());
            }
            (Some(view), Some(cgroup))
        }
        None => (None, None),
    };
    let filter = EventFilter { container: Some(container.to_string()), ..Default::default() };
    let health_history = events::read(root, app, &filter)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.event == "healthy" || e.event == "unhealthy")
        .map(|e| HealthChange { time: e.time, health: e.event })
        .collect();
    let definition = reply["definition"].clone();
    // LABELS: the container model's `labels` (KEY, VALUE) pairs, as the app file or `run
    // --label` gave them.
    let labels = definition["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv.get(0)?.as_str()?.to_string(), kv.get(1)?.as_str()?.to_string())))
        .collect();
    Ok(Inspection {
        app: app.to_string(),
        container: container.to_string(),
        restarts: reply["status"]["restarts"].as_u64().unwrap_or(0),
        status: reply["status"].clone(),
        image: reply["image"].clone(),
        address: reply["address"].as_str().and_then(|a| a.parse().ok()),
        labels,
        firewall: reply["firewall"].clone(),
        published: reply["published"].clone(),
        process,
        cgroup,
        health_history,
        definition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let text = "22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/a\n\
                    23 22 0:5 / /my\\040dir ro,nosuid shared:1 - tmpfs tmp\\040fs rw,size=64k\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].target.as_str(), m[0].fstype.as_str(), m[0].options.as_str()), ("/", "overlay", "rw,relatime"));
        assert_eq!((m[1].target.as_str(), m[1].source.as_str(), m[1].fs_options.as_str()), ("/my dir", "tmp fs", "rw,size=64k"));
        assert_eq!(seccomp_mode(2), "filter");
        assert_eq!(Caps::of(1 << 12).names, ["CAP_NET_ADMIN"]);
    }
}
