//! The etcd calls the federation makes, each bounded by a deadline so an
//! etcd that is gone costs a request at most that long.

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp, WatchOptions, WatchStream,
};

use cairn_s3::EtcdEndpoint;

use crate::error::{ConfigError, EtcdError};

/// The deadline of every call.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The deadline of a connection attempt to one endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach etcd.
#[derive(Clone)]
pub struct EtcdConfig {
    /// `http://host:port` (or `https://` with `tls`) endpoints of one
    /// etcd cluster.
    pub endpoints: Vec<String>,
    /// etcd's own authentication (user, password), if it has it on.
    pub user: Option<(String, String)>,
    /// TLS to etcd (rustls): the CA to trust, and a client certificate
    /// when etcd asks for one (`--client-cert-auth`).
    pub tls: Option<EtcdTls>,
}

/// TLS to etcd, as PEM read from the operator's files.
#[derive(Clone)]
pub struct EtcdTls {
    /// The CA that signed etcd's certificates.
    pub ca: Vec<u8>,
    /// This site's certificate (chain) and key, for etcd's client
    /// certificate authentication.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdConfig {
    // neither the password nor the key is ever printed
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls.is_some())
            .field(
                "client_cert",
                &self.tls.as_ref().is_some_and(|t| t.identity.is_some()),
            )
            .finish()
    }
}

impl EtcdConfig {
    /// The client options every connection uses.
    fn options(&self) -> ConnectOptions {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(CALL_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(2));
        if let Some((user, password)) = &self.user {
            opts = opts.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca));
            if let Some((cert, key)) = &tls.identity {
                t = t.identity(Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(t);
        }
        opts
    }
}

/// A client of one etcd cluster (cheap to clone).
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    cfg: EtcdConfig,
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
        let client = Client::connect(&cfg.endpoints, Some(cfg.options())).await?;
        Ok(Self {
            client,
            cfg: cfg.clone(),
        })
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

    /// Every key and value under `prefix`, and the store's revision of
    /// that read (a watch from the next one misses nothing).
    pub async fn list_at(&self, prefix: &str) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, i64), EtcdError> {
        let mut client = self.client.clone();
        let mut resp = self
            .call(client.get(prefix, Some(GetOptions::new().with_prefix())))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(|kv| kv.into_key_value())
            .collect();
        Ok((kvs, revision))
    }

    /// Puts `value` at `key` (`None`: deletes it).
    pub async fn set(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), EtcdError> {
        let mut client = self.client.clone();
        match value {
            Some(v) => self.call(client.put(key, v, None)).await.map(drop),
            None => self.call(client.delete(key, None)).await.map(drop),
        }
    }

    /// A watch of every key under `prefix`, from `revision` on. Its
    /// events come as they happen; the stream ends (or fails) when etcd
    /// is gone.
    pub async fn watch(&self, prefix: &str, revision: i64) -> Result<WatchStream, EtcdError> {
        let mut client = self.client.clone();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision);
        self.call(client.watch(prefix, Some(opts))).await
    }

    /// Each endpoint's status (asked one by one, so an operator sees
    /// which member is down).
    pub async fn status(&self) -> Vec<EtcdEndpoint> {
        let mut out = Vec::new();
        for endpoint in &self.cfg.endpoints {
            let opts = self.cfg.options();
            let asked = async {
                let mut c = Client::connect([endpoint.as_str()], Some(opts)).await?;
                c.status().await
            };
            let st = match self.call(asked).await {
                Ok(r) => EtcdEndpoint {
                    endpoint: endpoint.clone(),
                    version: Some(r.version().to_owned()),
                    leader: r.header().is_some_and(|h| h.member_id() == r.leader()),
                    error: None,
                },
                Err(e) => EtcdEndpoint {
                    endpoint: endpoint.clone(),
                    version: None,
                    leader: false,
                    error: Some(e.to_string()),
                },
            };
            out.push(st);
        }
        out
    }

    /// Puts the value `value()` makes at `key` on a new lease of `ttl`
    /// seconds, and keeps the lease alive until etcd says it is gone or a
    /// call fails (then returns that error); every `republish` keep-alives
    /// the value is made and put again (a site's free space).
    pub async fn hold<F, Fut>(
        &self,
        key: &str,
        value: F,
        ttl: Duration,
        republish: u32,
    ) -> EtcdError
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Vec<u8>>,
    {
        let mut client = self.client.clone();
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let lease = match self.call(client.lease_grant(secs, None)).await {
            Ok(l) => l.id(),
            Err(e) => return e,
        };
        let mut last = value().await;
        let put = client.put(key, last.clone(), Some(PutOptions::new().with_lease(lease)));
        if let Err(e) = self.call(put).await {
            return e;
        }
        let (mut keeper, mut stream) = match self.call(client.lease_keep_alive(lease)).await {
            Ok(k) => k,
            Err(e) => return e,
        };
        tracing::info!(key, lease, "registered in etcd");
        let mut beats = 0u32;
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
            beats = beats.wrapping_add(1);
            if republish > 0 && beats.is_multiple_of(republish) {
                let next = value().await;
                if next != last {
                    let opts = PutOptions::new().with_lease(lease);
                    if let Err(e) = self.call(client.put(key, next.clone(), Some(opts))).await {
                        return e;
                    }
                    last = next;
                }
            }
        }
    }
}
