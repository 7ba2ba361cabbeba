//! Object and bucket tags, with S3's limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ObjectError, ObjectResult};

/// Tags an object version may carry.
pub const MAX_OBJECT_TAGS: usize = 10;
/// Tags a bucket may carry.
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tags(pub BTreeMap<String, String>);

impl Tags {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Builds a tag set from pairs as a client sent them, checking S3's
    /// rules: at most `max` tags, unique keys of 1 to 128 characters,
    /// values of up to 256, no `aws:` prefix.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        max: usize,
    ) -> ObjectResult<Self> {
        let mut out = BTreeMap::new();
        for (k, v) in pairs {
            let bad = |why: &str| ObjectError::InvalidTag {
                message: format!("tag {k:?}: {why}"),
            };
            let kc = k.chars().count();
            if kc == 0 || kc > MAX_KEY_CHARS {
                return Err(bad("keys must be 1 to 128 characters"));
            }
            if v.chars().count() > MAX_VALUE_CHARS {
                return Err(bad("values must be at most 256 characters"));
            }
            if k.starts_with("aws:") {
                return Err(bad("the aws: prefix is reserved"));
            }
            if out.insert(k.clone(), v).is_some() {
                return Err(bad("keys must be unique"));
            }
        }
        if out.len() > max {
            return Err(ObjectError::InvalidTag {
                message: format!("{} tags given; at most {max} are allowed", out.len()),
            });
        }
        Ok(Self(out))
    }

    /// Parses `x-amz-tagging` (URL query form: `k1=v1&k2=v2`).
    pub fn from_query(q: &str) -> ObjectResult<Self> {
        let mut pairs = Vec::new();
        for item in q.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        Self::from_pairs(pairs, MAX_OBJECT_TAGS)
    }
}

fn decode(s: &str) -> ObjectResult<String> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ObjectError::InvalidTag {
            message: "x-amz-tagging is not valid UTF-8".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let pairs = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_owned()));
        assert_eq!(
            Tags::from_pairs(pairs(10), MAX_OBJECT_TAGS).unwrap().len(),
            10
        );
        assert!(Tags::from_pairs(pairs(11), MAX_OBJECT_TAGS).is_err());
        assert!(Tags::from_pairs(pairs(50), MAX_BUCKET_TAGS).is_ok());
        let long = |n: usize| "x".repeat(n);
        assert!(Tags::from_pairs([(long(128), long(256))], 10).is_ok());
        assert!(Tags::from_pairs([(long(129), String::new())], 10).is_err());
        assert!(Tags::from_pairs([("k".into(), long(257))], 10).is_err());
        assert!(Tags::from_pairs([(String::new(), "v".into())], 10).is_err());
        assert!(Tags::from_pairs([("aws:x".into(), "v".into())], 10).is_err());
        assert!(
            Tags::from_pairs([("a".into(), "1".into()), ("a".into(), "2".into())], 10).is_err()
        );
    }

    #[test]
    fn query_form() {
        let t = Tags::from_query("a=1&b%20c=d+e&empty=").unwrap();
        assert_eq!(t.0.get("b c").map(String::as_str), Some("d e"));
        assert_eq!(t.0.get("empty").map(String::as_str), Some(""));
        assert!(Tags::from_query("a=1&a=2").is_err());
    }
}
