//! The MQTT target: each message published on a topic with QoS 1, done
//! once the broker's PUBACK for it came (MQTT 3.1.1, rumqttc). The
//! connection lives between sends; the event loop is driven by the send
//! itself, so a connection idle longer than half the keep-alive is made
//! again rather than trusted.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};

use crate::target::{Message, Target, TargetError, bounded};

const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// The largest message (a key is at most 1 KiB; its record a few).
const MAX_PACKET: usize = 256 * 1024;

struct Conn {
    client: AsyncClient,
    events: EventLoop,
    used: Instant,
}

pub struct MqttTarget {
    name: String,
    options: MqttOptions,
    topic: String,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl MqttTarget {
    /// `address`: `mqtt://[user:password@]host[:port]` (1883 by default).
    pub fn new(name: String, address: &str, topic: String) -> Result<Self, String> {
        let url = reqwest::Url::parse(address).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "mqtt" | "tcp") {
            return Err("the address must be mqtt://host:port".into());
        }
        let host = url.host_str().ok_or("the address has no host")?;
        let client_id = format!("cairn-{}-{}", name.replace(':', "-"), std::process::id());
        let mut options = MqttOptions::new(client_id, host, url.port().unwrap_or(1883));
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if !url.username().is_empty() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            options.set_credentials(
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            );
        }
        Ok(Self {
            name,
            options,
            topic,
            conn: Default::default(),
        })
    }

    async fn publish(&self, body: &str) -> Result<(), String> {
        let mut slot = self.conn.lock().await;
        if slot
            .as_ref()
            .is_some_and(|c| c.used.elapsed() > KEEP_ALIVE / 2)
        {
            *slot = None;
        }
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => {
                let (client, events) = AsyncClient::new(self.options.clone(), 8);
                slot.insert(Conn {
                    client,
                    events,
                    used: Instant::now(),
                })
            }
        };
        conn.client
            .publish(
                self.topic.as_str(),
                QoS::AtLeastOnce,
                false,
                body.as_bytes(),
            )
            .await
            .map_err(|e| e.to_string())?;
        // the connection (when new), our PUBLISH, then its PUBACK
        let mut sent = None;
        loop {
            match conn.events.poll().await.map_err(|e| e.to_string())? {
                Event::Outgoing(Outgoing::Publish(id)) => sent = Some(id),
                Event::Incoming(Packet::PubAck(a)) if Some(a.pkid) == sent => break,
                _ => {}
            }
        }
        conn.used = Instant::now();
        Ok(())
    }
}

#[async_trait]
impl Target for MqttTarget {
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
