//! Asking systemd (PID 1) for a transient scope over D-Bus, as runc's and crun's systemd drivers
//! do: systemd makes the cgroup, moves the given processes into it and delegates it (tfctl may
//! then make cgroups below it and enable controllers there).
//!
//! Over the system bus only: systemd's own peer-to-peer socket (`/run/systemd/private`) labels
//! its messages in a way zbus 5.19 refuses (it panicked on the reply in a Debian 12 guest).

use std::time::Duration;

use zbus::zvariant::Value;

use super::CgroupError;

pub(crate) const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// How long a call may take: systemd answers in milliseconds, unless it is stuck.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the transient scope `unit` in `slice` with `pids` in it, delegated. A scope of that
/// name that exists already is fine (tfctl made it earlier for the same app).
pub fn start_scope(unit: &str, slice: &str, pids: &[u32]) -> Result<(), CgroupError> {
    // On a thread of its own with a runtime of its own: the caller may be inside tokio (the
    // supervisor) or must stay single-threaded afterwards (a foreground `run` forks later);
    // both the thread and the runtime end with the call.
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CgroupError::Systemd(format!("cannot start an async runtime for D-Bus: {e}")))?;
            rt.block_on(async {
                match tokio::time::timeout(TIMEOUT, call(unit, slice, pids)).await {
                    Ok(r) => r,
                    Err(_) => Err(CgroupError::Systemd(format!(
                        "systemd did not answer within {TIMEOUT:?} when asked for {unit}"
                    ))),
                }
            })
        })
        .join()
        .unwrap_or_else(|_| Err(CgroupError::Systemd("the D-Bus thread panicked".into())))
    })
}

async fn call(unit: &str, slice: &str, pids: &[u32]) -> Result<(), CgroupError> {
    let unreachable = |e: zbus::Error| CgroupError::Systemd(format!("cannot reach systemd over D-Bus ({SYSTEM_BUS}): {e}"));
    let conn = zbus::connection::Builder::address(SYSTEM_BUS).map_err(unreachable)?.build().await.map_err(unreachable)?;
    let props: Vec<(&str, Value)> = vec![
        ("Description", Value::from(format!("tfctl containers ({unit})"))),
        ("Slice", Value::from(slice)),
        ("Delegate", Value::from(true)),
        ("PIDs", Value::from(pids.to_vec())),
        // Gone once empty, failed or not: the next `up` makes it anew.
        ("CollectMode", Value::from("inactive-or-failed")),
    ];
    let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
    let reply = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "StartTransientUnit",
            &(unit, "fail", props, aux),
        )
        .await;
    match reply {
        Ok(_) => {}
        Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == "org.freedesktop.systemd1.UnitExists" => {}
        Err(e) => return Err(CgroupError::Systemd(format!("systemd refused the scope {unit}: {e}"))),
    }
    // The call returns when systemd has queued the start: the scope's cgroup and the
    // controllers it delegates come with the job. Wait until the unit is active (as runc's
    // driver waits for its job), so the controllers are there when tfctl looks.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if active(&conn, unit).await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CgroupError::Systemd(format!("systemd did not make the scope {unit} active within {TIMEOUT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `unit` is loaded and its ActiveState is `active`.
async fn active(conn: &zbus::Connection, unit: &str) -> bool {
    active_state(conn, unit).await.is_some_and(|s| s == "active")
}

/// The ActiveState of `unit` (`active`, `activating`, `failed`, ...); `None` when it is not loaded.
async fn active_state(conn: &zbus::Connection, unit: &str) -> Option<String> {
    unit_property(conn, unit, "ActiveState").await
}

/// A string property of the `org.freedesktop.systemd1.Unit` interface of `unit`; `None` when the
/// unit is not loaded.
pub(crate) async fn unit_property(conn: &zbus::Connection, unit: &str, property: &str) -> Option<String> {
    let Ok(reply) = conn
        .call_method(Some("org.freedesktop.systemd1"), "/org/freedesktop/systemd1", Some("org.freedesktop.systemd1.Manager"), "GetUnit", &(unit,))
        .await
    else {
        return None;
    };
    let Ok(path) = reply.body().deserialize::<zbus::zvariant::OwnedObjectPath>() else { return None };
    let Ok(reply) = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            path.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.systemd1.Unit", property),
        )
        .await
    else {
        return None;
    };
    reply.body().deserialize::<zbus::zvariant::OwnedValue>().ok().and_then(|v| String::try_from(v).ok())
}
