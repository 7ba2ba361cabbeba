//! cairn-s3: Cairn's S3 front.
//!
//! `s3s` speaks the wire protocol (routing, XML, SigV4 header / presigned /
//! streaming-chunked signatures); this crate maps each S3 operation onto the
//! `ObjectLayer` it is given and serves the result over hyper (HTTP/1.1 and
//! HTTP/2), with the server's own endpoints under `/_cairn/` ([`endpoints`])
//! and graceful shutdown.
//!
//! The one public entry point is [`serve`].

// No panic reachable from a request: no indexing that may go out of
// bounds, no unwrap (tests may).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod access;
mod acl;
mod admin;
mod attributes;
mod audit;
pub use admin::NO_ADMIN_API;
mod authcheck;
mod authz;
mod buckets;
mod conn;
mod convert;
mod cors;
pub mod endpoints;
mod errlog;
mod errors;
pub mod forward;
mod host;
mod lifecycle;
mod limits;
mod lines;
mod list;
mod listen;
mod lock;
mod metrics;
mod multipart;
mod notify;
mod objects;
pub mod oidc;
mod policy;
mod postform;
mod precheck;
mod query;
pub mod redact;
mod replication;
mod server;
mod service;
mod sse;
pub mod svcacct;
mod tagging;
mod timed;
mod tls;
mod unread;
mod versioning;
mod web;

pub use audit::{AuditLog, AuditTarget};
pub use errlog::is_s3s_error_report;
pub use forward::{
    BucketRouter, EtcdEndpoint, EtcdHealth, FORWARDED_HEADER, FederationStatus, ForwardedBody,
    PLACEMENT_HEADER, Routed, SiteStatus,
};
pub use limits::{LimitError, Limits};
pub use server::{ConfigError, ReadyFn, S3Config, bind, serve};
pub use tls::{CertError, Listener, Tls, TlsError, TlsOptions};
pub use web::{WebBody, WebConn, WebFront};
