//! Installing the unit `tfctl systemd --install --now` wrote: systemd reloads its units, enables
//! the new one and starts it, over the system bus (as `systemctl daemon-reload` and `systemctl
//! enable --now` ask it), and tfctl waits until the unit is active, that is, until the
//! supervisor said READY=1.

use std::time::Duration;

use zbus::zvariant::OwnedObjectPath;

use crate::cgroup::systemd::{unit_property, SYSTEM_BUS};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot reach systemd over D-Bus ({SYSTEM_BUS}): {0}; is systemd PID 1 here? Without it, install the unit and start it by hand")]
    Unreachable(Box<zbus::Error>),
    #[error("systemd refused to {what} {unit}: {source}")]
    Refused { what: &'static str, unit: String, source: Box<zbus::Error> },
    #[error("{unit} did not start: it is {state}; see `journalctl -u {unit}` and `systemctl status {unit}`")]
    NotStarted { unit: String, state: String },
    #[error("cannot start an async runtime for D-Bus: {0}")]
    Runtime(std::io::Error),
}

/// Makes systemd reload its unit files and enable `unit`; with `start`, starts it too and waits
/// until it is active (a `Type=notify` unit is active once its main process said READY=1).
pub fn reload_enable(unit: &str, start: bool) -> Result<(), ServiceError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ServiceError::Runtime)?;
    rt.block_on(run(unit, start))
}

/// How often the start job is looked at while the unit starts.
const POLL: Duration = Duration::from_millis(200);

async fn run(unit: &str, start: bool) -> Result<(), ServiceError> {
    let conn = zbus::connection::Builder::address(SYSTEM_BUS).map_err(|e| ServiceError::Unreachable(Box::new(e)))?.build().await.map_err(|e| ServiceError::Unreachable(Box::new(e)))?;
    let refused = |what: &'static str| move |source| ServiceError::Refused { what, unit: unit.to_string(), source: Box::new(source) };
    manager(&conn, "Reload", &()).await.map_err(refused("reload its units for"))?;
    // (files, runtime: under /etc rather than /run, force: no, an existing link is kept)
    manager(&conn, "EnableUnitFiles", &(vec![unit], false, false)).await.map_err(refused("enable"))?;
    if !start {
        return Ok(());
    }
    let reply = manager(&conn, "StartUnit", &(unit, "replace")).await.map_err(refused("start"))?;
    let job: OwnedObjectPath = reply.body().deserialize().map_err(refused("start"))?;
    // The start job ends when the unit is up (for `Type=notify`: when the supervisor said
    // READY=1) or when the start failed; the unit's state then says which.
    // With Restart=, a start that failed keeps its job while systemd restarts the unit: a unit
    // waiting to restart has failed already.
    while job_exists(&conn, &job).await {
        if unit_property(&conn, unit, "SubState").await.as_deref() == Some("auto-restart") {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let active = unit_property(&conn, unit, "ActiveState").await.unwrap_or_default();
    if active == "active" {
        return Ok(());
    }
    let sub = unit_property(&conn, unit, "SubState").await.unwrap_or_default();
    Err(ServiceError::NotStarted { unit: unit.to_string(), state: format!("{active} ({sub})") })
}

async fn manager<B: serde::Serialize + zbus::zvariant::DynamicType>(conn: &zbus::Connection, method: &str, body: &B) -> zbus::Result<zbus::Message> {
    conn.call_method(Some("org.freedesktop.systemd1"), "/org/freedesktop/systemd1", Some("org.freedesktop.systemd1.Manager"), method, body).await
}

/// Whether systemd still has the job: a finished job's object is gone.
async fn job_exists(conn: &zbus::Connection, job: &OwnedObjectPath) -> bool {
    conn.call_method(Some("org.freedesktop.systemd1"), job.as_str(), Some("org.freedesktop.DBus.Properties"), "Get", &("org.freedesktop.systemd1.Job", "State"))
        .await
        .is_ok()
}
