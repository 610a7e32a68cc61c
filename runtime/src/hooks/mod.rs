//! Hooks: commands tfctl runs on a container's or an app's events.

pub mod env;
pub mod host;
