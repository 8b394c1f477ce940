//! Segments at rest: sealing (hash + age), the write-once blob store, and the pending
//! records that let a node re-propose a durable but uncommitted segment after a crash.

pub mod pending;
pub mod read;
pub mod seal;
pub mod store;

pub use read::{open_segment, OtherCopies};
pub use seal::{Hash, Keys, Sealed};
pub use store::BlobStore;
