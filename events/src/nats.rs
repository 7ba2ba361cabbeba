//! The NATS target: each message published on a subject; with
//! `jetstream`, published to JetStream and done only once the server
//! acknowledges it stored (a stream must take the subject), else a core
//! publish flushed to the server.

use async_trait::async_trait;

use crate::target::{Message, SEND_TIMEOUT, Target, TargetError, bounded};

pub struct NatsTarget {
    name: String,
    address: String,
    subject: String,
    jetstream: bool,
    client: tokio::sync::Mutex<Option<async_nats::Client>>,
}

impl NatsTarget {
    pub fn new(name: String, address: String, subject: String, jetstream: bool) -> Self {
        Self {
            name,
            address,
            subject,
            jetstream,
            client: Default::default(),
        }
    }

    /// The connection (made on first use; the client reconnects by itself).
    async fn client(&self) -> Result<async_nats::Client, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = async_nats::ConnectOptions::new()
            .connection_timeout(SEND_TIMEOUT)
            .request_timeout(Some(SEND_TIMEOUT))
            .connect(self.address.as_str())
            .await
            .map_err(|e| e.to_string())?;
        Ok(slot.insert(c).clone())
    }

    async fn publish(&self, message: &str) -> Result<(), String> {
        let client = self.client().await?;
        let payload = bytes::Bytes::copy_from_slice(message.as_bytes());
        if self.jetstream {
            let js = async_nats::jetstream::new(client);
            js.publish(self.subject.clone(), payload)
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
        } else {
            client
                .publish(self.subject.clone(), payload)
                .await
                .map_err(|e| e.to_string())?;
            client.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[async_trait]
impl Target for NatsTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), TargetError> {
        // the client reconnects by itself
        bounded(&self.name, self.publish(&message.body), async || {}).await
    }
}
