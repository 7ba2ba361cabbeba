//! Users, groups, access keys, service accounts, managed policies and
//! roles: the IAM state of a deployment, with the rules AWS IAM applies
//! to changing it. Every change names the entities it touched
//! ([`IamState::take_changed`]) so the layer that stores them writes
//! only those. No I/O here.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use rand::RngCore as _;

use crate::builtin::builtin;
use crate::doc::{IdentityDoc, TrustDoc};
use crate::entities::{AccessKey, Entity, Group, KeyKind, ManagedPolicy, Role, Secs, Status, User};
use crate::sts::new_key_id;

/// At most this many access keys per user (as AWS).
pub const MAX_USER_KEYS: usize = 2;
/// At most this many service accounts per user.
pub const MAX_SERVICE_ACCOUNTS: usize = 1000;

/// Why an IAM change was refused; each maps to the IAM API error code
/// in its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("The {kind} with name {name} cannot be found.")]
    NoSuchEntity { kind: &'static str, name: String },
    #[error("{kind} with name {name} already exists.")]
    EntityAlreadyExists { kind: &'static str, name: String },
    #[error("Cannot delete entity, must {0} first.")]
    DeleteConflict(&'static str),
    #[error("Cannot exceed quota for {0}.")]
    LimitExceeded(&'static str),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    MalformedPolicyDocument(#[from] crate::PolicyError),
}

/// The whole IAM state of a deployment.
#[derive(Debug, Clone, Default)]
pub struct IamState {
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) policies: BTreeMap<String, ManagedPolicy>,
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) keys: BTreeMap<String, AccessKey>,
    changed: BTreeSet<Entity>,
}

/// The name rules of IAM: 1 to `max` characters of letters, digits and
/// `+=,.@_-`.
fn check_name(kind: &str, name: &str, max: usize) -> Result<(), IamError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!(
            "{kind} name {name:?} must be 1 to {max} letters, digits or +=,.@_-"
        )))
    }
}

fn no_such(kind: &'static str, name: &str) -> IamError {
    IamError::NoSuchEntity {
        kind,
        name: name.to_owned(),
    }
}

fn exists(kind: &'static str, name: &str) -> IamError {
    IamError::EntityAlreadyExists {
        kind,
        name: name.to_owned(),
    }
}

fn new_secret() -> String {
    let mut b = [0u8; 30];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl IamState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entities changed since the last call, for the storage layer.
    pub fn take_changed(&mut self) -> BTreeSet<Entity> {
        std::mem::take(&mut self.changed)
    }

    fn mark(&mut self, e: Entity) {
        self.changed.insert(e);
    }

    // ---- loading (from storage, unchecked against each other) ----

    pub fn load_user(&mut self, u: User) {
        self.users.insert(u.name.clone(), u);
    }
    pub fn load_group(&mut self, g: Group) {
        self.groups.insert(g.name.clone(), g);
    }
    pub fn load_policy(&mut self, p: ManagedPolicy) {
        self.policies.insert(p.name.clone(), p);
    }
    pub fn load_role(&mut self, r: Role) {
        self.roles.insert(r.name.clone(), r);
    }
    pub fn load_key(&mut self, k: AccessKey) {
        self.keys.insert(k.id.clone(), k);
    }

    // ---- reading ----

    pub fn user(&self, name: &str) -> Result<&User, IamError> {
        self.users.get(name).ok_or_else(|| no_such("user", name))
    }
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }
    pub fn group(&self, name: &str) -> Result<&Group, IamError> {
        self.groups.get(name).ok_or_else(|| no_such("group", name))
    }
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }
    pub fn policy(&self, name: &str) -> Result<&ManagedPolicy, IamError> {
        self.policies
            .get(name)
            .ok_or_else(|| no_such("policy", name))
    }
    pub fn policies(&self) -> impl Iterator<Item = &ManagedPolicy> {
        self.policies.values()
    }
    pub fn role(&self, name: &str) -> Result<&Role, IamError> {
        self.roles.get(name).ok_or_else(|| no_such("role", name))
    }
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }
    pub fn key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.get(id)
    }
    /// A user's own keys (not its service accounts).
    pub fn user_keys(&self, user: &str) -> impl Iterator<Item = &AccessKey> {
        self.keys
            .values()
            .filter(move |k| k.owner == user && k.kind == KeyKind::User)
    }
    /// The service accounts of `parent` (empty: the root user's).
    pub fn service_accounts(&self, parent: &str) -> impl Iterator<Item = &AccessKey> {
        self.keys
            .values()
            .filter(move |k| k.owner == parent && matches!(k.kind, KeyKind::Service { .. }))
    }

    // ---- users ----

    pub fn create_user(&mut self, name: &str, now: Secs) -> Result<&User, IamError> {
        check_name("user", name, 64)?;
        if self.users.contains_key(name) {
            return Err(exists("User", name));
        }
        let u = User {
            name: name.to_owned(),
            id: new_key_id("AIDA"),
            created: now,
            status: Status::Active,
            attached: BTreeSet::new(),
            inline: BTreeMap::new(),
            groups: BTreeSet::new(),
        };
        self.mark(Entity::User(name.to_owned()));
        Ok(self.users.entry(name.to_owned()).or_insert(u))
    }

    /// Deletes a user that has nothing left (as AWS: keys, policies and
    /// group memberships must go first).
    pub fn delete_user(&mut self, name: &str) -> Result<(), IamError> {
        let u = self.user(name)?;
        if self.keys.values().any(|k| k.owner == name) {
            return Err(IamError::DeleteConflict(
                "delete access keys and service accounts",
            ));
        }
        if !u.attached.is_empty() || !u.inline.is_empty() {
            return Err(IamError::DeleteConflict("remove policies"));
        }
        if !u.groups.is_empty() {
            return Err(IamError::DeleteConflict("remove the user from its groups"));
        }
        self.users.remove(name);
        self.mark(Entity::User(name.to_owned()));
        Ok(())
    }

    /// Enables or disables a user: a disabled user's keys, service
    /// accounts and sessions are refused at once.
    pub fn set_user_status(&mut self, name: &str, status: Status) -> Result<(), IamError> {
        let u = self
            .users
            .get_mut(name)
            .ok_or_else(|| no_such("user", name))?;
        u.status = status;
        self.mark(Entity::User(name.to_owned()));
        Ok(())
    }

    // ---- access keys ----

    pub fn create_access_key(&mut self, user: &str, now: Secs) -> Result<&AccessKey, IamError> {
        self.user(user)?;
        if self.user_keys(user).count() >= MAX_USER_KEYS {
            return Err(IamError::LimitExceeded("AccessKeysPerUser: 2"));
        }
        self.insert_key(user, KeyKind::User, now)
    }

    fn insert_key(
        &mut self,
        owner: &str,
        kind: KeyKind,
        now: Secs,
    ) -> Result<&AccessKey, IamError> {
        let mut id = new_key_id("AKIA");
        while self.keys.contains_key(&id) {
            id = new_key_id("AKIA");
        }
        let k = AccessKey {
            id: id.clone(),
            secret: new_secret(),
            owner: owner.to_owned(),
            created: now,
            status: Status::Active,
            kind,
        };
        self.mark(Entity::Key(id.clone()));
        Ok(self.keys.entry(id).or_insert(k))
    }

    fn owned_key(&mut self, owner: &str, id: &str) -> Result<&mut AccessKey, IamError> {
        self.keys
            .get_mut(id)
            .filter(|k| k.owner == owner)
            .ok_or_else(|| no_such("access key", id))
    }

    pub fn set_key_status(
        &mut self,
        owner: &str,
        id: &str,
        status: Status,
    ) -> Result<(), IamError> {
        self.owned_key(owner, id)?.status = status;
        self.mark(Entity::Key(id.to_owned()));
        Ok(())
    }

    pub fn delete_access_key(&mut self, owner: &str, id: &str) -> Result<(), IamError> {
        self.owned_key(owner, id)?;
        self.keys.remove(id);
        self.mark(Entity::Key(id.to_owned()));
        Ok(())
    }

    /// A new service account of `parent` (empty: the root user).
    pub fn create_service_account(
        &mut self,
        parent: &str,
        spec: ServiceAccountSpec,
        now: Secs,
    ) -> Result<&AccessKey, IamError> {
        if !parent.is_empty() {
            self.user(parent)?;
        }
        if self.service_accounts(parent).count() >= MAX_SERVICE_ACCOUNTS {
            return Err(IamError::LimitExceeded("ServiceAccountsPerUser: 1000"));
        }
        if spec.expires.is_some_and(|e| e <= now) {
            return Err(IamError::InvalidInput("the expiry is in the past".into()));
        }
        let policy = spec.policy.as_deref().map(IdentityDoc::parse).transpose()?;
        self.insert_key(
            parent,
            KeyKind::Service {
                name: spec.name,
                description: spec.description,
                policy,
                expires: spec.expires,
            },
            now,
        )
    }

    // ---- groups ----

    pub fn create_group(&mut self, name: &str, now: Secs) -> Result<&Group, IamError> {
        check_name("group", name, 128)?;
        if self.groups.contains_key(name) {
            return Err(exists("Group", name));
        }
        let g = Group {
            name: name.to_owned(),
            id: new_key_id("AGPA"),
            created: now,
            attached: BTreeSet::new(),
            inline: BTreeMap::new(),
            members: BTreeSet::new(),
        };
        self.mark(Entity::Group(name.to_owned()));
        Ok(self.groups.entry(name.to_owned()).or_insert(g))
    }

    pub fn delete_group(&mut self, name: &str) -> Result<(), IamError> {
        let g = self.group(name)?;
        if !g.members.is_empty() {
            return Err(IamError::DeleteConflict("remove all users from the group"));
        }
        if !g.attached.is_empty() || !g.inline.is_empty() {
            return Err(IamError::DeleteConflict("remove policies"));
        }
        self.groups.remove(name);
        self.mark(Entity::Group(name.to_owned()));
        Ok(())
    }

    pub fn add_user_to_group(&mut self, user: &str, group: &str) -> Result<(), IamError> {
        self.user(user)?;
        let g = self
            .groups
            .get_mut(group)
            .ok_or_else(|| no_such("group", group))?;
        g.members.insert(user.to_owned());
        if let Some(u) = self.users.get_mut(user) {
            u.groups.insert(group.to_owned());
        }
        self.mark(Entity::Group(group.to_owned()));
        self.mark(Entity::User(user.to_owned()));
        Ok(())
    }

    pub fn remove_user_from_group(&mut self, user: &str, group: &str) -> Result<(), IamError> {
        self.user(user)?;
        let g = self
            .groups
            .get_mut(group)
            .ok_or_else(|| no_such("group", group))?;
        if !g.members.remove(user) {
            return Err(no_such("user in group", user));
        }
        if let Some(u) = self.users.get_mut(user) {
            u.groups.remove(group);
        }
        self.mark(Entity::Group(group.to_owned()));
        self.mark(Entity::User(user.to_owned()));
        Ok(())
    }

    // ---- managed policies ----

    pub fn create_policy(
        &mut self,
        name: &str,
        doc: &str,
        now: Secs,
    ) -> Result<&ManagedPolicy, IamError> {
        check_name("policy", name, 128)?;
        if self.policies.contains_key(name) || builtin(name).is_some() {
            return Err(exists("Policy", name));
        }
        let p = ManagedPolicy {
            name: name.to_owned(),
            id: new_key_id("ANPA"),
            created: now,
            updated: now,
            document: IdentityDoc::parse(doc)?,
            version: 1,
        };
        self.mark(Entity::Policy(name.to_owned()));
        Ok(self.policies.entry(name.to_owned()).or_insert(p))
    }

    /// Replaces a managed policy's document (it takes effect at once
    /// for everyone it is attached to).
    pub fn update_policy(&mut self, name: &str, doc: &str, now: Secs) -> Result<(), IamError> {
        let document = IdentityDoc::parse(doc)?;
        let p = self
            .policies
            .get_mut(name)
            .ok_or_else(|| no_such("policy", name))?;
        p.document = document;
        p.updated = now;
        p.version = p.version.saturating_add(1);
        self.mark(Entity::Policy(name.to_owned()));
        Ok(())
    }

    fn attached_anywhere(&self, name: &str) -> bool {
        self.users.values().any(|u| u.attached.contains(name))
            || self.groups.values().any(|g| g.attached.contains(name))
            || self.roles.values().any(|r| r.attached.contains(name))
    }

    pub fn delete_policy(&mut self, name: &str) -> Result<(), IamError> {
        self.policy(name)?;
        if self.attached_anywhere(name) {
            return Err(IamError::DeleteConflict(
                "detach the policy from every entity",
            ));
        }
        self.policies.remove(name);
        self.mark(Entity::Policy(name.to_owned()));
        Ok(())
    }

    fn check_attachable(&self, policy: &str) -> Result<(), IamError> {
        if builtin(policy).is_some() || self.policies.contains_key(policy) {
            Ok(())
        } else {
            Err(no_such("policy", policy))
        }
    }

    /// Attaches or detaches managed policy `policy` on `target`.
    pub fn set_attached(
        &mut self,
        target: &Target,
        policy: &str,
        attach: bool,
    ) -> Result<(), IamError> {
        if attach {
            self.check_attachable(policy)?;
        }
        let (set, _, entity) = self.policies_mut(target)?;
        let changed = if attach {
            set.insert(policy.to_owned());
            true
        } else {
            set.remove(policy)
        };
        if !changed {
            return Err(no_such("attached policy", policy));
        }
        self.mark(entity);
        Ok(())
    }

    /// The policies of `target`: attached (by name) and inline, and the
    /// entity to store after changing them.
    fn policies_mut(&mut self, target: &Target) -> Result<TargetPolicies<'_>, IamError> {
        match target {
            Target::User(n) => self
                .users
                .get_mut(n)
                .map(|u| (&mut u.attached, &mut u.inline, Entity::User(n.clone())))
                .ok_or_else(|| no_such("user", n)),
            Target::Group(n) => self
                .groups
                .get_mut(n)
                .map(|g| (&mut g.attached, &mut g.inline, Entity::Group(n.clone())))
                .ok_or_else(|| no_such("group", n)),
            Target::Role(n) => self
                .roles
                .get_mut(n)
                .map(|r| (&mut r.attached, &mut r.inline, Entity::Role(n.clone())))
                .ok_or_else(|| no_such("role", n)),
        }
    }

    /// Sets (or with `None` deletes) inline policy `name` of `target`.
    pub fn set_inline(
        &mut self,
        target: &Target,
        name: &str,
        doc: Option<&str>,
    ) -> Result<(), IamError> {
        check_name("policy", name, 128)?;
        let parsed = doc.map(IdentityDoc::parse).transpose()?;
        let (_, map, entity) = self.policies_mut(target)?;
        match parsed {
            Some(d) => {
                map.insert(name.to_owned(), d);
            }
            None => {
                map.remove(name).ok_or_else(|| no_such("policy", name))?;
            }
        }
        self.mark(entity);
        Ok(())
    }

    // ---- roles ----

    pub fn create_role(
        &mut self,
        name: &str,
        trust: &str,
        max_session: Option<i64>,
        now: Secs,
    ) -> Result<&Role, IamError> {
        check_name("role", name, 64)?;
        if self.roles.contains_key(name) {
            return Err(exists("Role", name));
        }
        let max_session = max_session.unwrap_or(3600);
        if !(3600..=crate::sts::MAX_DURATION_SECS).contains(&max_session) {
            return Err(IamError::InvalidInput(
                "MaxSessionDuration must be between 3600 and 43200 seconds".into(),
            ));
        }
        let r = Role {
            name: name.to_owned(),
            id: new_key_id("AROA"),
            created: now,
            trust: TrustDoc::parse(trust)?,
            attached: BTreeSet::new(),
            inline: BTreeMap::new(),
            max_session,
        };
        self.mark(Entity::Role(name.to_owned()));
        Ok(self.roles.entry(name.to_owned()).or_insert(r))
    }

    pub fn set_trust(&mut self, role: &str, trust: &str) -> Result<(), IamError> {
        let doc = TrustDoc::parse(trust)?;
        let r = self
            .roles
            .get_mut(role)
            .ok_or_else(|| no_such("role", role))?;
        r.trust = doc;
        self.mark(Entity::Role(role.to_owned()));
        Ok(())
    }

    pub fn delete_role(&mut self, name: &str) -> Result<(), IamError> {
        let r = self.role(name)?;
        if !r.attached.is_empty() || !r.inline.is_empty() {
            return Err(IamError::DeleteConflict("remove policies"));
        }
        self.roles.remove(name);
        self.mark(Entity::Role(name.to_owned()));
        Ok(())
    }
}

/// A target's attached policy names, inline policies, and the entity
/// that holds them.
type TargetPolicies<'a> = (
    &'a mut BTreeSet<String>,
    &'a mut BTreeMap<String, IdentityDoc>,
    Entity,
);

/// What `set_attached`/`set_inline` change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(String),
    Group(String),
    Role(String),
}

/// A new service account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    /// A policy narrowing the parent's rights.
    pub policy: Option<String>,
    pub expires: Option<Secs>,
}
