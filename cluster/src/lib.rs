//! The cluster's internode plane (issue 21): the storage RPC through which
//! a node's erasure sets reach the drives of other nodes.
//!
//! - `server`: runs other nodes' `DriveIo` calls on this node's drives.
//! - `client`: `RemoteIo`, the `DriveIo` of another node's drive.
//! - `auth`: every request signed with the cluster secret, with an expiry.
//! - `wire`: the calls, their headers and bodies.
//! - `locker`: this node's lockers (one per drive it serves).
//! - `dlock`: `QuorumLocks`, a set's object locks asked of its drives'
//!   lockers, with fences.
//! - `relay`: this node's store changes sent to the others (their caches
//!   and file fronts drop what went stale).

pub mod auth;
pub mod client;
pub mod dlock;
pub mod locker;
pub mod relay;
pub mod server;
pub mod wire;

pub use auth::NodeKey;
pub use client::{Node, RemoteIo};
pub use server::StorageServer;
