//! The spawner: the one place that creates processes inside containers.
//!
//! [`Spawner::start`] forks a single-threaded helper process at the top of `main`, before tokio
//! or any other thread exists. Every container process (a new container's init, and later
//! `exec`, in-container hooks and probes) is cloned by that helper, which runs the start
//! sequence ([`crate::start`]) in the child up to execve. tfctl never re-executes itself, and no
//! child of a multi-threaded process runs anything but raw syscalls.
//!
//! ```no_run
//! # use tfctl_runtime::spawn::{Spawner, StartFds};
//! fn main() {
//!     let spawner = Spawner::start().expect("spawner");   // first thing in main
//!     // ... build the tokio runtime, compile a StartPlan, then:
//!     # let plan: tfctl_runtime::spawn::StartPlan = unimplemented!();
//!     let child = spawner.launch(&plan, StartFds::default()).expect("started");
//!     let status = child.wait().expect("exit status");
//! }
//! ```

mod client;
mod error;
pub mod plan;
mod protocol;
mod server;

pub use crate::start::step::Step;
pub use crate::sys::Namespace;
pub use client::{Child, ExitStatus, ExitWaiter, Launch, Spawner, DEFAULT_START_TIMEOUT};
pub use error::{SpawnerError, StartError};
pub use plan::*;
