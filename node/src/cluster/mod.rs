//! The cluster: talking to peers, and the leader's duties toward them.
//!
//! | concern | module |
//! |---|---|
//! | channels to other nodes over mutual TLS | [`peers`] |
//! | openraft's network over those channels | [`network`] |
//! | who is alive, and their disks | [`health`] |
//! | where a segment's replicas go (pure) | [`placement`] |
//! | pushing and pulling sealed blobs | [`replicate`] |
//! | membership, camera failover and repair, run by the leader | [`leader`] |

pub mod health;
pub mod leader;
pub mod network;
pub mod peers;
pub mod placement;
pub mod replicate;

pub use crate::config::REPLICATION_FACTOR_DEFAULT;
