//! Bucket event notifications (issue 22): the events a store raises, a
//! bucket's notification rules (AWS's `NotificationConfiguration`: events,
//! prefix/suffix filters, a destination ARN), their validation with AWS's
//! errors, and the outbox records a store keeps on its drives until every
//! target has them (the `Outbox` trait, drained by cairn-events).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{ObjectError, ObjectResult};

/// An event a store raises, named as AWS names it (`s3:ObjectCreated:Put`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventName {
    #[serde(rename = "s3:ObjectCreated:Put")]
    Put,
    #[serde(rename = "s3:ObjectCreated:Post")]
    Post,
    #[serde(rename = "s3:ObjectCreated:Copy")]
    Copy,
    #[serde(rename = "s3:ObjectCreated:CompleteMultipartUpload")]
    CompleteMultipartUpload,
    #[serde(rename = "s3:ObjectRemoved:Delete")]
    Delete,
    #[serde(rename = "s3:ObjectRemoved:DeleteMarkerCreated")]
    DeleteMarkerCreated,
    #[serde(rename = "s3:ObjectTagging:Put")]
    TaggingPut,
    #[serde(rename = "s3:ObjectTagging:Delete")]
    TaggingDelete,
    #[serde(rename = "s3:ObjectAcl:Put")]
    AclPut,
    /// A version's retention changed (MinIO's name: AWS raises no event).
    #[serde(rename = "s3:ObjectCreated:PutRetention")]
    RetentionPut,
    /// A version's legal hold changed (MinIO's name: AWS raises no event).
    #[serde(rename = "s3:ObjectCreated:PutLegalHold")]
    LegalHoldPut,
    /// A lifecycle rule removed a version (or an unversioned object).
    #[serde(rename = "s3:LifecycleExpiration:Delete")]
    LifecycleDelete,
    /// A lifecycle rule expired the current version of a versioned key.
    #[serde(rename = "s3:LifecycleExpiration:DeleteMarkerCreated")]
    LifecycleDeleteMarkerCreated,
}

impl EventName {
    /// AWS's name, with the `s3:` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "s3:ObjectCreated:Put",
            Self::Post => "s3:ObjectCreated:Post",
            Self::Copy => "s3:ObjectCreated:Copy",
            Self::CompleteMultipartUpload => "s3:ObjectCreated:CompleteMultipartUpload",
            Self::Delete => "s3:ObjectRemoved:Delete",
            Self::DeleteMarkerCreated => "s3:ObjectRemoved:DeleteMarkerCreated",
            Self::TaggingPut => "s3:ObjectTagging:Put",
            Self::TaggingDelete => "s3:ObjectTagging:Delete",
            Self::AclPut => "s3:ObjectAcl:Put",
            Self::RetentionPut => "s3:ObjectCreated:PutRetention",
            Self::LegalHoldPut => "s3:ObjectCreated:PutLegalHold",
            Self::LifecycleDelete => "s3:LifecycleExpiration:Delete",
            Self::LifecycleDeleteMarkerCreated => "s3:LifecycleExpiration:DeleteMarkerCreated",
        }
    }

    /// The event a lifecycle expiry raises instead of a removal (others
    /// stay as they are).
    pub fn by_lifecycle(self) -> Self {
        match self {
            Self::Delete => Self::LifecycleDelete,
            Self::DeleteMarkerCreated => Self::LifecycleDeleteMarkerCreated,
            other => other,
        }
    }

    /// A version (or the object) is gone: nothing is left to describe.
    pub fn removes_version(self) -> bool {
        matches!(self, Self::Delete | Self::LifecycleDelete)
    }

    /// The key is gone from view: a removal or a delete marker.
    pub fn removes_key(self) -> bool {
        matches!(
            self,
            Self::Delete
                | Self::DeleteMarkerCreated
                | Self::LifecycleDelete
                | Self::LifecycleDeleteMarkerCreated
        )
    }

    /// The name in an event record's `eventName` (without `s3:`).
    pub fn record_name(self) -> &'static str {
        self.as_str().trim_start_matches("s3:")
    }
}

/// Every event type a configuration may name (AWS's list); the store
/// raises those of [`EventName`], the others are accepted and never fire.
const EVENT_TYPES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectCreated:PutRetention",
    "s3:ObjectCreated:PutLegalHold",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
];

/// MinIO's event types of reads, which a listener may name (minio-py
/// asks for them by default); reads raise no events here.
const ACCESS_TYPES: &[&str] = &[
    "s3:ObjectAccessed:*",
    "s3:ObjectAccessed:Get",
    "s3:ObjectAccessed:Head",
];

/// Whether a listener (`GET /bucket?events=...`) may name `pattern`.
pub fn listenable(pattern: &str) -> bool {
    EVENT_TYPES.contains(&pattern) || ACCESS_TYPES.contains(&pattern)
}

/// Whether event type `pattern` (maybe `...:*`) covers `name`.
pub fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => name.starts_with(stem),
        None => pattern == name,
    }
}

/// Whether two event types of a configuration share an event.
fn share(a: &str, b: &str) -> bool {
    covers(a, b) || covers(b, a)
}

/// The kind of destination a rule names (AWS's three lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationKind {
    Queue,
    Topic,
    Lambda,
}

/// One notification rule: which events of which keys go where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRule {
    pub id: String,
    pub kind: DestinationKind,
    /// The destination's ARN as the client gave it.
    pub arn: String,
    /// Event types, as given (`s3:ObjectCreated:*`, ...).
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

/// A bucket's notification configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationConfig {
    pub rules: Vec<NotificationRule>,
}

/// Filter rules of one rule as the client sent them (name, value).
pub type FilterRules = Vec<(String, String)>;

/// The prefix and suffix of a rule's filter, AWS's errors for others.
pub fn parse_filter(rules: &FilterRules) -> ObjectResult<(Option<String>, Option<String>)> {
    let (mut prefix, mut suffix) = (None, None);
    for (name, value) in rules {
        let slot = match name.to_ascii_lowercase().as_str() {
            "prefix" => &mut prefix,
            "suffix" => &mut suffix,
            _ => {
                return Err(invalid(
                    "filter rule name must be either prefix or suffix".into(),
                ));
            }
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "Cannot specify more than one {} rule in a filter.",
                name.to_ascii_lowercase()
            )));
        }
        if value.len() > 1024 {
            return Err(invalid("filter rule value is longer than 1024".into()));
        }
        *slot = Some(value.clone());
    }
    Ok((prefix, suffix))
}

fn invalid(message: String) -> ObjectError {
    ObjectError::InvalidArgument { message }
}

/// Whether two optional prefixes (or suffixes, `suffix`) can both match
/// one key: an empty one matches every key.
fn filters_overlap(a: &Option<String>, b: &Option<String>, suffix: bool) -> bool {
    match (a.as_deref(), b.as_deref()) {
        (Some(a), Some(b)) if suffix => a.ends_with(b) || b.ends_with(a),
        (Some(a), Some(b)) => a.starts_with(b) || b.starts_with(a),
        _ => true,
    }
}

impl NotificationConfig {
    /// AWS's checks: known event types, at most 100 rules, unique ids,
    /// destinations this server knows (`known`), no two rules sharing an
    /// event type with overlapping prefix and suffix filters.
    pub fn validate(&self, known: impl Fn(&NotificationRule) -> bool) -> ObjectResult<()> {
        if self.rules.len() > 100 {
            return Err(invalid("at most 100 notification configurations".into()));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.events.is_empty() {
                return Err(ObjectError::MalformedXml {
                    message: "a notification configuration needs an Event".into(),
                });
            }
            if let Some(e) = r.events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
                return Err(invalid(format!(
                    "The event is not supported for notifications: {e}"
                )));
            }
            if r.id.len() > 255 {
                return Err(invalid("the configuration id is longer than 255".into()));
            }
            if self.rules.iter().take(i).any(|o| o.id == r.id) {
                return Err(invalid(format!(
                    "Configuration id {:?} is used more than once",
                    r.id
                )));
            }
        }
        let unknown: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| !known(r))
            .map(|r| r.arn.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(invalid(format!(
                "Unable to validate the following destination configurations: {}",
                unknown.join(", ")
            )));
        }
        for (i, a) in self.rules.iter().enumerate() {
            for b in self.rules.iter().skip(i + 1) {
                let common = a
                    .events
                    .iter()
                    .any(|x| b.events.iter().any(|y| share(x, y)));
                if common
                    && filters_overlap(&a.prefix, &b.prefix, false)
                    && filters_overlap(&a.suffix, &b.suffix, true)
                {
                    return Err(invalid(
                        "Configurations overlap. Configurations on the same bucket cannot share a common event type."
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The destinations an event on `key` goes to (one per matching rule).
    pub fn deliveries(&self, event: EventName, key: &str) -> Vec<Delivery> {
        self.rules
            .iter()
            .filter(|r| r.events.iter().any(|p| covers(p, event.as_str())))
            .filter(|r| r.prefix.as_deref().is_none_or(|p| key.starts_with(p)))
            .filter(|r| r.suffix.as_deref().is_none_or(|s| key.ends_with(s)))
            .map(|r| Delivery {
                arn: r.arn.clone(),
                configuration_id: r.id.clone(),
            })
            .collect()
    }
}

/// The target an ARN names, as `ID:TYPE`: `arn:cairn:sqs::ID:TYPE`, or
/// with the server's `region` in its place (MinIO's form, `arn:minio:`,
/// is accepted too). None: not a target ARN.
pub fn target_of(arn: &str, region: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [scheme, partition, service, r, id, kind] = parts.as_slice() else {
        return None;
    };
    let ok = *scheme == "arn"
        && matches!(*partition, "cairn" | "minio")
        && *service == "sqs"
        && (r.is_empty() || *r == region)
        && !id.is_empty()
        && !kind.is_empty();
    ok.then(|| format!("{id}:{kind}"))
}

/// One destination of a record: the target's ARN and the rule's id (the
/// record's `s3.configurationId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Delivery {
    pub arn: String,
    pub configuration_id: String,
}

/// What an outbox record is for (replication tasks ride the same outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    Event,
    /// A replication task (cairn-replication): its targets are the
    /// destination bucket ARNs of the rules that matched.
    Replication,
}

/// A fact to deliver, written on the drives before the commit it is
/// about becomes visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub kind: RecordKind,
    pub event: EventName,
    pub bucket: String,
    pub key: String,
    /// The version the event is about (`None`: the null version, or an
    /// unversioned delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub etag: String,
    /// The version's mod time (ns since the epoch): when it happened, the
    /// record's sequencer, and what the deliverer checks the commit by.
    pub mod_time: i128,
    pub targets: Vec<Delivery>,
}

/// A record on the drives, by its id (opaque to the deliverer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub record: OutboxRecord,
}

/// Counts of an outbox (the metrics of delivery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Records on the drives now (as far as this process knows).
    pub pending: u64,
    /// Records dropped because the outbox was full (`DropOldest`).
    pub dropped: u64,
    /// Writes refused because the outbox was full (`Refuse`).
    pub refused: u64,
    /// Records dropped because their commit never happened.
    pub uncommitted: u64,
}

/// What a full outbox does to the next write that raises an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// The write fails (503): no event is lost, writes stop.
    #[default]
    Refuse,
    /// The oldest record is removed (counted): writes go on.
    DropOldest,
}

/// The outbox's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimit {
    pub max_records: u64,
    pub when_full: WhenFull,
}

impl Default for OutboxLimit {
    fn default() -> Self {
        Self {
            max_records: 1_000_000,
            when_full: WhenFull::Refuse,
        }
    }
}

/// A store's outbox as its deliverer sees it.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Records of `kind` whose commit happened, oldest first, at most
    /// `max`, after the record `after` (ids sort as records age; None:
    /// from the oldest). Records of commits still running are not among
    /// them; records whose commit never happened are dropped.
    async fn pending_of(
        &self,
        kind: RecordKind,
        after: Option<&str>,
        max: usize,
    ) -> ObjectResult<Vec<OutboxEntry>>;
    /// [`Outbox::pending_of`] for event records.
    async fn pending(&self, after: Option<&str>, max: usize) -> ObjectResult<Vec<OutboxEntry>> {
        self.pending_of(RecordKind::Event, after, max).await
    }
    /// Removes a record every target has.
    async fn delivered(&self, id: &str) -> ObjectResult<()>;
    /// Whether a record `pending` gave is still there (not delivered,
    /// not dropped by a full outbox): a queued message of one that is not
    /// goes unsent.
    fn holds(&self, id: &str) -> bool;
    /// Returns when new records may be pending, or after `wait`.
    async fn wait_new(&self, wait: Duration);
    fn outbox_stats(&self) -> OutboxStats;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        id: &str,
        events: &[&str],
        prefix: Option<&str>,
        suffix: Option<&str>,
    ) -> NotificationRule {
        NotificationRule {
            id: id.into(),
            kind: DestinationKind::Queue,
            arn: "arn:cairn:sqs::1:webhook".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.map(Into::into),
            suffix: suffix.map(Into::into),
        }
    }

    #[test]
    fn target_arns() {
        assert_eq!(
            target_of("arn:cairn:sqs::1:webhook", "us-east-1").as_deref(),
            Some("1:webhook")
        );
        assert_eq!(
            target_of("arn:minio:sqs:us-east-1:1:redis", "us-east-1").as_deref(),
            Some("1:redis")
        );
        assert_eq!(
            target_of("arn:cairn:sqs:eu-west-1:1:redis", "us-east-1"),
            None
        );
        assert_eq!(target_of("arn:aws:sqs:us-east-1:1:q", "us-east-1"), None);
        assert_eq!(target_of("arn:cairn:sqs::1:webhook:x", "us-east-1"), None);
    }

    #[test]
    fn matching_and_overlap() {
        let c = NotificationConfig {
            rules: vec![
                rule("a", &["s3:ObjectCreated:*"], Some("img/"), Some(".jpg")),
                rule("b", &["s3:ObjectRemoved:Delete"], None, None),
            ],
        };
        c.validate(|_| true).unwrap();
        assert_eq!(c.deliveries(EventName::Put, "img/a.jpg").len(), 1);
        assert!(c.deliveries(EventName::Put, "img/a.png").is_empty());
        assert!(c.deliveries(EventName::DeleteMarkerCreated, "x").is_empty());
        assert_eq!(
            c.deliveries(EventName::Delete, "x")[0].configuration_id,
            "b"
        );
        let overlap = NotificationConfig {
            rules: vec![
                rule("a", &["s3:ObjectCreated:*"], Some("img/"), None),
                rule("b", &["s3:ObjectCreated:Put"], Some("img/x"), None),
            ],
        };
        assert!(overlap.validate(|_| true).is_err());
        let disjoint = NotificationConfig {
            rules: vec![
                rule("a", &["s3:ObjectCreated:*"], Some("img/"), None),
                rule("b", &["s3:ObjectCreated:Put"], Some("doc/"), None),
            ],
        };
        disjoint.validate(|_| true).unwrap();
        let bad = NotificationConfig {
            rules: vec![rule("a", &["s3:ObjectCreated:Nope"], None, None)],
        };
        assert!(bad.validate(|_| true).is_err());
        assert!(c.validate(|_| false).is_err());
        assert!(
            parse_filter(&vec![
                ("prefix".into(), "a".into()),
                ("Prefix".into(), "b".into())
            ])
            .is_err()
        );
    }
}
