//! A whole app on this host: its record, its network, its containers under a supervisor.

pub mod client;
pub mod copy;
pub mod driver;
pub mod etc;
pub mod events;
pub mod export;
pub mod inspect;
pub mod lifecycle;
pub mod netns;
pub mod one_off;
pub mod ops;
pub mod reconcile;
pub mod record;
pub mod serve_reconcile;
pub mod stats;

pub use driver::{AppContext, HostDriver, OutputLine};
pub use record::AppRecord;
