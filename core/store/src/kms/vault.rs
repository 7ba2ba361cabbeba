//! HashiCorp Vault's (or OpenBao's) Transit secrets engine as the KMS,
//! through `vaultrs`.
//!
//! Calls, all under the configured mount (default `transit`):
//! `POST datakey/plaintext/<key>` (generate), `POST decrypt/<key>`,
//! `POST rewrap/<key>`, `POST keys/<key>` (create), `POST
//! keys/<key>/rotate`, `GET keys/<key>` (versions, derived or not), `LIST
//! keys`; and `POST auth/<approle mount>/login` for AppRole.
//!
//! Sealed keys are Transit's own ciphertexts, `vault:v<N>:...`, so
//! [`super::sealed_version`] reads the key version from them.
//!
//! **Context binding.** Transit takes a `context` only for *derived* keys
//! (`derived=true`): the data key is then sealed under a key derived from
//! the context, and decrypting or re-wrapping with another context fails.
//! For a key that is not derived Transit refuses a context, so none is
//! sent and the context is **not bound** by Vault: the sealed key opens for
//! any caller with the key name. Keys that Cairn creates (`create_key`, and
//! the default key when it is missing at start) are derived. Whether a key
//! is derived is read once per key (`GET keys/<key>`) and cached. The
//! context sent is `base64(b"cairn-kms" || context)`, never empty (Transit
//! refuses an empty context for a derived key).
//!
//! **Auth.** A token, or AppRole (`role_id` + `secret_id`): Cairn logs in
//! at first use, again shortly before the token's lease ends, and once more
//! whenever Vault answers 403 (a revoked or expired token), then retries the
//! call once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use parking_lot::Mutex;
use vaultrs::api::transit::requests::{
    CreateKeyRequest, DataKeyType, DecryptDataRequest, GenerateDataKeyRequest, RewrapDataRequest,
};
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::{DataKey, KeyStatus, Kms, KmsError, KmsStatus};

/// How Cairn authenticates to Vault.
#[derive(Clone)]
pub enum VaultAuth {
    Token(String),
    AppRole {
        /// Where the AppRole auth method is mounted (usually `approle`).
        mount: String,
        role_id: String,
        secret_id: String,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultAuth::Token(_) => f.write_str("Token(<hidden>)"),
            VaultAuth::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Where Vault is and how to talk to it.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `http(s)://host:port`.
    pub endpoint: String,
    /// The Transit engine's mount path (default `transit`).
    pub mount: String,
    pub auth: VaultAuth,
    /// The key SSE-S3 uses.
    pub default_key: String,
    /// Per request.
    pub timeout: Duration,
}

struct Session {
    client: Arc<VaultClient>,
    /// When to log in again (AppRole only): a little before the lease ends.
    renew_at: Option<Instant>,
    /// Bumped on every login, so concurrent 403s log in once.
    generation: u64,
}

/// The Transit KMS. See the module docs.
pub struct VaultKms {
    cfg: VaultConfig,
    session: Mutex<Session>,
    login_lock: tokio::sync::Mutex<()>,
    /// Key name -> derived.
    derived: Mutex<HashMap<String, bool>>,
}

fn backend(message: impl Into<String>) -> KmsError {
    KmsError::Backend {
        message: message.into(),
    }
}

/// Vault error texts that mean the key does not exist.
fn says_not_found(errors: &[String]) -> bool {
    errors.iter().any(|e| {
        let e = e.to_ascii_lowercase();
        e.contains("not found") || e.contains("no existing key") || e.contains("does not exist")
    })
}

/// Maps a Vault error. `sealed_input`: the call took a sealed key, so a 400
/// that is not about a missing key means the sealed key (or its context) is
/// bad.
fn map_err(e: ClientError, key_id: &str, sealed_input: bool) -> KmsError {
    match e {
        ClientError::APIError { code: 404, .. } => KmsError::NotFound {
            key_id: key_id.to_owned(),
        },
        ClientError::APIError { code: 400, errors } if says_not_found(&errors) => {
            KmsError::NotFound {
                key_id: key_id.to_owned(),
            }
        }
        ClientError::APIError { code: 400, errors } if sealed_input => KmsError::Invalid {
            message: format!("Vault: {}", errors.join("; ")),
        },
        ClientError::APIError {
            code: 401 | 403,
            errors,
        } => KmsError::Denied {
            message: format!("Vault: {}", errors.join("; ")),
        },
        ClientError::APIError { code, errors } => {
            backend(format!("Vault answered {code}: {}", errors.join("; ")))
        }
        other => backend(format!("Vault: {}", error_chain(&other))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn is_denied(e: &ClientError) -> bool {
    matches!(e, ClientError::APIError { code: 403, .. })
}

/// A value that goes into an HTTP header or URL must not make vaultrs
/// panic (it unwraps header values).
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// Runs `$call` (an expression using `$c: &VaultClient`) with a logged-in
/// client; on 403 with AppRole, logs in again and retries once.
macro_rules! vault_call {
    ($self:ident, $c:ident => $call:expr) => {{
        let mut retried = false;
        loop {
            let (client, generation) = $self.client().await?;
            let $c: &VaultClient = &client;
            match $call.await {
                Err(e) if is_denied(&e) && !retried && $self.is_approle() => {
                    retried = true;
                    tracing::info!("Vault answered 403: logging in again with AppRole");
                    $self.login(Some(generation)).await?;
                }
                r => break r,
            }
        }
    }};
}

impl VaultKms {
    /// Checks the settings; connects lazily (the first call logs in).
    pub fn new(cfg: VaultConfig) -> Result<Self, KmsError> {
        let url = url::Url::parse(&cfg.endpoint)
            .map_err(|e| backend(format!("Vault endpoint {:?}: {e}", cfg.endpoint)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(backend(format!(
                "Vault endpoint {:?} must be http(s)://host[:port]",
                cfg.endpoint
            )));
        }
        if !header_safe(&cfg.mount) || cfg.mount.contains("..") {
            return Err(backend(format!("bad Transit mount {:?}", cfg.mount)));
        }
        if !super::builtin::valid_key_name(&cfg.default_key) {
            return Err(backend(format!(
                "bad default key name {:?}",
                cfg.default_key
            )));
        }
        let token = match &cfg.auth {
            VaultAuth::Token(t) => {
                if !header_safe(t) {
                    return Err(backend(
                        "the Vault token is empty or has invalid characters",
                    ));
                }
                t.clone()
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                if !header_safe(mount) || role_id.is_empty() || secret_id.is_empty() {
                    return Err(backend("AppRole needs a mount, a role id and a secret id"));
                }
                String::new()
            }
        };
        let client = Self::build_client(&cfg, &token)?;
        Ok(Self {
            cfg,
            session: Mutex::new(Session {
                client: Arc::new(client),
                renew_at: None,
                generation: 0,
            }),
            login_lock: tokio::sync::Mutex::new(()),
            derived: Mutex::new(HashMap::new()),
        })
    }

    /// [`Self::new`], then makes sure the default key exists: creates it
    /// (derived) when Vault says it does not. An unreachable or refusing
    /// Vault is logged, not fatal: the server starts, and SSE requests fail
    /// until Vault answers.
    pub async fn connect(cfg: VaultConfig) -> Result<Self, KmsError> {
        let kms = Self::new(cfg)?;
        let name = kms.cfg.default_key.clone();
        match kms.key_info(&name).await {
            Ok(_) => {}
            Err(KmsError::NotFound { .. }) => match kms.create_key(&name).await {
                Ok(()) => tracing::info!(key = %name, "created the default key in Vault Transit"),
                Err(e) => {
                    tracing::warn!(key = %name, error = %e, "cannot create the default KMS key")
                }
            },
            Err(e) => tracing::warn!(
                endpoint = %kms.cfg.endpoint, error = %e,
                "Vault is not answering yet; SSE-S3/SSE-KMS requests fail until it does"
            ),
        }
        Ok(kms)
    }

    fn build_client(cfg: &VaultConfig, token: &str) -> Result<VaultClient, KmsError> {
        let settings = VaultClientSettingsBuilder::default()
            .address(&cfg.endpoint)
            .token(token)
            .timeout(Some(cfg.timeout))
            .build()
            .map_err(|e| backend(format!("Vault client settings: {e}")))?;
        VaultClient::new(settings).map_err(|e| backend(format!("Vault client: {e}")))
    }

    /// How many AppRole logins so far (0 with a token).
    pub fn logins(&self) -> u64 {
        self.session.lock().generation
    }

    fn is_approle(&self) -> bool {
        matches!(self.cfg.auth, VaultAuth::AppRole { .. })
    }

    /// The current client; logs in first when AppRole has no token yet or
    /// its lease is about to end.
    async fn client(&self) -> Result<(Arc<VaultClient>, u64), KmsError> {
        {
            let s = self.session.lock();
            let fresh = match &self.cfg.auth {
                VaultAuth::Token(_) => true,
                VaultAuth::AppRole { .. } => {
                    s.generation > 0 && s.renew_at.is_none_or(|t| Instant::now() < t)
                }
            };
            if fresh {
                return Ok((s.client.clone(), s.generation));
            }
        }
        let generation = self.session.lock().generation;
        self.login(Some(generation)).await?;
        let s = self.session.lock();
        Ok((s.client.clone(), s.generation))
    }

    /// Logs in with AppRole unless someone else did since `seen`.
    async fn login(&self, seen: Option<u64>) -> Result<(), KmsError> {
        let VaultAuth::AppRole {
            mount,
            role_id,
            secret_id,
        } = &self.cfg.auth
        else {
            return Ok(());
        };
        let _g = self.login_lock.lock().await;
        if let Some(seen) = seen
            && self.session.lock().generation != seen
        {
            return Ok(());
        }
        let anon = Self::build_client(&self.cfg, "")?;
        let auth = vaultrs::auth::approle::login(&anon, mount, role_id, secret_id)
            .await
            .map_err(|e| match e {
                ClientError::APIError { code, errors } if code == 400 || code == 403 => {
                    KmsError::Denied {
                        message: format!("Vault AppRole login: {}", errors.join("; ")),
                    }
                }
                other => map_err(other, "", false),
            })?;
        if !header_safe(&auth.client_token) {
            return Err(backend("Vault AppRole login returned an unusable token"));
        }
        let client = Self::build_client(&self.cfg, &auth.client_token)?;
        // log in again when 80% of the lease has passed (0: no expiry)
        let renew_at = (auth.lease_duration > 0)
            .then(|| Instant::now() + Duration::from_millis(auth.lease_duration * 800));
        let mut s = self.session.lock();
        s.client = Arc::new(client);
        s.renew_at = renew_at;
        s.generation += 1;
        tracing::debug!(
            lease_secs = auth.lease_duration,
            "logged in to Vault with AppRole"
        );
        Ok(())
    }

    /// `(latest version, derived)` of a key.
    async fn key_info(&self, key_id: &str) -> Result<(u32, bool), KmsError> {
        check_name(key_id)?;
        let mount = &self.cfg.mount;
        let r = vault_call!(self, c => vaultrs::transit::key::read(c, mount, key_id))
            .map_err(|e| map_err(e, key_id, false))?;
        let latest = match &r.keys {
            ReadKeyData::Symmetric(m) => m.keys().filter_map(|k| k.parse::<u32>().ok()).max(),
            ReadKeyData::Asymmetric(m) => m.keys().filter_map(|k| k.parse::<u32>().ok()).max(),
        }
        .unwrap_or(0);
        self.derived.lock().insert(key_id.to_owned(), r.derived);
        Ok((latest, r.derived))
    }

    /// The `context` to send for this key: `Some` only for derived keys.
    async fn context_for(&self, key_id: &str, context: &[u8]) -> Result<Option<String>, KmsError> {
        let known = self.derived.lock().get(key_id).copied();
        let derived = match known {
            Some(d) => d,
            None => self.key_info(key_id).await?.1,
        };
        Ok(derived.then(|| {
            let mut bound = b"cairn-kms".to_vec();
            bound.extend_from_slice(context);
            B64.encode(bound)
        }))
    }
}

fn check_name(key_id: &str) -> Result<(), KmsError> {
    if super::builtin::valid_key_name(key_id) && !key_id.contains("..") {
        Ok(())
    } else {
        Err(KmsError::NotFound {
            key_id: key_id.to_owned(),
        })
    }
}

fn check_sealed(sealed: &str) -> Result<(), KmsError> {
    if sealed.starts_with("vault:v") && super::sealed_version(sealed).is_some() {
        Ok(())
    } else {
        Err(KmsError::Invalid {
            message: "not a Vault Transit ciphertext (vault:v<N>:...)".into(),
        })
    }
}

#[async_trait]
impl Kms for VaultKms {
    fn default_key(&self) -> &str {
        &self.cfg.default_key
    }

    async fn generate_data_key(&self, key_id: &str, context: &[u8]) -> Result<DataKey, KmsError> {
        check_name(key_id)?;
        let ctx = self.context_for(key_id, context).await?;
        let mount = &self.cfg.mount;
        let r = vault_call!(self, c => async {
            let mut b = GenerateDataKeyRequest::builder();
            b.bits(256u16);
            if let Some(ctx) = &ctx {
                b.context(ctx.clone());
            }
            vaultrs::transit::generate::data_key(c, mount, key_id, DataKeyType::Plaintext, Some(&mut b)).await
        })
        .map_err(|e| map_err(e, key_id, false))?;
        let plain = r
            .plaintext
            .ok_or_else(|| backend("Vault returned no plaintext data key"))?;
        let plain = B64
            .decode(plain)
            .map_err(|e| backend(format!("Vault data key is not base64: {e}")))?;
        let plaintext = <[u8; 32]>::try_from(plain.as_slice())
            .map_err(|_| backend(format!("Vault data key has {} bytes, not 32", plain.len())))?;
        check_sealed(&r.ciphertext)
            .map_err(|_| backend("Vault returned a ciphertext without a key version"))?;
        Ok(DataKey {
            plaintext,
            sealed: r.ciphertext,
        })
    }

    async fn decrypt(
        &self,
        key_id: &str,
        sealed: &str,
        context: &[u8],
    ) -> Result<[u8; 32], KmsError> {
        check_name(key_id)?;
        check_sealed(sealed)?;
        let ctx = self.context_for(key_id, context).await?;
        let mount = &self.cfg.mount;
        let r = vault_call!(self, c => async {
            let mut b = DecryptDataRequest::builder();
            if let Some(ctx) = &ctx {
                b.context(ctx.clone());
            }
            vaultrs::transit::data::decrypt(c, mount, key_id, sealed, Some(&mut b)).await
        })
        .map_err(|e| map_err(e, key_id, true))?;
        let plain = B64.decode(r.plaintext).map_err(|_| KmsError::Invalid {
            message: "Vault returned a plaintext that is not base64".into(),
        })?;
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| KmsError::Invalid {
            message: format!("the unsealed key has {} bytes, not 32", plain.len()),
        })
    }

    async fn rewrap(&self, key_id: &str, sealed: &str, context: &[u8]) -> Result<String, KmsError> {
        check_name(key_id)?;
        check_sealed(sealed)?;
        let ctx = self.context_for(key_id, context).await?;
        let mount = &self.cfg.mount;
        let r = vault_call!(self, c => async {
            let mut b = RewrapDataRequest::builder();
            if let Some(ctx) = &ctx {
                b.context(ctx.clone());
            }
            vaultrs::transit::data::rewrap(c, mount, key_id, sealed, Some(&mut b)).await
        })
        .map_err(|e| map_err(e, key_id, true))?;
        check_sealed(&r.ciphertext)
            .map_err(|_| backend("Vault returned a ciphertext without a key version"))?;
        Ok(r.ciphertext)
    }

    /// Creates a derived AES-256-GCM key (see the module docs). Transit
    /// answers success for an existing key, so the key is read first.
    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        if !super::builtin::valid_key_name(key_id) || key_id.contains("..") {
            return Err(backend(format!(
                "{key_id:?} is not a valid key name (1-128 of letters, digits, - _ . /)"
            )));
        }
        match self.key_info(key_id).await {
            Ok(_) => {
                return Err(KmsError::Exists {
                    key_id: key_id.to_owned(),
                });
            }
            Err(KmsError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let mount = &self.cfg.mount;
        vault_call!(self, c => async {
            let mut b = CreateKeyRequest::builder();
            b.derived(true);
            vaultrs::transit::key::create(c, mount, key_id, Some(&mut b)).await
        })
        .map_err(|e| map_err(e, key_id, false))?;
        self.derived.lock().insert(key_id.to_owned(), true);
        Ok(())
    }

    async fn rotate_key(&self, key_id: &str) -> Result<u32, KmsError> {
        check_name(key_id)?;
        // read first: a clear NotFound, whatever Transit answers to a
        // rotation of a missing key
        self.key_info(key_id).await?;
        let mount = &self.cfg.mount;
        vault_call!(self, c => vaultrs::transit::key::rotate(c, mount, key_id))
            .map_err(|e| map_err(e, key_id, false))?;
        Ok(self.key_info(key_id).await?.0)
    }

    async fn status(&self) -> Result<KmsStatus, KmsError> {
        let mount = &self.cfg.mount;
        let names = match vault_call!(self, c => vaultrs::transit::key::list(c, mount)) {
            Ok(r) => r.keys,
            // LIST answers 404 when there are no keys
            Err(ClientError::APIError { code: 404, .. }) => Vec::new(),
            Err(e) => return Err(map_err(e, "", false)),
        };
        let mut keys = Vec::with_capacity(names.len());
        for name in names {
            match self.key_info(&name).await {
                Ok((latest_version, _)) => keys.push(KeyStatus {
                    name,
                    latest_version,
                }),
                // deleted meanwhile, or a name Cairn would not use
                Err(KmsError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(KmsStatus {
            backend: "vault".into(),
            location: format!("{} (mount {})", self.cfg.endpoint, self.cfg.mount),
            default_key: self.cfg.default_key.clone(),
            keys,
        })
    }
}
