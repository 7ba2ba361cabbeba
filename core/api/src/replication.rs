//! Bucket replication (issue 22): a bucket's rules (AWS's
//! `ReplicationConfiguration`, V2 rules), their checks with AWS's errors,
//! the status a version carries (`x-amz-replication-status`), what a
//! replica keeps of its source, the targets registered with `cairn admin
//! replicate add` and the admin side of the service that delivers the
//! outbox's replication records (`ReplicationAdmin`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{ObjectError, ObjectResult};
use crate::notify::{Delivery, EventName};
use crate::tags::Tags;

/// The source version id a replicating caller sends with a PUT or DELETE
/// (honoured only for callers allowed `s3:ReplicateObject` /
/// `s3:ReplicateDelete`).
pub const SOURCE_VERSION_HEADER: &str = "x-cairn-source-version-id";
/// The source version's mod time (ns since the epoch).
pub const SOURCE_MTIME_HEADER: &str = "x-cairn-source-mtime";

/// A version's replication status, as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReplicationStatus {
    /// A rule wants it copied; the copy has not arrived yet.
    Pending,
    /// Every destination has it.
    Completed,
    /// A copy failed; it is retried (and becomes COMPLETED when it lands).
    Failed,
    /// This version is a copy made by replication: never replicated again.
    Replica,
}

impl ReplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Replica => "REPLICA",
        }
    }
}

/// What a replica keeps of its source version: its id and mod time. Set
/// by the S3 front only for a caller allowed `s3:ReplicateObject` /
/// `s3:ReplicateDelete`; the version it makes is a `REPLICA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOf {
    pub version_id: String,
    /// Ns since the epoch (`None`: now).
    pub mod_time: Option<i128>,
}

impl ReplicaOf {
    /// From the headers a replicating caller sent: a version id of 1 to
    /// 64 letters, digits, `-`, `_`, `.` (not `null`), and a mod time in
    /// ns since the epoch.
    pub fn parse(version_id: &str, mod_time: Option<&str>) -> ObjectResult<Self> {
        let ok = (1..=64).contains(&version_id.len())
            && version_id != crate::versioning::NULL_VERSION
            && version_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(invalid("invalid source version id"));
        }
        let mod_time = match mod_time {
            None => None,
            Some(t) => Some(
                t.parse::<i128>()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| invalid("invalid source mod time"))?,
            ),
        };
        Ok(Self {
            version_id: version_id.to_owned(),
            mod_time,
        })
    }
}

/// One rule (AWS V2): which versions go to which bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRule {
    pub id: String,
    #[serde(default)]
    pub priority: i32,
    pub enabled: bool,
    /// Keys starting with it (empty: every key).
    #[serde(default)]
    pub prefix: String,
    /// Tags a version must all carry.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// The destination bucket's ARN (`arn:aws:s3:::BUCKET`).
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Delete markers are replicated too.
    #[serde(default)]
    pub delete_markers: bool,
    /// `cairn admin replicate resync` copies versions made before the rule.
    #[serde(default)]
    pub existing_objects: bool,
    /// The rule had a `Filter` (V2) rather than a bare `Prefix` (V1).
    #[serde(default)]
    pub v2: bool,
}

/// A bucket's replication configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    /// The IAM role ARN the client gave (kept, shown, not used).
    #[serde(default)]
    pub role: String,
    pub rules: Vec<ReplicationRule>,
}

/// The bucket an S3 bucket ARN names (`arn:aws:s3:::NAME`, also with
/// `cairn`/`minio` as partition), if it is one.
pub fn arn_bucket(arn: &str) -> Option<&str> {
    let rest = ["arn:aws:s3:::", "arn:cairn:s3:::", "arn:minio:s3:::"]
        .iter()
        .find_map(|p| arn.strip_prefix(p))?;
    crate::BucketName::new(rest.to_owned()).ok().map(|_| rest)
}

fn invalid(message: impl Into<String>) -> ObjectError {
    ObjectError::InvalidArgument {
        message: message.into(),
    }
}

impl ReplicationRule {
    /// Whether a version of `key` with `tags` is this rule's.
    pub fn matches(&self, key: &str, tags: &Tags) -> bool {
        self.enabled
            && key.starts_with(&self.prefix)
            && self.tags.0.iter().all(|(k, v)| tags.0.get(k) == Some(v))
    }

    /// Whether some version could be both rules'.
    fn overlaps(&self, other: &ReplicationRule) -> bool {
        let prefixes =
            self.prefix.starts_with(&other.prefix) || other.prefix.starts_with(&self.prefix);
        let tags = self
            .tags
            .0
            .iter()
            .all(|(k, v)| other.tags.0.get(k).is_none_or(|o| o == v));
        prefixes && tags
    }
}

impl ReplicationConfig {
    /// AWS's checks: versioning enabled on the bucket (else
    /// InvalidRequest), 1 to 1,000 rules with unique ids, destinations
    /// that are bucket ARNs (InvalidArgument) of targets registered for
    /// this bucket (`known`, else InvalidRequest), no two overlapping
    /// rules with the same priority (InvalidArgument), V2 rules with a
    /// delete marker setting and no tag filter on delete markers.
    pub fn validate(
        &self,
        versioning_enabled: bool,
        known: impl Fn(&str) -> bool,
    ) -> ObjectResult<()> {
        if !versioning_enabled {
            return Err(ObjectError::InvalidRequest {
                message: "Versioning must be 'Enabled' on the bucket to apply a replication configuration".into(),
            });
        }
        if self.rules.is_empty() || self.rules.len() > 1000 {
            return Err(ObjectError::MalformedXml {
                message: "a replication configuration has 1 to 1,000 rules".into(),
            });
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.id.len() > 255 {
                return Err(invalid("Rule Id must not be longer than 255 characters"));
            }
            if self.rules.iter().take(i).any(|o| o.id == r.id) {
                return Err(invalid(format!(
                    "Rule Id {:?} is used more than once",
                    r.id
                )));
            }
            if r.prefix.len() > 1024 {
                return Err(invalid("Prefix must not be longer than 1024 characters"));
            }
            if arn_bucket(&r.destination).is_none() {
                return Err(invalid(format!("Invalid bucket ARN {:?}", r.destination)));
            }
            if r.delete_markers && !r.tags.is_empty() {
                return Err(invalid(
                    "Delete marker replication is not supported if any Tag filter is specified",
                ));
            }
        }
        let destinations: Vec<&str> = self.rules.iter().map(|r| r.destination.as_str()).collect();
        if let Some(d) = destinations.iter().find(|d| !known(d)) {
            return Err(ObjectError::InvalidRequest {
                message: format!(
                    "Destination bucket {d} is not a replication target of this bucket (cairn admin replicate add)"
                ),
            });
        }
        if self.rules.len() > 1 && self.rules.iter().any(|r| !r.v2) {
            return Err(invalid(
                "Rules without a Filter (V1) cannot be combined with other rules",
            ));
        }
        for (i, a) in self.rules.iter().enumerate() {
            for b in self.rules.iter().skip(i + 1) {
                if a.priority == b.priority && a.overlaps(b) {
                    return Err(invalid(format!(
                        "Found duplicate priority {} in overlapping rules {:?} and {:?}",
                        a.priority, a.id, b.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// The rule that decides for each destination a version of `key`
    /// with `tags` goes to: among the matching rules, the highest
    /// priority (AWS's conflict rule).
    pub fn rules_for<'a>(&'a self, key: &str, tags: &Tags) -> Vec<&'a ReplicationRule> {
        let mut out: Vec<&ReplicationRule> = Vec::new();
        for r in self.rules.iter().filter(|r| r.matches(key, tags)) {
            match out.iter_mut().find(|o| o.destination == r.destination) {
                Some(o) if o.priority < r.priority => *o = r,
                Some(_) => {}
                None => out.push(r),
            }
        }
        out
    }

    /// Where the commit of `event` on a version of `key` (with `tags` and
    /// replication `status`) goes: new versions marked PENDING, delete
    /// markers (rules replicating them), tag changes of replicated
    /// versions. A REPLICA never goes anywhere.
    pub fn deliveries(
        &self,
        event: EventName,
        key: &str,
        tags: &Tags,
        status: Option<ReplicationStatus>,
    ) -> Vec<Delivery> {
        use EventName::*;
        let wanted = |r: &&ReplicationRule| match event {
            Put | Post | Copy | CompleteMultipartUpload => {
                status == Some(ReplicationStatus::Pending)
            }
            DeleteMarkerCreated => r.delete_markers && status != Some(ReplicationStatus::Replica),
            TaggingPut | TaggingDelete | RetentionPut | LegalHoldPut => matches!(
                status,
                Some(
                    ReplicationStatus::Pending
                        | ReplicationStatus::Completed
                        | ReplicationStatus::Failed
                )
            ),
            // lifecycle actions are not replicated (as AWS does)
            Delete | AclPut | LifecycleDelete | LifecycleDeleteMarkerCreated => false,
        };
        // a delete marker carries no tags: rules with a tag filter skip it
        self.rules_for(key, tags)
            .into_iter()
            .filter(wanted)
            .map(|r| Delivery {
                arn: r.destination.clone(),
                configuration_id: r.id.clone(),
            })
            .collect()
    }

    /// Whether a new version of `key` with `tags` is to be replicated
    /// (it starts PENDING).
    pub fn wants(&self, key: &str, tags: &Tags) -> bool {
        !self.rules_for(key, tags).is_empty()
    }
}

/// A replication target: where a source bucket's versions go, with the
/// credentials to put them there (stored sealed, never shown).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The source bucket.
    pub bucket: String,
    /// The destination bucket's ARN (`arn:aws:s3:::NAME`): rules name it.
    pub arn: String,
    /// The S3 endpoint of the destination (`http(s)://host:port`).
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Bytes per second the target's copies may use (`None`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    /// Writes to the bucket answer only after the copy is at the target.
    #[serde(default)]
    pub sync: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSpec")
            .field("bucket", &self.bucket)
            .field("arn", &self.arn)
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl TargetSpec {
    /// The target as shown (without its secret).
    pub fn info(&self) -> TargetInfo {
        TargetInfo {
            bucket: self.bucket.clone(),
            arn: self.arn.clone(),
            endpoint: self.endpoint.clone(),
            access_key: self.access_key.clone(),
            region: self.region.clone(),
            bandwidth: self.bandwidth,
            sync: self.sync,
        }
    }

    /// The name of its record (one per source bucket and destination).
    pub fn record_name(&self) -> String {
        record_name(&self.bucket, &self.arn)
    }
}

/// The record name of the target of `bucket` for destination `arn`.
pub fn record_name(bucket: &str, arn: &str) -> String {
    format!("{bucket}\n{arn}")
}

/// A target as `cairn admin replicate list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub bucket: String,
    pub arn: String,
    pub endpoint: String,
    pub access_key: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    #[serde(default)]
    pub sync: bool,
}

/// One target's progress (`cairn admin replicate status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    pub arn: String,
    pub endpoint: String,
    /// Replication records waiting for this target.
    pub backlog: u64,
    /// Age of the oldest waiting record, seconds.
    pub lag_secs: u64,
    pub replicated: u64,
    pub bytes: u64,
    /// Attempts that failed (each retry counts).
    pub failures: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last resync to this target (`cairn admin replicate resync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync: Option<ResyncReport>,
}

/// Where a resync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResyncPhase {
    /// Counting the versions and bytes to send.
    Counting,
    /// Sending them.
    Sending,
    /// Every version was sent.
    Done,
    /// Stopped before the end (`error` says why); run it again.
    Stopped,
}

impl ResyncPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counting => "counting",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Stopped => "stopped",
        }
    }
}

/// A resync's progress: every version and delete marker of the bucket
/// that a rule sends to the target, sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncReport {
    pub id: String,
    pub phase: ResyncPhase,
    /// When it started (Unix seconds).
    pub started: i64,
    /// Versions and delete markers to send, and their bytes (known once
    /// counting ended).
    pub total_objects: u64,
    pub total_bytes: u64,
    pub done_objects: u64,
    pub done_bytes: u64,
    /// Bytes per second since it started (or resumed).
    pub rate: u64,
    /// Seconds left at that rate (`None`: not known yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
    /// Why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A bucket's replication progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationReport {
    pub bucket: String,
    pub targets: Vec<TargetReport>,
}

/// The replication service as the admin API and the S3 front see it.
#[async_trait]
pub trait ReplicationAdmin: Send + Sync {
    /// Registers (or replaces) a target after checking it answers and
    /// keeps versions.
    async fn add_target(&self, spec: TargetSpec) -> ObjectResult<TargetInfo>;
    async fn list_targets(&self, bucket: &str) -> ObjectResult<Vec<TargetInfo>>;
    /// Removes a target (refused while a rule of the bucket names it).
    async fn remove_target(&self, bucket: &str, arn: &str) -> ObjectResult<()>;
    /// Whether `arn` is a target of `bucket`.
    fn has_target(&self, bucket: &str, arn: &str) -> bool;
    async fn status(&self, bucket: &str) -> ObjectResult<ReplicationReport>;
    /// Starts sending every version and delete marker of `bucket` that a
    /// rule sends to `arn` again (a resync under way starts over).
    async fn resync(&self, bucket: &str, arn: &str) -> ObjectResult<ResyncReport>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, priority: i32, prefix: &str) -> ReplicationRule {
        ReplicationRule {
            id: id.into(),
            priority,
            enabled: true,
            prefix: prefix.into(),
            tags: Tags::default(),
            destination: "arn:aws:s3:::dst".into(),
            storage_class: None,
            delete_markers: true,
            existing_objects: false,
            v2: true,
        }
    }

    #[test]
    fn checks() {
        let c = ReplicationConfig {
            role: String::new(),
            rules: vec![rule("a", 1, "x/"), rule("b", 1, "y/")],
        };
        c.validate(true, |_| true).unwrap();
        assert!(matches!(
            c.validate(false, |_| true),
            Err(ObjectError::InvalidRequest { .. })
        ));
        assert!(matches!(
            c.validate(true, |_| false),
            Err(ObjectError::InvalidRequest { .. })
        ));
        let dup = ReplicationConfig {
            role: String::new(),
            rules: vec![rule("a", 1, "x/"), rule("b", 1, "x/y")],
        };
        assert!(matches!(
            dup.validate(true, |_| true),
            Err(ObjectError::InvalidArgument { .. })
        ));
        let mut bad = rule("a", 1, "");
        bad.destination = "arn:aws:s3:::../x".into();
        let bad = ReplicationConfig {
            role: String::new(),
            rules: vec![bad],
        };
        assert!(matches!(
            bad.validate(true, |_| true),
            Err(ObjectError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn deliveries() {
        let c = ReplicationConfig {
            role: String::new(),
            rules: vec![rule("a", 1, "x/"), rule("b", 2, "x/y")],
        };
        let t = Tags::default();
        let d = c.deliveries(EventName::Put, "x/y1", &t, Some(ReplicationStatus::Pending));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].configuration_id, "b");
        assert!(
            c.deliveries(EventName::Put, "x/y1", &t, Some(ReplicationStatus::Replica))
                .is_empty()
        );
        assert!(
            c.deliveries(EventName::Put, "z", &t, Some(ReplicationStatus::Pending))
                .is_empty()
        );
        assert_eq!(
            c.deliveries(EventName::DeleteMarkerCreated, "x/a", &t, None)
                .len(),
            1
        );
        assert!(
            c.deliveries(
                EventName::DeleteMarkerCreated,
                "x/a",
                &t,
                Some(ReplicationStatus::Replica)
            )
            .is_empty()
        );
        assert_eq!(arn_bucket("arn:aws:s3:::dst"), Some("dst"));
        assert_eq!(arn_bucket("arn:aws:s3:::"), None);
        assert_eq!(arn_bucket("dst"), None);
    }
}
