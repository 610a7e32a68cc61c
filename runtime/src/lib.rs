//! The tfctl container runtime: images, root filesystems, processes and isolation, network,
//! firewall, hooks and state. It knows nothing of KDL: it works from the resolved model of
//! `tfctl-schema` and from OCI runtime specs.

pub mod app;
pub mod capabilities;
pub mod cgroup;
pub mod container;
pub mod control;
pub mod files;
pub mod health;
pub mod hooks;
pub mod image;
pub mod info;
pub mod logs;
pub mod net;
pub mod oci;
pub mod relay;
pub mod seccomp;
pub mod secrets;
pub mod service;
pub mod spawn;
pub mod spec;
pub mod start;
pub mod state;
pub mod supervise;
pub mod sys;
pub mod trust;
pub mod userns;
pub mod rootfs;

/// The unit tests' way to report a check this machine cannot make (fails under CI).
#[cfg(test)]
#[path = "../tests/common/skip.rs"]
mod skip;
