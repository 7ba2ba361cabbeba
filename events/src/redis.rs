//! The Redis target: each message appended to a list (`RPUSH key msg`,
//! the default) or a stream (`XADD key * event msg`), over one
//! multiplexed connection made again after a failure.

use async_trait::async_trait;
use serde::Deserialize;

use crate::target::{Message, Target, TargetError, bounded};

/// Where in Redis messages go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisFormat {
    #[default]
    List,
    Stream,
}

pub struct RedisTarget {
    name: String,
    client: redis::Client,
    key: String,
    format: RedisFormat,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl RedisTarget {
    pub fn new(
        name: String,
        address: &str,
        key: String,
        format: RedisFormat,
    ) -> Result<Self, TargetError> {
        let client = redis::Client::open(address).map_err(|e| TargetError::new(&name, e))?;
        Ok(Self {
            name,
            client,
            key,
            format,
            conn: Default::default(),
        })
    }

    async fn push(&self, message: &str) -> Result<(), String> {
        let mut slot = self.conn.lock().await;
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => {
                let c = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| e.to_string())?;
                slot.insert(c)
            }
        };
        let cmd = match self.format {
            RedisFormat::List => redis::cmd("RPUSH").arg(&self.key).arg(message).clone(),
            RedisFormat::Stream => redis::cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg("event")
                .arg(message)
                .clone(),
        };
        cmd.exec_async(conn).await.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Target for RedisTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), TargetError> {
        bounded(&self.name, self.push(&message.body), async || {
            *self.conn.lock().await = None
        })
        .await
    }
}
