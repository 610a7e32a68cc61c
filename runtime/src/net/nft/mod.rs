//! nf_tables over netlink: atomic batches ([`batch`]), our expression module ([`expr`]) and
//! sets with concatenations and flags ([`set`]), delete-if-exists for tables ([`table`]), on top of the nftnl crate's tables, chains
//! and rules.

pub mod batch;
pub mod expr;
pub mod set;
pub mod table;

pub use batch::{Batch, FinalBatch};
