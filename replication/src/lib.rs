//! Bucket replication (issue 22): the targets registered with `cairn
//! admin replicate add` (kept in the config store, sealed by the KMS when
//! the store has one) and the service that carries out the replication
//! tasks the store writes into its outbox with each commit.
//!
//! Delivery: a dispatcher reads the outbox's replication records oldest
//! first and hands each (record, destination) to one of that target's
//! four lanes (by key: one key's tasks stay in order) through a bounded
//! queue (a full queue waits in the outbox); a lane's worker copies one
//! task at a time, in order, retrying with backoff (100 ms doubling to
//! 30 s) forever. A target's bandwidth limit is shared by its lanes.
//! `cairn admin replicate resync` walks a bucket's versions into the same
//! lanes (resync.rs). The source version is marked FAILED at its
//! first failure and COMPLETED once every destination has it; then the
//! record leaves the outbox. A crash anywhere before that leaves the record
//! on the drives: it is sent again (the target replaces the same version
//! id: at least once, converging). Depends on cairn-api alone.

mod copy;
mod resync;
mod service;
mod target;
mod throttle;

pub use service::{ReplicationService, ServiceConfig};
