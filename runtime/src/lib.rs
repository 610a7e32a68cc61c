//! The tfctl container runtime.
