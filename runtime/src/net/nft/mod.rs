//! nf_tables over netlink: atomic batches ([`batch`]), our expression module ([`expr`]) and
//! sets with concatenations and flags ([`set`]), on top of the nftnl crate's tables, chains
//! and rules.

pub mod batch;
pub mod expr;
pub mod set;

pub use batch::{Batch, FinalBatch};
