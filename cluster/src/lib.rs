//! The cluster's internode plane (issue 21): the storage RPC through which
//! a node's erasure sets reach the drives of other nodes.
//!
//! - `server`: runs other nodes' `DriveIo` calls on this node's drives.
//! - `client`: `RemoteIo`, the `DriveIo` of another node's drive.
//! - `auth`: every request signed with the cluster secret, with an expiry.
//! - `wire`: the calls, their headers and bodies.

pub mod auth;
pub mod client;
pub mod server;
pub mod wire;

pub use auth::NodeKey;
pub use client::{Node, RemoteIo};
pub use server::StorageServer;
