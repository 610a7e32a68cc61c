//! The app supervisor: start order, restart policies, hooks, health, and the events that tie
//! them together.

pub mod backoff;
pub mod order;
