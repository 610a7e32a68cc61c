//! Running as a systemd service: telling systemd how the supervisor is doing (sd_notify), and
//! installing and starting the unit `tfctl systemd` writes (over D-Bus).

pub mod manager;
pub mod notify;
