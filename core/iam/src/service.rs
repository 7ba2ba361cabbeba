//! The IAM state of a running server: loaded from the store's
//! configuration records ([`ConfigStore`]), changed through [`Iam::change`]
//! (which writes every touched entity back before the change is seen),
//! and asked by every front who an access key is ([`Iam::caller`]) and
//! whether a request is allowed ([`Iam::authorize`]).
//!
//! Reads take a snapshot (an `Arc` of the whole state), so a request
//! never waits for a change being written; a change takes effect for the
//! next request once it is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use cairn_api::{ConfigDir, ConfigStore, ObjectError};

use crate::acl::{Acl, AclCheck as _};
use crate::authz::Verdict;
use crate::context::{Context, Principal, PrincipalType, Request};
use crate::entities::{Entity, Secs};
use crate::grants::{Grants, Identity};
use crate::model::{IamError, IamState};
use crate::policy::Policy;
use crate::sts::{SessionClaims, SessionParent, SessionSigner, TokenError, is_session_key};

/// The account id of a deployment that names none.
pub const DEFAULT_ACCOUNT: &str = "000000000000";

/// How the IAM service is set up.
#[derive(Clone)]
pub struct IamConfig {
    /// The root credential (from the environment).
    pub root_access_key: String,
    pub root_secret_key: String,
    /// The deployment's account id (12 digits), used in ARNs.
    pub account: String,
    /// The deployment's id: sessions of one deployment are not valid in
    /// another.
    pub deployment_id: String,
    /// Where users, keys and policies are kept.
    pub store: Arc<dyn ConfigStore>,
}

/// Why the IAM service could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum IamServiceError {
    /// The change itself was refused (answered with the IAM error code).
    #[error(transparent)]
    Refused(#[from] IamError),
    /// The change could not be stored (nothing changed for callers).
    #[error("the IAM change could not be stored: {0}")]
    Storage(#[from] ObjectError),
    #[error("an IAM record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Why an access key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// No such key, or it is disabled, expired or its user is.
    #[error("the access key is not known")]
    UnknownKey,
    /// A temporary key's token is missing, forged or for another key.
    #[error("the session token is not valid: {0}")]
    InvalidToken(TokenError),
    /// A temporary key's session ended.
    #[error("the session expired")]
    Expired,
}

/// The answer of [`Iam::caller`]: who signed a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub access_key: String,
    pub identity: Identity,
}

/// One authorization question from a front.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The signed caller (`None`: anonymous).
    pub caller: Option<&'a Caller>,
    pub action: crate::Action,
    /// `*`, `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// Request condition keys (`aws:SourceIp`, `s3:prefix`...); the
    /// caller's own (`aws:username`, `aws:PrincipalType`, `jwt:*`) are
    /// added here.
    pub context: &'a Context,
    /// The bucket's policy, if it has one.
    pub bucket_policy: Option<&'a Policy>,
}

/// The IAM service of a server.
pub struct Iam {
    cfg: IamConfig,
    signer: SessionSigner,
    state: RwLock<Arc<IamState>>,
    /// One change at a time (each is read, changed, written).
    writer: tokio::sync::Mutex<()>,
    /// When each key was last used, on this server (not stored).
    last_used: Mutex<HashMap<String, Secs>>,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam")
            .field("account", &self.cfg.account)
            .finish_non_exhaustive()
    }
}

fn dir_of(e: &Entity) -> (ConfigDir, &str) {
    match e {
        Entity::User(n) => (ConfigDir::IamUsers, n),
        Entity::Group(n) => (ConfigDir::IamGroups, n),
        Entity::Policy(n) => (ConfigDir::IamPolicies, n),
        Entity::Role(n) => (ConfigDir::IamRoles, n),
        Entity::Key(n) => (ConfigDir::IamKeys, n),
    }
}

/// The record of entity `e` in `state` (`None`: it is gone).
fn record(state: &IamState, e: &Entity) -> Result<Option<Vec<u8>>, serde_json::Error> {
    Ok(match e {
        Entity::User(n) => state.users.get(n).map(serde_json::to_vec).transpose()?,
        Entity::Group(n) => state.groups.get(n).map(serde_json::to_vec).transpose()?,
        Entity::Policy(n) => state.policies.get(n).map(serde_json::to_vec).transpose()?,
        Entity::Role(n) => state.roles.get(n).map(serde_json::to_vec).transpose()?,
        Entity::Key(n) => state.keys.get(n).map(serde_json::to_vec).transpose()?,
    })
}

/// Reads every record from `store` into a new state; a record that does
/// not decode is left out (and logged), never fatal.
async fn read_state(store: &dyn ConfigStore) -> Result<IamState, ObjectError> {
    let mut st = IamState::new();
    for dir in ConfigDir::ALL {
        for (name, body) in store.config_list(dir).await? {
            let loaded = match dir {
                ConfigDir::IamUsers => serde_json::from_slice(&body).map(|u| st.load_user(u)),
                ConfigDir::IamGroups => serde_json::from_slice(&body).map(|g| st.load_group(g)),
                ConfigDir::IamPolicies => serde_json::from_slice(&body).map(|p| st.load_policy(p)),
                ConfigDir::IamRoles => serde_json::from_slice(&body).map(|r| st.load_role(r)),
                ConfigDir::IamKeys => serde_json::from_slice(&body).map(|k| st.load_key(k)),
                ConfigDir::ReplicationTargets | ConfigDir::ReplicationResync => Ok(()),
            };
            if let Err(e) = loaded {
                tracing::error!(dir = dir.as_str(), %name, error = %e, "IAM record does not decode; left out");
            }
        }
    }
    Ok(st)
}

impl Iam {
    /// Loads the IAM state kept in `cfg.store`.
    pub async fn load(cfg: IamConfig) -> Result<Iam, ObjectError> {
        let st = read_state(&*cfg.store).await?;
        let iam = Iam::unloaded(cfg);
        *iam.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(st);
        Ok(iam)
    }

    /// The service with nothing read yet (only the root user known):
    /// for a shared store that cannot be read now, read once it signals
    /// a change ([`Iam::follow_store`]).
    pub fn unloaded(cfg: IamConfig) -> Iam {
        Iam {
            signer: SessionSigner::from_root_secret(&cfg.root_secret_key, &cfg.deployment_id),
            cfg,
            state: RwLock::new(Arc::new(IamState::new())),
            writer: tokio::sync::Mutex::new(()),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the state again from the store (another node changed it).
    pub async fn reload(&self) -> Result<(), ObjectError> {
        let _w = self.writer.lock().await;
        let st = read_state(&*self.cfg.store).await?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(st);
        Ok(())
    }

    /// Keeps the state the same as the store's when other servers change
    /// it too (`ConfigStore::changes`: a federation's etcd): every change
    /// signalled reads the records again. A read that fails keeps the
    /// state as it was (the identities loaded go on working) until the
    /// next signal. Ends when the service is dropped.
    pub fn follow_store(self: &Arc<Self>) {
        let Some(mut changes) = self.cfg.store.changes() else {
            return;
        };
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(iam) = weak.upgrade() else {
                    return;
                };
                match iam.reload().await {
                    Ok(()) => tracing::debug!("IAM state read again after a change"),
                    Err(e) => {
                        tracing::error!(error = %e, "IAM state not read again; the loaded one stays");
                    }
                }
            }
        });
    }

    /// The current state.
    pub fn state(&self) -> Arc<IamState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The deployment's account id.
    pub fn account(&self) -> &str {
        &self.cfg.account
    }

    /// The root user's access key id.
    pub fn root_access_key(&self) -> &str {
        &self.cfg.root_access_key
    }

    /// Signs and checks STS sessions.
    pub fn signer(&self) -> &SessionSigner {
        &self.signer
    }

    /// Applies `f` to the state and stores what it touched; callers see
    /// the change only once it is stored. A refused change stores nothing.
    pub async fn change<T>(
        &self,
        f: impl FnOnce(&mut IamState) -> Result<T, IamError>,
    ) -> Result<T, IamServiceError> {
        let _w = self.writer.lock().await;
        let mut next = IamState::clone(&self.state());
        next.take_changed();
        let out = f(&mut next)?;
        for e in next.take_changed() {
            let body = record(&next, &e)?;
            let (dir, name) = dir_of(&e);
            self.cfg.store.config_put(dir, name, body).await?;
        }
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(out)
    }

    /// The secret of `access_key` for checking a signature: the root
    /// user's, an IAM key's or service account's, or a temporary key's
    /// (whose token [`Iam::caller`] checks).
    pub fn secret(&self, access_key: &str, now: Secs) -> Option<String> {
        if access_key == self.cfg.root_access_key {
            return Some(self.cfg.root_secret_key.clone());
        }
        if is_session_key(access_key) {
            return Some(self.signer.secret_for(access_key));
        }
        let st = self.state();
        st.credential(access_key, now).map(|(s, _)| s.to_owned())
    }

    /// Who signed with `access_key` (whose signature was verified), given
    /// the request's session token, at `now`.
    pub fn caller(
        &self,
        access_key: &str,
        token: Option<&str>,
        now: Secs,
    ) -> Result<Caller, CallerError> {
        let identity = if access_key == self.cfg.root_access_key {
            Identity::Root
        } else if is_session_key(access_key) {
            let token = token.ok_or(CallerError::InvalidToken(TokenError::Missing))?;
            let claims = self
                .signer
                .verify(token, access_key, now)
                .map_err(|e| match e {
                    TokenError::Expired => CallerError::Expired,
                    e => CallerError::InvalidToken(e),
                })?;
            Identity::Session(Box::new(claims))
        } else {
            let st = self.state();
            st.credential(access_key, now)
                .map(|(_, id)| id)
                .ok_or(CallerError::UnknownKey)?
        };
        if let Ok(mut g) = self.last_used.lock() {
            g.insert(access_key.to_owned(), now);
        }
        Ok(Caller {
            access_key: access_key.to_owned(),
            identity,
        })
    }

    /// When `access_key` was last used on this server.
    pub fn last_used(&self, access_key: &str) -> Option<Secs> {
        self.last_used.lock().ok()?.get(access_key).copied()
    }

    /// What `caller` may do before any bucket policy.
    pub fn grants(&self, caller: &Caller) -> Grants {
        self.state().grants(&caller.identity)
    }

    /// How a bucket policy's `Principal` and the `aws:` keys see `caller`.
    pub fn principal(&self, caller: Option<&Caller>) -> Principal {
        let Some(c) = caller else {
            return Principal::anonymous();
        };
        let acct = &self.cfg.account;
        let (kind, arn, federated) = match &c.identity {
            Identity::Root => (
                PrincipalType::Account,
                format!("arn:aws:iam::{acct}:root"),
                None,
            ),
            Identity::User { name } => (
                PrincipalType::User,
                format!("arn:aws:iam::{acct}:user/{name}"),
                None,
            ),
            Identity::ServiceAccount { parent, .. } if parent.is_empty() => (
                PrincipalType::Account,
                format!("arn:aws:iam::{acct}:root"),
                None,
            ),
            Identity::ServiceAccount { parent, .. } => (
                PrincipalType::User,
                format!("arn:aws:iam::{acct}:user/{parent}"),
                None,
            ),
            Identity::Session(s) => match &s.parent {
                SessionParent::User { user } => (
                    PrincipalType::AssumedRole,
                    format!("arn:aws:sts::{acct}:assumed-role/{user}/{}", s.access_key),
                    None,
                ),
                SessionParent::Role { role, session_name } => (
                    PrincipalType::AssumedRole,
                    format!("arn:aws:sts::{acct}:assumed-role/{role}/{session_name}"),
                    None,
                ),
                SessionParent::WebIdentity {
                    issuer, subject, ..
                } => (
                    PrincipalType::FederatedUser,
                    format!("arn:aws:sts::{acct}:assumed-role/web-identity/{subject}"),
                    Some(issuer.clone()),
                ),
            },
        };
        Principal {
            kind,
            arn,
            account: acct.clone(),
            canonical_id: Some(canonical_id(&c.identity, acct)),
            federated,
        }
    }

    /// Adds the caller's own condition keys to `ctx`: `aws:username`,
    /// `aws:userid`, `aws:PrincipalType`, `aws:PrincipalArn` and a web
    /// identity's `jwt:<claim>`s. The context is then marked as holding
    /// them: decisions for this same caller take it as it is.
    pub fn caller_context(
        &self,
        caller: Option<&Caller>,
        principal: &Principal,
        ctx: &mut Context,
    ) {
        ctx.mark_caller_keys();
        ctx.set("aws:PrincipalType", principal.kind.as_str());
        if !principal.arn.is_empty() {
            ctx.set("aws:PrincipalArn", principal.arn.clone());
            ctx.set("aws:PrincipalAccount", principal.account.clone());
        }
        let Some(c) = caller else {
            return;
        };
        let user = match &c.identity {
            Identity::User { name } => Some(name.as_str()),
            Identity::ServiceAccount { parent, .. } if !parent.is_empty() => Some(parent.as_str()),
            Identity::Session(s) => match &s.parent {
                SessionParent::User { user } if !user.is_empty() => Some(user.as_str()),
                _ => None,
            },
            _ => None,
        };
        if let Some(u) = user {
            ctx.set("aws:username", u);
            if let Ok(rec) = self.state().user(u) {
                ctx.set("aws:userid", rec.id.clone());
            }
        } else if matches!(c.identity, Identity::Root) {
            ctx.set("aws:userid", self.cfg.account.clone());
        }
        if let Identity::Session(s) = &c.identity {
            for (k, v) in &s.jwt {
                ctx.set_all(&format!("jwt:{k}"), v.clone());
            }
            if let SessionParent::Role { role, session_name } = &s.parent {
                ctx.set("aws:userid", format!("{role}:{session_name}"));
            }
        }
    }

    /// Whether the question's caller may do its action on its resource.
    pub fn authorize(&self, q: &Question<'_>) -> bool {
        self.decide(q) == Verdict::Allowed
    }

    /// [`Iam::authorize`], telling an explicit Deny from no Allow (an
    /// ACL may grant what no policy allows, never what one denies).
    pub fn decide(&self, q: &Question<'_>) -> Verdict {
        let grants = q.caller.map(|c| self.grants(c)).unwrap_or_default();
        self.decide_with(q, &grants)
    }

    /// [`Iam::decide`] with the caller's grants already in hand (from
    /// [`Iam::grants`]), for a front that looked at them first.
    pub fn decide_with(&self, q: &Question<'_>, grants: &Grants) -> Verdict {
        self.decide_as(q, |req| crate::authz::decide(grants, q.bucket_policy, req))
    }

    /// The ACL step of a question [`Iam::decide_with`] answered
    /// `NotAllowed`: `Allowed` when `acl` grants the caller the action and
    /// the caller's boundaries (service-account or session policy) allow
    /// it too.
    pub fn decide_acl(&self, q: &Question<'_>, grants: &Grants, acl: &Acl) -> Verdict {
        self.decide_as(q, |req| {
            crate::authz::decide_acl(grants, acl.allows(req.principal, q.action), req)
        })
    }

    /// `f` on the request `q` stands for, with the caller's principal and
    /// condition keys; the root user is not subject to policies.
    fn decide_as(&self, q: &Question<'_>, f: impl FnOnce(&Request<'_>) -> Verdict) -> Verdict {
        if let Some(Caller {
            identity: Identity::Root,
            ..
        }) = q.caller
        {
            return Verdict::Allowed;
        }
        let principal = self.principal(q.caller);
        let copied;
        let context = if q.context.has_caller_keys() {
            q.context
        } else {
            let mut ctx = q.context.clone();
            self.caller_context(q.caller, &principal, &mut ctx);
            copied = ctx;
            &copied
        };
        let req = Request {
            action: q.action,
            resource: q.resource,
            principal: &principal,
            context,
        };
        f(&req)
    }
}

/// The canonical user id ACL grants name: stable per identity (a
/// service account or session acts as its parent).
pub fn canonical_id(identity: &Identity, account: &str) -> String {
    use sha2::Digest as _;
    let who = match identity {
        Identity::Root => String::new(),
        Identity::User { name } => name.clone(),
        Identity::ServiceAccount { parent, .. } => parent.clone(),
        Identity::Session(s) => match &s.parent {
            SessionParent::User { user } => user.clone(),
            SessionParent::Role { role, .. } => format!("role/{role}"),
            SessionParent::WebIdentity {
                issuer, subject, ..
            } => format!("web/{issuer}/{subject}"),
        },
    };
    let mut h = sha2::Sha256::new();
    h.update(account.as_bytes());
    h.update(b"\0");
    h.update(who.as_bytes());
    hex_lower(&h.finalize())
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Claims of a session, for callers that need them (GetCallerIdentity).
pub fn session_claims(c: &Caller) -> Option<&SessionClaims> {
    match &c.identity {
        Identity::Session(s) => Some(s),
        _ => None,
    }
}
