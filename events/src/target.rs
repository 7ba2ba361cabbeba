//! Where records go. Each target is one server the operator configured,
//! named `ID:TYPE` (its ARN is `arn:cairn:sqs::ID:TYPE`).

use std::time::Duration;

use async_trait::async_trait;

pub use crate::record::Message;

/// A send that failed: retried later.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{target}: {message}")]
    Failed { target: String, message: String },
}

impl TargetError {
    pub fn new(target: &str, e: impl std::fmt::Display) -> Self {
        Self::Failed {
            target: target.to_owned(),
            message: e.to_string(),
        }
    }
}

/// A destination of event messages.
#[async_trait]
pub trait Target: Send + Sync {
    /// `ID:TYPE`.
    fn name(&self) -> &str;
    /// Sends one message; Ok once the target has it.
    async fn send(&self, message: &Message) -> Result<(), TargetError>;
}

/// How long one send may take.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one send under [`SEND_TIMEOUT`]; a send that times out or fails
/// runs `reset` (the next send connects again).
pub(crate) async fn bounded<F, R>(name: &str, send: F, reset: R) -> Result<(), TargetError>
where
    F: std::future::Future<Output = Result<(), String>>,
    R: AsyncFnOnce(),
{
    let e = match tokio::time::timeout(SEND_TIMEOUT, send).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => "no answer within the send timeout".to_owned(),
    };
    reset().await;
    Err(TargetError::new(name, e))
}

/// An HTTP endpoint receiving each message as a POST with a JSON body
/// (and `Authorization: Bearer TOKEN` when a token is configured).
pub struct Webhook {
    name: String,
    endpoint: reqwest::Url,
    token: Option<String>,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(
        name: String,
        endpoint: reqwest::Url,
        token: Option<String>,
    ) -> Result<Self, TargetError> {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .map_err(|e| TargetError::new(&name, e))?;
        Ok(Self {
            name,
            endpoint,
            token,
            client,
        })
    }
}

#[async_trait]
impl Target for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), TargetError> {
        let mut req = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TargetError::new(&self.name, e))?;
        if !resp.status().is_success() {
            return Err(TargetError::new(
                &self.name,
                format!("the endpoint answered {}", resp.status()),
            ));
        }
        Ok(())
    }
}
