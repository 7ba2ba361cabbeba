//! Bucket lifecycle rules: which versions expire when. The pass that
//! applies them lives in the store; the rules and their matching live
//! here so every layer reads them alike.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{ObjectError, ObjectResult};
use crate::tags::Tags;

/// S3 allows this many rules per bucket.
pub const MAX_RULES: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    /// Filter: keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Filter: versions carrying all of these tags.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// Current versions expire this many days after they were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// Current versions expire from this date on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::timestamp::option"
    )]
    pub expiration_date: Option<OffsetDateTime>,
    /// A delete marker with no versions left behind it is removed.
    #[serde(default)]
    pub expired_delete_marker: bool,
    /// Noncurrent versions expire this many days after they became
    /// noncurrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    /// ... except the newest this many noncurrent versions, kept anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent: Option<u32>,
    /// Incomplete multipart uploads are aborted this many days after
    /// they began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_multipart_days: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub rules: Vec<LifecycleRule>,
}

impl Lifecycle {
    pub fn validate(&self) -> ObjectResult<()> {
        let bad = |m: String| Err(ObjectError::MalformedXml { message: m });
        if self.rules.is_empty() || self.rules.len() > MAX_RULES {
            return bad(format!(
                "a lifecycle configuration holds 1 to {MAX_RULES} rules"
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for r in &self.rules {
            if r.id.len() > 255 {
                return bad("a rule ID is at most 255 characters".into());
            }
            if !r.id.is_empty() && !ids.insert(r.id.as_str()) {
                return Err(ObjectError::InvalidArgument {
                    message: format!("rule ID {:?} is used twice", r.id),
                });
            }
            let acts = r.expiration_days.is_some()
                || r.expiration_date.is_some()
                || r.expired_delete_marker
                || r.noncurrent_days.is_some()
                || r.newer_noncurrent.is_some()
                || r.abort_multipart_days.is_some();
            if !acts {
                return bad(format!("rule {:?} has no action", r.id));
            }
            if r.expiration_days == Some(0) || r.noncurrent_days == Some(0) {
                return Err(ObjectError::InvalidArgument {
                    message: "days in a lifecycle action must be positive".into(),
                });
            }
            if r.expired_delete_marker
                && (r.expiration_days.is_some() || r.expiration_date.is_some())
            {
                return bad(
                    "ExpiredObjectDeleteMarker cannot be combined with Days or Date".into(),
                );
            }
            if r.abort_multipart_days.is_some() && !r.tags.is_empty() {
                return Err(ObjectError::InvalidArgument {
                    message: "AbortIncompleteMultipartUpload cannot be filtered by tags".into(),
                });
            }
        }
        Ok(())
    }
}

impl LifecycleRule {
    /// Does the rule's filter select a version of `key` with these tags?
    pub fn selects(&self, key: &str, tags: &Tags) -> bool {
        self.enabled
            && key.starts_with(&self.prefix)
            && self.tags.0.iter().all(|(k, v)| tags.0.get(k) == Some(v))
    }

    /// Should a current version written at `written` expire at `now`?
    pub fn current_expired(&self, written: OffsetDateTime, now: OffsetDateTime) -> bool {
        self.expiration_days
            .is_some_and(|d| days_passed(written, d, now))
            || self.expiration_date.is_some_and(|d| now >= d)
    }
}

/// Has `days` days passed since `since` at `now`, counted as S3 does: the
/// sum is rounded up to the next midnight UTC.
pub fn days_passed(since: OffsetDateTime, days: u32, now: OffsetDateTime) -> bool {
    let due = since.to_offset(time::UtcOffset::UTC) + time::Duration::days(i64::from(days));
    let midnight = due.replace_time(time::Time::MIDNIGHT);
    let due = if midnight == due {
        due
    } else {
        midnight + time::Duration::days(1)
    };
    now >= due
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn days_round_up_to_midnight_utc() {
        let written = datetime!(2026-01-01 15:00 UTC);
        // 1 day after 15:00 is 2 Jan 15:00, rounded up to 3 Jan 00:00
        assert!(!days_passed(written, 1, datetime!(2026-01-02 23:59 UTC)));
        assert!(days_passed(written, 1, datetime!(2026-01-03 00:00 UTC)));
        let midnight = datetime!(2026-01-01 00:00 UTC);
        assert!(days_passed(midnight, 1, datetime!(2026-01-02 00:00 UTC)));
        assert!(!days_passed(midnight, 1, datetime!(2026-01-01 23:59 UTC)));
    }
}
