//! One container, from its resolved description to a running process: compile, plan, launch.

pub mod plan;

pub use plan::{start_plan, ExtraFiles, PlanError, RootfsPlan};
