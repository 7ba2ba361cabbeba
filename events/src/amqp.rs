//! The AMQP 0-9-1 target (RabbitMQ, lapin): each message published to an
//! exchange with a routing key, persistent (delivery mode 2), mandatory,
//! on a channel in confirm mode: done once the broker acknowledged it,
//! and a failure when the broker refused it or no queue took it (the
//! broker returned it), so that "delivered" means a queue holds it. A
//! named exchange is declared (durable) on each new connection.

use async_trait::async_trait;
pub use lapin::ExchangeKind;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use crate::target::{Message, Target, TargetError, bounded};

/// Delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// Where messages go.
pub struct AmqpRoute {
    /// "" (the default exchange: the routing key names the queue).
    pub exchange: String,
    pub kind: ExchangeKind,
    pub routing_key: String,
}

struct Conn {
    // kept open with its channel
    _connection: Connection,
    channel: Channel,
}

pub struct AmqpTarget {
    name: String,
    address: String,
    route: AmqpRoute,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl AmqpTarget {
    /// `address`: `amqp://[user:password@]host[:port]/[vhost]`.
    pub fn new(name: String, address: String, route: AmqpRoute) -> Self {
        Self {
            name,
            address,
            route,
            conn: Default::default(),
        }
    }

    async fn connect(&self) -> Result<Conn, lapin::Error> {
        let connection =
            Connection::connect(&self.address, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        if !self.route.exchange.is_empty() {
            channel
                .exchange_declare(
                    self.route.exchange.as_str().into(),
                    self.route.kind.clone(),
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(Conn {
            _connection: connection,
            channel,
        })
    }

    async fn publish(&self, body: &str) -> Result<(), String> {
        let mut slot = self.conn.lock().await;
        if slot
            .as_ref()
            .is_some_and(|c| !c.channel.status().connected())
        {
            *slot = None;
        }
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(self.connect().await.map_err(|e| e.to_string())?),
        };
        let confirm = conn
            .channel
            .basic_publish(
                self.route.exchange.as_str().into(),
                self.route.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body.as_bytes(),
                BasicProperties::default()
                    .with_delivery_mode(PERSISTENT)
                    .with_content_type("application/json".into()),
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err("no queue is bound to the routing key".into()),
            Confirmation::Nack(_) => Err("the broker refused the message".into()),
            Confirmation::NotRequested => Err("the channel is not in confirm mode".into()),
        }
    }
}

#[async_trait]
impl Target for AmqpTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), TargetError> {
        bounded(&self.name, self.publish(&message.body), async || {
            *self.conn.lock().await = None
        })
        .await
    }
}
