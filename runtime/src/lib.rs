//! The tfctl container runtime: images, root filesystems, processes and isolation, network,
//! firewall, hooks and state. It knows nothing of KDL: it works from the resolved model of
//! `tfctl-schema` and from OCI runtime specs.

pub mod state;
pub mod supervise;
pub mod logs;
pub mod hooks;
pub mod control;
pub mod health;
pub mod trust;

pub mod image;
