//! Bucket policies as the fronts consult them: parsed once per stored
//! text, by bucket (every front that authorizes keeps one cache), and
//! the S3 ARNs they are matched against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::PolicyError;
use crate::policy::{Policy, PolicyKind};

/// `arn:aws:s3:::bucket`, or `arn:aws:s3:::bucket/key`.
pub fn s3_arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

/// Parsed bucket policies, by bucket, with the text each came from.
#[derive(Debug, Default)]
pub struct BucketPolicies {
    cache: Mutex<HashMap<String, (String, Arc<Policy>)>>,
}

impl BucketPolicies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bucket `bucket`'s policy, whose stored text is `text` (`None`: it
    /// has none), parsed once per text. A text that does not parse is
    /// the error (what that means is the caller's to decide).
    pub fn parsed(
        &self,
        bucket: &str,
        text: Option<String>,
    ) -> Result<Option<Arc<Policy>>, PolicyError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let Some(text) = text else {
            cache.remove(bucket);
            return Ok(None);
        };
        if let Some((t, p)) = cache.get(bucket)
            && *t == text
        {
            return Ok(Some(p.clone()));
        }
        let p = Arc::new(Policy::parse(&text, PolicyKind::Bucket)?);
        cache.insert(bucket.to_owned(), (text, p.clone()));
        Ok(Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_once_per_text() {
        let c = BucketPolicies::new();
        let doc = |a: &str| {
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"{a}","Resource":"arn:aws:s3:::b/*"}}]}}"#
            )
        };
        let one = c.parsed("b", Some(doc("s3:GetObject"))).unwrap().unwrap();
        let again = c.parsed("b", Some(doc("s3:GetObject"))).unwrap().unwrap();
        assert!(Arc::ptr_eq(&one, &again));
        let other = c.parsed("b", Some(doc("s3:PutObject"))).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&one, &other));
        assert!(c.parsed("b", None).unwrap().is_none());
        assert!(c.parsed("b", Some("{".into())).is_err());
        assert_eq!(s3_arn("b", Some("k/x")), "arn:aws:s3:::b/k/x");
        assert_eq!(s3_arn("b", None), "arn:aws:s3:::b");
    }
}
