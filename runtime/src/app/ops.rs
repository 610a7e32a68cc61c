//! Operating one container of a live app: what the supervisor serves beyond start/stop
//! (`kill`), the host ports an app actually published (`port`, `ps`, hooks), and the clients
//! the CLI calls.

use serde::{Deserialize, Serialize};

use super::driver::HostDriver;
use crate::control::Connection;
use crate::net::firewall;
use crate::state::StateRoot;
use crate::supervise::{Driver, State, Supervisor};

/// A host port published for a container, as chosen at `up` (`publish 0` takes a free one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container: String,
    pub host_ip: std::net::Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

/// The ports the firewall spec publishes, with the host ports actually chosen.
pub fn published(spec: &firewall::FirewallSpec) -> Vec<PublishedPort> {
    spec.containers
        .iter()
        .flat_map(|c| {
            c.publish.iter().map(|p| PublishedPort {
                container: c.name.clone(),
                host_ip: p.host_ip,
                host_port: p.host_port,
                container_port: p.container_port,
                proto: match p.proto {
                    firewall::Proto::Tcp => "tcp".into(),
                    firewall::Proto::Udp => "udp".into(),
                },
            })
        })
        .collect()
}

/// Holds a reserved socket for every published port in `ports` (crate::net::ports): reservations
/// still published are kept, new ports are reserved, the rest are given back. All or nothing:
/// on failure `held` is as it was.
pub fn reserve_published(ports: &[PublishedPort], held: &mut Vec<crate::net::ports::Reservation>) -> Result<(), crate::net::ports::PortError> {
    use crate::net::ports::{reserve, PortProto};
    let want: Vec<(PortProto, Option<std::net::Ipv4Addr>, u16)> = ports
        .iter()
        .map(|p| (if p.proto == "udp" { PortProto::Udp } else { PortProto::Tcp }, Some(p.host_ip).filter(|ip| !ip.is_unspecified()), p.host_port))
        .collect();
    let mut next = Vec::with_capacity(want.len());
    let mut old = std::mem::take(held);
    for (proto, ip, port) in want {
        if let Some(i) = old.iter().position(|r| (r.proto, r.ip, r.port) == (proto, ip, port)) {
            next.push(old.swap_remove(i));
            continue;
        }
        match reserve(proto, ip, port) {
            Ok(r) => next.push(r),
            Err(e) => {
                old.extend(next);
                *held = old;
                return Err(e);
            }
        }
    }
    *held = next;
    Ok(())
}

/// `(container, container port, host port)` for the hooks' `TFCTL_PORT_<NAME>_<PORT>`.
pub fn hook_ports(ports: &[PublishedPort]) -> Vec<(String, u16, u16)> {
    ports.iter().map(|p| (p.container.clone(), p.container_port, p.host_port)).collect()
}

fn is_live(state: State) -> bool {
    matches!(state, State::Running | State::Starting)
}

/// Serves the requests of this module: `kill`. Other ops are answered as unknown.
pub async fn serve(sup: &Supervisor<HostDriver>, mut conn: Connection, req: &serde_json::Value) {
    if req["op"] == "root" {
        return serve_root(sup, conn, req).await;
    }
    if req["op"] == "inspect" {
        return super::inspect::serve(sup, conn, req).await;
    }
    let reply = match req["op"].as_str() {
        Some("kill") => kill(sup, req).await,
        Some("volume-users") => Ok(serde_json::json!({"ok": true, "containers": volume_users(sup, req["volume"].as_str().unwrap_or_default())})),
        _ => Err("unknown request".to_string()),
    };
    let reply = match reply {
        Ok(v) => v,
        Err(e) => serde_json::json!({"ok": false, "error": e}),
    };
    let _ = conn.send(&reply).await;
}

/// Whether `op` is one `serve` answers.
pub fn serves(op: &str) -> bool {
    matches!(op, "kill" | "volume-users" | "root" | "inspect")
}

async fn kill(sup: &Supervisor<HostDriver>, req: &serde_json::Value) -> Result<serde_json::Value, String> {
    let name = req["container"].as_str().ok_or("kill needs a container")?;
    let signal = req["signal"].as_i64().and_then(|s| i32::try_from(s).ok()).ok_or("kill needs a signal number")?;
    let state = sup.status().borrow().get(name).map(|s| s.state).ok_or_else(|| format!("no container {name}"))?;
    if !is_live(state) {
        return Err(format!("container {name} is not running"));
    }
    sup.driver().signal(name, signal).await?;
    Ok(serde_json::json!({"ok": true}))
}

/// The root folder of a running container, opened through its init's pidfd: the pid read from
/// the pidfd's fdinfo is trusted only because the pidfd still names a live process after the
/// open, so the pid cannot have been reused in between.
pub(crate) fn container_root(pidfd: &std::os::fd::OwnedFd) -> Result<std::os::fd::OwnedFd, String> {
    let pid = pidfd_pid(pidfd)?;
    let root = nix::fcntl::open(
        format!("/proc/{pid}/root").as_str(),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open the container's root: {e}"))?;
    if !still_alive(pidfd) {
        return Err("the container's init exited while its root was opened".to_string());
    }
    Ok(root)
}

/// The pid a pidfd names, from its fdinfo; an error once the process has exited. Trust it only
/// as long as the pidfd is then found to name a live process ([`still_alive`]): the pid may
/// have been reused in between.
pub(crate) fn pidfd_pid(pidfd: &std::os::fd::OwnedFd) -> Result<i32, String> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| "the container's init has exited".to_string())
}

/// Whether the process a pidfd names still runs.
pub(crate) fn still_alive(pidfd: &std::os::fd::OwnedFd) -> bool {
    crate::sys::pidfd_send_signal(std::os::fd::AsRawFd::as_raw_fd(pidfd), 0).is_ok()
}

/// `exec -u`: `plan` runs as the user `spec` names in the running container's own /etc/passwd
/// and /etc/group (read by descriptor inside its root), with the capabilities the container's
/// `cap_add`/`cap_drop` give a user of that uid, and that user's HOME.
pub fn exec_as_user(pidfd: &std::os::fd::OwnedFd, spec: &str, cap_add: &[String], cap_drop: &[String], plan: &mut crate::spawn::StartPlan) -> Result<(), String> {
    let root = container_root(pidfd)?;
    let user = crate::spec::resolve_user(Some(spec), std::os::fd::AsFd::as_fd(&root), std::os::fd::AsFd::as_fd(&root)).map_err(|e| e.to_string())?;
    let caps = crate::capabilities::resolve(cap_add, cap_drop, user.uid == 0).map_err(|e| e.to_string())?;
    plan.caps = caps.into();
    plan.user = (&user).into();
    plan.process.env.retain(|e| !e.starts_with("HOME="));
    plan.process.env.push(format!("HOME={}", user.home));
    Ok(())
}

/// Sends the container's root folder (or no descriptor, on failure) and then the reply.
async fn serve_root(sup: &Supervisor<HostDriver>, mut conn: Connection, req: &serde_json::Value) {
    use std::os::fd::AsFd;
    let name = req["container"].as_str().unwrap_or_default();
    let state = sup.status().borrow().get(name).map(|s| s.state);
    let root = match state {
        None => Err(format!("no container {name}")),
        Some(s) if !is_live(s) => Err(format!("container {name} is not running")),
        Some(_) => sup.driver().pidfd(name).ok_or_else(|| format!("container {name} is not running")).and_then(|p| container_root(&p)),
    };
    let (fds, reply) = match &root {
        Ok(fd) => (vec![fd.as_fd()], serde_json::json!({"ok": true})),
        Err(e) => (Vec::new(), serde_json::json!({"ok": false, "error": e})),
    };
    if conn.send_fds(&fds).await.is_ok() {
        let _ = conn.send(&reply).await;
    }
}

/// The live containers of the app that mount the named volume.
fn volume_users(sup: &Supervisor<HostDriver>, volume: &str) -> Vec<String> {
    let status = sup.status().borrow().clone();
    sup.app()
        .containers
        .iter()
        .filter(|c| c.mounts.iter().any(|m| m.source == tfctl_schema::model::MountSource::Volume(volume.to_string())))
        .filter(|c| status.get(&c.name).is_some_and(|s| is_live(s.state)))
        .map(|c| c.name.clone())
        .collect()
}

/// Sends `signal` to the init of a running container of a live app.
pub async fn request_kill(root: &StateRoot, app: &str, container: &str, signal: i32) -> Result<(), String> {
    super::client::call(root, app, &serde_json::json!({"op": "kill", "container": container, "signal": signal})).await.map(|_| ()).map_err(String::from)
}

/// The running containers of a live app that mount its volume `volume`.
pub async fn request_volume_users(root: &StateRoot, app: &str, volume: &str) -> Result<Vec<String>, String> {
    let reply = super::client::call(root, app, &serde_json::json!({"op": "volume-users", "volume": volume})).await?;
    Ok(reply["containers"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect())
}

/// The root folder of a running container, as a directory descriptor from its supervisor.
pub async fn request_root(root: &StateRoot, app: &str, container: &str) -> Result<std::os::fd::OwnedFd, String> {
    let mut conn = super::client::open(root, app, &serde_json::json!({"op": "root", "container": container})).await?;
    let fds = conn.recv_fds().await.map_err(|e| format!("no answer from the supervisor of {app}: {e}"))?;
    let reply: serde_json::Value = conn.recv().await.map_err(|e| e.to_string())?.ok_or("the supervisor closed the connection")?;
    if reply["ok"] != true {
        return Err(reply["error"].as_str().unwrap_or("failed").to_string());
    }
    fds.into_iter().next().ok_or_else(|| "the supervisor sent no descriptor".to_string())
}
