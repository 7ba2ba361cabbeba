//! Object lock (WORM per version): retention in GOVERNANCE or COMPLIANCE
//! mode, legal hold, and the rules every delete and overwrite path checks.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{ObjectError, ObjectResult};
use crate::versioning::VersionAttrs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Callers allowed to bypass governance may shorten or remove it.
    Governance,
    /// Nobody can shorten or remove it, not even root.
    Compliance,
}

impl RetentionMode {
    pub fn parse(s: &str) -> ObjectResult<Self> {
        match s {
            "GOVERNANCE" => Ok(Self::Governance),
            "COMPLIANCE" => Ok(Self::Compliance),
            other => Err(ObjectError::InvalidArgument {
                message: format!("unknown object lock mode {other:?}"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: RetentionMode,
    #[serde(with = "time::serde::timestamp")]
    pub until: OffsetDateTime,
}

impl Retention {
    pub fn active(&self, now: OffsetDateTime) -> bool {
        self.until > now
    }
}

/// A bucket's default retention, applied to new versions that ask for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    pub period: RetentionPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

impl DefaultRetention {
    pub fn validate(&self) -> ObjectResult<()> {
        let ok = match self.period {
            RetentionPeriod::Days(d) => (1..=36_500).contains(&d),
            RetentionPeriod::Years(y) => (1..=100).contains(&y),
        };
        if ok {
            Ok(())
        } else {
            Err(ObjectError::InvalidArgument {
                message: "default retention must be 1 to 36500 days or 1 to 100 years".into(),
            })
        }
    }

    /// The retention a version written at `at` gets.
    pub fn retention_from(&self, at: OffsetDateTime) -> Retention {
        let days = match self.period {
            RetentionPeriod::Days(d) => i64::from(d),
            RetentionPeriod::Years(y) => i64::from(y) * 365,
        };
        Retention {
            mode: self.mode,
            until: at + time::Duration::days(days),
        }
    }
}

impl VersionAttrs {
    /// Why this version cannot be deleted or overwritten now, if it cannot.
    pub fn check_delete(
        &self,
        now: OffsetDateTime,
        bypass_governance: bool,
    ) -> Result<(), &'static str> {
        if self.legal_hold {
            return Err("the version is under legal hold");
        }
        match &self.retention {
            Some(r) if r.active(now) => match r.mode {
                RetentionMode::Compliance => Err("the version is under COMPLIANCE retention"),
                RetentionMode::Governance if !bypass_governance => Err(
                    "the version is under GOVERNANCE retention (bypass not requested or not allowed)",
                ),
                RetentionMode::Governance => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Locked against any change through a file front (which has no
    /// bypass).
    pub fn is_locked(&self, now: OffsetDateTime) -> bool {
        self.check_delete(now, false).is_err()
    }
}

/// Checks replacing a version's retention `old` with `new`: COMPLIANCE can
/// only be extended; GOVERNANCE can be extended or made COMPLIANCE, and
/// shortened or removed only with the bypass.
pub fn check_retention_change(
    old: Option<&Retention>,
    new: Option<&Retention>,
    bypass_governance: bool,
    now: OffsetDateTime,
) -> Result<(), &'static str> {
    let Some(old) = old.filter(|o| o.active(now)) else {
        return Ok(());
    };
    let extends = new.is_some_and(|n| n.until >= old.until);
    match old.mode {
        RetentionMode::Compliance => {
            if extends && new.is_some_and(|n| n.mode == RetentionMode::Compliance) {
                Ok(())
            } else {
                Err("COMPLIANCE retention can be extended but never shortened, changed or removed")
            }
        }
        RetentionMode::Governance => {
            if extends || bypass_governance {
                Ok(())
            } else {
                Err(
                    "GOVERNANCE retention can be shortened or removed only with x-amz-bypass-governance-retention",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(mode: RetentionMode, secs: i64) -> Retention {
        Retention {
            mode,
            until: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs),
        }
    }

    #[test]
    fn compliance_only_extends() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let c = ret(RetentionMode::Compliance, 100);
        assert!(
            check_retention_change(
                Some(&c),
                Some(&ret(RetentionMode::Compliance, 200)),
                false,
                now
            )
            .is_ok()
        );
        assert!(
            check_retention_change(
                Some(&c),
                Some(&ret(RetentionMode::Compliance, 50)),
                true,
                now
            )
            .is_err()
        );
        assert!(check_retention_change(Some(&c), None, true, now).is_err());
        assert!(
            check_retention_change(
                Some(&c),
                Some(&ret(RetentionMode::Governance, 300)),
                true,
                now
            )
            .is_err()
        );
        // expired retention no longer binds
        let later = now + time::Duration::seconds(101);
        assert!(check_retention_change(Some(&c), None, false, later).is_ok());
    }

    #[test]
    fn governance_needs_bypass_to_shorten() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let g = ret(RetentionMode::Governance, 100);
        assert!(
            check_retention_change(
                Some(&g),
                Some(&ret(RetentionMode::Governance, 50)),
                false,
                now
            )
            .is_err()
        );
        assert!(
            check_retention_change(
                Some(&g),
                Some(&ret(RetentionMode::Governance, 50)),
                true,
                now
            )
            .is_ok()
        );
        assert!(
            check_retention_change(
                Some(&g),
                Some(&ret(RetentionMode::Compliance, 100)),
                false,
                now
            )
            .is_ok()
        );
        assert!(check_retention_change(Some(&g), None, true, now).is_ok());
    }

    #[test]
    fn delete_checks() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut a = VersionAttrs::default();
        assert!(a.check_delete(now, false).is_ok());
        a.retention = Some(ret(RetentionMode::Governance, 10));
        assert!(a.check_delete(now, false).is_err());
        assert!(a.check_delete(now, true).is_ok());
        a.retention = Some(ret(RetentionMode::Compliance, 10));
        assert!(a.check_delete(now, true).is_err());
        assert!(
            a.check_delete(now + time::Duration::seconds(11), false)
                .is_ok()
        );
        a.legal_hold = true;
        assert!(
            a.check_delete(now + time::Duration::seconds(11), true)
                .is_err()
        );
    }
}
