//! cairn-events: bucket event notifications leave the server here. The
//! store writes each event's record to its outbox on the drives (cairn-api
//! `Outbox`); the [`Deliverer`] drains it, sends each record in AWS's S3
//! event format (cairn-api `event_message`) to its targets ([`target`]: webhook; [`redis`];
//! [`nats`]; [`mqtt`]; [`amqp`]; [`postgres`]), each through its own
//! bounded queue and worker that retries with backoff forever, and removes
//! a record once every target it names has it. Targets come from the server's configuration
//! ([`config`]). Depends on cairn-api alone.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod amqp;
pub mod config;
pub mod deliver;
pub mod mqtt;
pub mod nats;
pub mod postgres;
pub mod redis;
pub mod target;

pub use cairn_api::event_message as record;
pub use config::{NotifyConfig, TargetConfig};
pub use deliver::{Deliverer, DeliveryStats};
pub use target::{Target, TargetError};
