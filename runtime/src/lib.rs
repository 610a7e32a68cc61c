//! The tfctl container runtime.

pub mod capabilities;
pub mod cgroup;
pub mod files;
pub mod seccomp;
pub mod secrets;
pub mod spec;
