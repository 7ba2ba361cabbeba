//! The PostgreSQL target (tokio-postgres, no TLS), in MinIO's two
//! formats: `namespace`, one row per object (`key` = `bucket/key`,
//! `value` = its last event), upserted when an object is created and
//! deleted when it is removed; `access`, one row appended per event
//! (`event_time`, `event_data`). The table is created when missing.

use async_trait::async_trait;
use serde::Deserialize;

use crate::target::{Message, Target, TargetError, bounded};

/// How events become rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostgresFormat {
    #[default]
    Namespace,
    Access,
}

/// A table name: a plain SQL identifier (quoted in every statement).
pub fn valid_table(t: &str) -> bool {
    let mut chars = t.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.len() <= 63
}

/// The statements of a format over one table.
struct Sql {
    create: String,
    upsert: String,
    delete: String,
}

impl Sql {
    fn of(table: &str, format: PostgresFormat) -> Self {
        let t = format!("\"{table}\"");
        match format {
            PostgresFormat::Namespace => Self {
                create: format!(
                    "CREATE TABLE IF NOT EXISTS {t} (key VARCHAR PRIMARY KEY, value JSONB)"
                ),
                upsert: format!(
                    "INSERT INTO {t} (key, value) VALUES ($1, $2::text::jsonb) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ),
                delete: format!("DELETE FROM {t} WHERE key = $1"),
            },
            PostgresFormat::Access => Self {
                create: format!(
                    "CREATE TABLE IF NOT EXISTS {t} \
                     (event_time TIMESTAMP WITH TIME ZONE NOT NULL, event_data JSONB)"
                ),
                upsert: format!(
                    "INSERT INTO {t} (event_time, event_data) \
                     VALUES ($1::text::timestamptz, $2::text::jsonb)"
                ),
                delete: String::new(),
            },
        }
    }
}

pub struct PostgresTarget {
    name: String,
    /// `postgres://[user:password@]host[:port]/database`.
    config: tokio_postgres::Config,
    format: PostgresFormat,
    sql: Sql,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl PostgresTarget {
    pub fn new(
        name: String,
        address: &str,
        table: &str,
        format: PostgresFormat,
    ) -> Result<Self, String> {
        let mut config: tokio_postgres::Config = address.parse().map_err(|e| format!("{e}"))?;
        config.connect_timeout(crate::target::SEND_TIMEOUT);
        config.application_name("cairn");
        Ok(Self {
            name,
            config,
            format,
            sql: Sql::of(table, format),
            client: Default::default(),
        })
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(target_name = %name, error = %e, "PostgreSQL connection closed");
            }
        });
        client.execute(self.sql.create.as_str(), &[]).await?;
        Ok(client)
    }

    async fn write(&self, m: &Message) -> Result<(), String> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| c.is_closed()) {
            *slot = None;
        }
        let client = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(self.connect().await.map_err(|e| e.to_string())?),
        };
        let res = match (self.format, m.removal) {
            (PostgresFormat::Namespace, true) => {
                client
                    .execute(self.sql.delete.as_str(), &[&m.subject])
                    .await
            }
            (PostgresFormat::Namespace, false) => {
                client
                    .execute(self.sql.upsert.as_str(), &[&m.subject, &m.body])
                    .await
            }
            (PostgresFormat::Access, _) => {
                client
                    .execute(self.sql.upsert.as_str(), &[&m.time, &m.body])
                    .await
            }
        };
        res.map(|_| ()).map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Target for PostgresTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), TargetError> {
        bounded(&self.name, self.write(message), async || {
            *self.client.lock().await = None
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(valid_table("events"));
        assert!(valid_table("_e2"));
        assert!(!valid_table(""));
        assert!(!valid_table("2e"));
        assert!(!valid_table("a\"; DROP TABLE x; --"));
        assert!(!valid_table("a.b"));
    }
}
