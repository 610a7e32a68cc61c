//! One container, from its resolved description to a running process: compile, plan, launch.

pub mod create;
pub mod plan;
pub mod volumes;

pub use create::{cgroup_driver, cgroup_name, prepare, remove, ContainerDirs, CreateError, Inputs, Prepared, Writes};
pub use plan::{start_plan, ExtraFiles, PlanError, RootfsPlan};
