//! The tfctl container runtime.

pub mod capabilities;
pub mod cgroup;
pub mod seccomp;
