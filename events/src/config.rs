//! The server's notification targets: a JSON file (`--notify-config`),
//! kept out of the command line since it holds secrets:
//!
//! ```json
//! { "targets": [
//!     { "id": "1", "type": "webhook", "endpoint": "http://host/path", "auth_token": "..." },
//!     { "id": "1", "type": "redis", "address": "redis://127.0.0.1:6379", "key": "events",
//!       "format": "list" },
//!     { "id": "1", "type": "nats", "address": "nats://127.0.0.1:4222", "subject": "s3.events",
//!       "jetstream": true },
//!     { "id": "1", "type": "mqtt", "address": "mqtt://user:pw@127.0.0.1:1883", "topic": "events" },
//!     { "id": "1", "type": "amqp", "address": "amqp://user:pw@127.0.0.1:5672/%2f",
//!       "exchange": "s3", "exchange_type": "fanout", "routing_key": "events" },
//!     { "id": "1", "type": "postgresql", "address": "postgres://user:pw@127.0.0.1/db",
//!       "table": "events", "format": "namespace" } ] }
//! ```
//!
//! A target's ARN is `arn:cairn:sqs::ID:TYPE`.

use std::sync::Arc;

use serde::Deserialize;

use crate::target::{Target, TargetError, Webhook};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
}

#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetConfig {
    Webhook {
        id: String,
        endpoint: String,
        #[serde(default)]
        auth_token: Option<String>,
    },
    /// `address`: `redis://[:password@]host:port[/db]`.
    Redis {
        id: String,
        address: String,
        key: String,
        #[serde(default)]
        format: crate::redis::RedisFormat,
    },
    /// `address`: `nats://[user:password@]host:port`.
    Nats {
        id: String,
        address: String,
        subject: String,
        #[serde(default)]
        jetstream: bool,
    },
    /// `address`: `mqtt://[user:password@]host[:port]`; QoS 1.
    Mqtt {
        id: String,
        address: String,
        topic: String,
    },
    /// `address`: `amqp://[user:password@]host[:port]/[vhost]`.
    Amqp {
        id: String,
        address: String,
        /// Empty: the default exchange (the routing key names a queue).
        #[serde(default)]
        exchange: String,
        /// direct (default), fanout, topic or headers.
        #[serde(default = "direct")]
        exchange_type: String,
        #[serde(default)]
        routing_key: String,
    },
    /// `address`: `postgres://[user:password@]host[:port]/database`.
    Postgresql {
        id: String,
        address: String,
        table: String,
        #[serde(default)]
        format: crate::postgres::PostgresFormat,
    },
}

fn direct() -> String {
    "direct".into()
}

impl std::fmt::Debug for TargetConfig {
    // no secret in a log line
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A configuration that names a target wrongly.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("notification target {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("notification target {0} is configured twice")]
    Duplicate(String),
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl TargetConfig {
    /// `ID:TYPE`.
    pub fn name(&self) -> String {
        match self {
            TargetConfig::Webhook { id, .. } => format!("{id}:webhook"),
            TargetConfig::Redis { id, .. } => format!("{id}:redis"),
            TargetConfig::Nats { id, .. } => format!("{id}:nats"),
            TargetConfig::Mqtt { id, .. } => format!("{id}:mqtt"),
            TargetConfig::Amqp { id, .. } => format!("{id}:amqp"),
            TargetConfig::Postgresql { id, .. } => format!("{id}:postgresql"),
        }
    }

    fn invalid(&self, message: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            name: self.name(),
            message: message.to_string(),
        }
    }

    /// The running target.
    pub fn open(&self) -> Result<Arc<dyn Target>, ConfigError> {
        let name = self.name();
        match self {
            TargetConfig::Webhook {
                endpoint,
                auth_token,
                ..
            } => {
                let url = reqwest::Url::parse(endpoint).map_err(|e| self.invalid(e))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(self.invalid("the endpoint must be http or https"));
                }
                Ok(Arc::new(Webhook::new(name, url, auth_token.clone())?))
            }
            TargetConfig::Redis {
                address,
                key,
                format,
                ..
            } => {
                if key.is_empty() {
                    return Err(self.invalid("the key must not be empty"));
                }
                Ok(Arc::new(crate::redis::RedisTarget::new(
                    name,
                    address,
                    key.clone(),
                    *format,
                )?))
            }
            TargetConfig::Nats {
                address,
                subject,
                jetstream,
                ..
            } => {
                if subject.is_empty() {
                    return Err(self.invalid("the subject must not be empty"));
                }
                Ok(Arc::new(crate::nats::NatsTarget::new(
                    name,
                    address.clone(),
                    subject.clone(),
                    *jetstream,
                )))
            }
            TargetConfig::Mqtt { address, topic, .. } => {
                if topic.is_empty() || topic.contains(['+', '#']) {
                    return Err(self.invalid("the topic must be non-empty, without + or #"));
                }
                let t = crate::mqtt::MqttTarget::new(name, address, topic.clone())
                    .map_err(|e| self.invalid(e))?;
                Ok(Arc::new(t))
            }
            TargetConfig::Amqp {
                address,
                exchange,
                exchange_type,
                routing_key,
                ..
            } => {
                use crate::amqp::ExchangeKind;
                let kind = match exchange_type.as_str() {
                    "direct" => ExchangeKind::Direct,
                    "fanout" => ExchangeKind::Fanout,
                    "topic" => ExchangeKind::Topic,
                    "headers" => ExchangeKind::Headers,
                    _ => {
                        return Err(self.invalid("exchange_type: direct, fanout, topic or headers"));
                    }
                };
                if exchange.is_empty() && routing_key.is_empty() {
                    return Err(self.invalid("the default exchange needs a routing_key (a queue)"));
                }
                if !address.starts_with("amqp://") {
                    return Err(self.invalid("the address must be amqp://host:port/vhost"));
                }
                let route = crate::amqp::AmqpRoute {
                    exchange: exchange.clone(),
                    kind,
                    routing_key: routing_key.clone(),
                };
                Ok(Arc::new(crate::amqp::AmqpTarget::new(
                    name,
                    address.clone(),
                    route,
                )))
            }
            TargetConfig::Postgresql {
                address,
                table,
                format,
                ..
            } => {
                if !crate::postgres::valid_table(table) {
                    return Err(self.invalid(
                        "the table must be a plain SQL name (letters, digits, _; 63 at most)",
                    ));
                }
                let t = crate::postgres::PostgresTarget::new(name, address, table, *format)
                    .map_err(|e| self.invalid(e))?;
                Ok(Arc::new(t))
            }
        }
    }
}

impl NotifyConfig {
    /// Checks ids (one name each, no `:`), returns the running targets.
    pub fn open(&self) -> Result<Vec<Arc<dyn Target>>, ConfigError> {
        let mut names = std::collections::HashSet::new();
        let mut out = Vec::new();
        for t in &self.targets {
            let name = t.name();
            let id = name.split(':').next().unwrap_or_default();
            if id.is_empty() || name.matches(':').count() != 1 {
                return Err(t.invalid("the id must be non-empty and hold no ':'"));
            }
            if !names.insert(name.clone()) {
                return Err(ConfigError::Duplicate(name));
            }
            out.push(t.open()?);
        }
        Ok(out)
    }

    /// The targets' names (`ID:TYPE`), for the S3 front's checks.
    pub fn names(&self) -> Vec<String> {
        self.targets.iter().map(TargetConfig::name).collect()
    }
}
