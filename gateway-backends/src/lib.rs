//! cairn-gateway: `ObjectLayer` implementations over stores that already
//! hold data, leaving it where and as it is. Every front (S3, the FUSE
//! mount) works on them unchanged.
//!
//! - [`nas::NasLayer`]: a NAS folder; buckets are its top-level folders,
//!   objects its files, byte for byte.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod cloud;
pub mod nas;

pub use nas::{NasLayer, NasOptions, OpenError};
