//! The etcd calls the federation makes, each bounded by a deadline so an
//! etcd that is gone costs a request at most that long.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp};

use crate::error::{ConfigError, EtcdError};

/// The deadline of every call.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The deadline of a connection attempt to one endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `http://host:port` endpoints of one etcd cluster.
    pub endpoints: Vec<String>,
    /// etcd's own authentication (user, password), if it has it on.
    pub user: Option<(String, String)>,
}

/// A client of one etcd cluster (cheap to clone).
#[derive(Clone)]
pub struct Etcd {
    client: Client,
}

/// The outcome of a claim.
pub enum Claim {
    /// The key was free and now holds our value.
    Won,
    /// The key holds this value already.
    Held(Vec<u8>),
}

impl Etcd {
    /// A client; the connection is made lazily, so an etcd that is down
    /// at start only makes the calls fail until it is back.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self, ConfigError> {
        if cfg.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(CALL_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(2));
        if let Some((user, password)) = &cfg.user {
            opts = opts.with_user(user.clone(), password.clone());
        }
        let client = Client::connect(&cfg.endpoints, Some(opts)).await?;
        Ok(Self { client })
    }

    async fn call<T>(
        &self,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(EtcdError::Timeout(CALL_TIMEOUT)),
        }
    }

    /// Puts `value` at `key`, and `extra` beside it, in one transaction
    /// if and only if `key` was never created (create revision 0).
    pub async fn claim(
        &self,
        key: &str,
        value: Vec<u8>,
        extra: &[(String, Vec<u8>)],
    ) -> Result<Claim, EtcdError> {
        let mut puts = vec![TxnOp::put(key, value, None)];
        puts.extend(
            extra
                .iter()
                .map(|(k, v)| TxnOp::put(k.as_str(), v.clone(), None)),
        );
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then(puts)
            .or_else([TxnOp::get(key, None)]);
        let mut client = self.client.clone();
        let resp = self.call(client.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(Claim::Won);
        }
        let held = resp.op_responses().into_iter().find_map(|op| match op {
            etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        // gone between the compare and the get of one transaction: never
        Ok(Claim::Held(held.unwrap_or_default()))
    }

    /// Deletes `key` and `extra` in one transaction if `key` still holds
    /// `value`; whether it did.
    pub async fn release(
        &self,
        key: &str,
        value: Vec<u8>,
        extra: &[String],
    ) -> Result<bool, EtcdError> {
        let mut deletes = vec![TxnOp::delete(key, None)];
        deletes.extend(extra.iter().map(|k| TxnOp::delete(k.as_str(), None)));
        let txn = Txn::new()
            .when([Compare::value(key, CompareOp::Equal, value)])
            .and_then(deletes);
        let mut client = self.client.clone();
        Ok(self.call(client.txn(txn)).await?.succeeded())
    }

    /// The value at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EtcdError> {
        let mut client = self.client.clone();
        let resp = self.call(client.get(key, None)).await?;
        Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// Every key and value under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, EtcdError> {
        let mut client = self.client.clone();
        let mut resp = self
            .call(client.get(prefix, Some(GetOptions::new().with_prefix())))
            .await?;
        Ok(resp
            .take_kvs()
            .into_iter()
            .map(|kv| kv.into_key_value())
            .collect())
    }

    /// Puts `value` at `key` on a new lease of `ttl` seconds, and keeps
    /// the lease alive until etcd says it is gone or a call fails (then
    /// returns that error).
    pub async fn hold(&self, key: &str, value: Vec<u8>, ttl: Duration) -> EtcdError {
        let mut client = self.client.clone();
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let lease = match self.call(client.lease_grant(secs, None)).await {
            Ok(l) => l.id(),
            Err(e) => return e,
        };
        let put = client.put(key, value, Some(PutOptions::new().with_lease(lease)));
        if let Err(e) = self.call(put).await {
            return e;
        }
        let (mut keeper, mut stream) = match self.call(client.lease_keep_alive(lease)).await {
            Ok(k) => k,
            Err(e) => return e,
        };
        tracing::info!(key, lease, "registered in etcd");
        loop {
            tokio::time::sleep(ttl / 3).await;
            if let Err(e) = self.call(keeper.keep_alive()).await {
                return e;
            }
            match self.call(stream.message()).await {
                Ok(Some(r)) if r.ttl() > 0 => {}
                Ok(_) => {
                    return EtcdError::LeaseLost {
                        key: key.to_owned(),
                    };
                }
                Err(e) => return e,
            }
        }
    }
}
