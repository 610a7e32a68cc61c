//! The tfctl container runtime.
pub mod net;
