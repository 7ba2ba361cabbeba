//! The stored IAM entities: users, groups, managed policies, roles and
//! access keys (a user's own keys and service accounts).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::doc::{IdentityDoc, TrustDoc};

/// Seconds since the epoch.
pub type Secs = i64;
/// Enabled or disabled (users and keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Active,
    Inactive,
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// A unique id (`aws:userid`), never reused.
    pub id: String,
    pub created: Secs,
    pub status: Status,
    /// Managed or built-in policies attached, by name.
    pub attached: BTreeSet<String>,
    /// Inline policies, by name.
    pub inline: BTreeMap<String, IdentityDoc>,
    pub groups: BTreeSet<String>,
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub id: String,
    pub created: Secs,
    pub attached: BTreeSet<String>,
    pub inline: BTreeMap<String, IdentityDoc>,
    pub members: BTreeSet<String>,
}

/// A customer-managed policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub id: String,
    pub created: Secs,
    pub updated: Secs,
    pub document: IdentityDoc,
    /// The number of the document's version (IAM's `v<N>`): 1 when
    /// created, one more with each update (only the default version is
    /// kept).
    #[serde(default = "first_version")]
    pub version: u32,
}

fn first_version() -> u32 {
    1
}

/// A role, assumed through STS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub id: String,
    pub created: Secs,
    pub trust: TrustDoc,
    pub attached: BTreeSet<String>,
    pub inline: BTreeMap<String, IdentityDoc>,
    /// The longest session AssumeRole grants, in seconds.
    pub max_session: i64,
}

/// What an access key belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyKind {
    /// One of a user's own keys.
    User,
    /// A service account: a key of its parent (a user, or the root user
    /// when `parent` is empty), optionally narrowed by its own policy.
    Service {
        name: Option<String>,
        description: Option<String>,
        policy: Option<IdentityDoc>,
        expires: Option<Secs>,
    },
}

/// An access key and its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    /// The user the key acts as (empty: the root user).
    pub owner: String,
    pub created: Secs,
    pub status: Status,
    pub kind: KeyKind,
}

/// One stored entity, named for the storage layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entity {
    User(String),
    Group(String),
    Policy(String),
    Role(String),
    Key(String),
}
