//! The tfctl container runtime.

pub mod image;
