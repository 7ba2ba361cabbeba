//! Conditional writes: S3's `If-Match` / `If-None-Match: *` on PutObject
//! and CompleteMultipartUpload. A layer checks the precondition against
//! the current version in the same step as its commit (under the object's
//! write lock), never as a check before the write, so two writers cannot
//! both pass it. [`InFlight`] tells a second conditional write of a key
//! that another one is under way (`ConditionalRequestConflict`).

use std::collections::HashSet;
use std::sync::Mutex;

use crate::error::{ObjectError, ObjectResult};
use crate::names::{BucketName, ObjectKey};

/// What must hold of the key's current object for the write to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WritePrecondition {
    /// `If-None-Match: *`: the key has no current object (a delete
    /// marker counts as none); else `PreconditionFailed`.
    Absent,
    /// `If-Match`: the current object has this ETag (quotes optional;
    /// `*`: any object); `NoSuchKey` when there is none,
    /// `PreconditionFailed` when its ETag differs.
    Matches(String),
}

impl WritePrecondition {
    /// Judges the precondition given the ETag of the current object
    /// (`None`: no object, or a delete marker).
    pub fn check(
        &self,
        current: Option<&str>,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> ObjectResult<()> {
        match (self, current) {
            (Self::Absent, None) => Ok(()),
            (Self::Absent, Some(_)) => Err(ObjectError::PreconditionFailed),
            (Self::Matches(_), None) => Err(ObjectError::no_such_key(bucket, key)),
            (Self::Matches(want), Some(etag)) => {
                let want = want.trim().trim_matches('"');
                if want == "*" || want == etag {
                    Ok(())
                } else {
                    Err(ObjectError::PreconditionFailed)
                }
            }
        }
    }
}

/// Options of CompleteMultipartUpload beyond the part list.
#[derive(Debug, Clone, Default)]
pub struct CompleteOptions {
    /// Commit only if this holds of the key's current object.
    pub precondition: Option<WritePrecondition>,
    /// The checksums the request lists for the parts and the object.
    pub checksums: crate::mpchecksum::CompleteChecksums,
}

/// Conditional writes under way, per key: a second one of the same key
/// while the first has not committed or failed is refused with
/// `ConditionalRequestConflict` (AWS's 409; the client re-reads and
/// retries) rather than waiting to fail its precondition after its whole
/// body has been sent. Unconditional writes do not take part.
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Mutex<HashSet<(String, String)>>,
}

/// Held by a conditional write until it commits or fails.
#[derive(Debug)]
pub struct Claim<'a> {
    table: &'a InFlight,
    id: (String, String),
}

impl InFlight {
    /// Claims `key` for a write with `precondition`; `None` (nothing to
    /// hold) for an unconditional write.
    pub fn claim(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        precondition: Option<&WritePrecondition>,
    ) -> ObjectResult<Option<Claim<'_>>> {
        if precondition.is_none() {
            return Ok(None);
        }
        let id = (bucket.to_string(), key.to_string());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.contains(&id) {
            return Err(ObjectError::ConditionalRequestConflict {
                bucket: id.0,
                key: id.1,
            });
        }
        keys.insert(id.clone());
        Ok(Some(Claim { table: self, id }))
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.table
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bk() -> (BucketName, ObjectKey) {
        (
            BucketName::new("bkt").unwrap(),
            ObjectKey::new("k").unwrap(),
        )
    }

    #[test]
    fn preconditions() {
        let (b, k) = bk();
        let m = |s: &str| WritePrecondition::Matches(s.into());
        assert!(WritePrecondition::Absent.check(None, &b, &k).is_ok());
        assert_eq!(
            WritePrecondition::Absent.check(Some("e"), &b, &k),
            Err(ObjectError::PreconditionFailed)
        );
        assert!(m("\"e\"").check(Some("e"), &b, &k).is_ok());
        assert!(m("*").check(Some("e"), &b, &k).is_ok());
        assert_eq!(
            m("\"f\"").check(Some("e"), &b, &k),
            Err(ObjectError::PreconditionFailed)
        );
        assert!(matches!(
            m("*").check(None, &b, &k),
            Err(ObjectError::NoSuchKey { .. })
        ));
    }

    #[test]
    fn second_claim_conflicts_until_the_first_ends() {
        let (b, k) = bk();
        let t = InFlight::default();
        let p = WritePrecondition::Absent;
        assert!(t.claim(&b, &k, None).unwrap().is_none());
        let first = t.claim(&b, &k, Some(&p)).unwrap();
        assert!(first.is_some());
        assert!(matches!(
            t.claim(&b, &k, Some(&p)),
            Err(ObjectError::ConditionalRequestConflict { .. })
        ));
        // an unconditional write is not held up
        assert!(t.claim(&b, &k, None).unwrap().is_none());
        drop(first);
        assert!(t.claim(&b, &k, Some(&p)).unwrap().is_some());
    }
}
