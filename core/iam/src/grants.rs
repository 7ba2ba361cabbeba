//! What a caller may do: the credentials an access key stands for and
//! the policies that apply to them (a user's own and its groups', a
//! role's, those a web identity maps to, a service account's limit).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::builtin::builtin_arc;
use crate::doc::IdentityDoc;
use crate::entities::{KeyKind, Secs, Status};
use crate::model::IamState;
use crate::policy::Policy;
use crate::sts::{SESSION_KEY_PREFIX, SessionClaims, SessionParent};

/// Who a set of credentials acts as.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    Root,
    User {
        name: String,
    },
    /// A service account key of `parent` (empty: root).
    ServiceAccount {
        parent: String,
        key: String,
    },
    /// Temporary credentials from STS, as their token describes them.
    Session(Box<SessionClaims>),
}

/// What a caller may do, before any bucket policy.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// The root user's rights (everything), narrowed by `boundaries`.
    pub root: bool,
    /// Identity policies: together they must allow (unless a bucket
    /// policy does).
    pub identity: Vec<Arc<Policy>>,
    /// Each of these must allow as well (service account and session
    /// policies).
    pub boundaries: Vec<Arc<Policy>>,
}

impl IamState {
    /// The secret and identity of access key `id` at `now`, if it may be
    /// used: the key active and not expired, its user present and
    /// active.
    pub fn credential(&self, id: &str, now: Secs) -> Option<(&str, Identity)> {
        if id.starts_with(SESSION_KEY_PREFIX) {
            return None;
        }
        let k = self.keys.get(id).filter(|k| k.status == Status::Active)?;
        if !k.owner.is_empty() && self.users.get(&k.owner)?.status != Status::Active {
            return None;
        }
        let identity = match &k.kind {
            KeyKind::User => Identity::User {
                name: k.owner.clone(),
            },
            KeyKind::Service { expires, .. } => {
                if expires.is_some_and(|e| now >= e) {
                    return None;
                }
                Identity::ServiceAccount {
                    parent: k.owner.clone(),
                    key: k.id.clone(),
                }
            }
        };
        Some((k.secret.as_str(), identity))
    }

    fn named(&self, name: &str) -> Option<Arc<Policy>> {
        builtin_arc(name)
            .cloned()
            .or_else(|| self.policies.get(name).map(|p| p.document.policy().clone()))
    }

    fn collect(
        &self,
        attached: &BTreeSet<String>,
        inline: &BTreeMap<String, IdentityDoc>,
        out: &mut Vec<Arc<Policy>>,
    ) {
        out.extend(attached.iter().filter_map(|n| self.named(n)));
        out.extend(inline.values().map(|d| d.policy().clone()));
    }

    /// The policies of user `name` and of its groups (empty for a user
    /// that is gone or disabled).
    pub fn user_policies(&self, name: &str) -> Vec<Arc<Policy>> {
        let mut out = Vec::new();
        let Some(u) = self.users.get(name).filter(|u| u.status == Status::Active) else {
            return out;
        };
        self.collect(&u.attached, &u.inline, &mut out);
        for g in u.groups.iter().filter_map(|g| self.groups.get(g)) {
            self.collect(&g.attached, &g.inline, &mut out);
        }
        out
    }

    /// The policies of role `name`.
    pub fn role_policies(&self, name: &str) -> Vec<Arc<Policy>> {
        let mut out = Vec::new();
        if let Some(r) = self.roles.get(name) {
            self.collect(&r.attached, &r.inline, &mut out);
        }
        out
    }

    /// The policies named (managed or built-in) plus those of the groups
    /// named, for web-identity sessions; unknown names give nothing.
    pub fn mapped_policies(&self, policies: &[String], groups: &[String]) -> Vec<Arc<Policy>> {
        let mut out: Vec<Arc<Policy>> = policies.iter().filter_map(|n| self.named(n)).collect();
        for g in groups.iter().filter_map(|g| self.groups.get(g)) {
            self.collect(&g.attached, &g.inline, &mut out);
        }
        out
    }

    /// What `identity` may do, before any bucket policy.
    pub fn grants(&self, identity: &Identity) -> Grants {
        match identity {
            Identity::Root => Grants {
                root: true,
                ..Grants::default()
            },
            Identity::User { name } => Grants {
                identity: self.user_policies(name),
                ..Grants::default()
            },
            Identity::ServiceAccount { parent, key } => {
                let boundaries = match self.keys.get(key).map(|k| &k.kind) {
                    Some(KeyKind::Service {
                        policy: Some(p), ..
                    }) => vec![p.policy().clone()],
                    _ => Vec::new(),
                };
                Grants {
                    root: parent.is_empty(),
                    identity: if parent.is_empty() {
                        Vec::new()
                    } else {
                        self.user_policies(parent)
                    },
                    boundaries,
                }
            }
            Identity::Session(s) => {
                // a session policy that no longer parses narrows to nothing
                let boundaries = match &s.policy {
                    Some(p) => vec![
                        IdentityDoc::parse(p)
                            .map(|d| d.policy().clone())
                            .unwrap_or_else(|_| Arc::new(Policy::deny_all())),
                    ],
                    None => Vec::new(),
                };
                let (root, identity) = match &s.parent {
                    SessionParent::User { user } if user.is_empty() => (true, Vec::new()),
                    SessionParent::User { user } => (false, self.user_policies(user)),
                    SessionParent::Role { role, .. } => (false, self.role_policies(role)),
                    SessionParent::WebIdentity {
                        policies, groups, ..
                    } => (false, self.mapped_policies(policies, groups)),
                };
                Grants {
                    root,
                    identity,
                    boundaries,
                }
            }
        }
    }
}
