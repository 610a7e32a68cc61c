//! The app supervisor: start order, restart policies, hooks, health, and the events that tie
//! them together.

pub mod backoff;
pub mod driver;
pub mod order;
pub mod status;
pub mod supervisor;

pub use driver::{Driver, ExitStatus};
pub use status::{readiness, ContainerStatus, Health, Readiness, Report, State, StatusMap, SETTLE};
pub use supervisor::Supervisor;
