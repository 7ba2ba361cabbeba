//! Bucket names, keys and prefixes from console requests, checked by the
//! store's own types before the console names them in any call.

use cairn_api::{BucketName, ObjectKey};

use crate::Ctx;
use crate::error::ConsoleError;

fn refused(e: &cairn_api::ObjectError) -> ConsoleError {
    ConsoleError::bad(e.to_string())
}

/// Parameter `bucket`, a valid bucket name.
pub fn bucket(cx: &Ctx) -> Result<BucketName, ConsoleError> {
    BucketName::new(cx.req("bucket")?).map_err(|e| refused(&e))
}

/// Parameter `key`, a valid object key.
pub fn key(cx: &Ctx) -> Result<ObjectKey, ConsoleError> {
    ObjectKey::new(cx.req("key")?).map_err(|e| refused(&e))
}

/// Parameter `prefix`: empty, or a valid key prefix.
pub fn prefix(cx: &Ctx) -> Result<String, ConsoleError> {
    match cx.param("prefix").unwrap_or_default() {
        "" => Ok(String::new()),
        p => ObjectKey::new(p)
            .map(|k| k.as_str().to_owned())
            .map_err(|e| refused(&e)),
    }
}

/// Parameter `version`, if given: a version id (letters, digits and
/// `-_.+=/`, at most 1024 bytes; the store decides whether it exists).
pub fn version(cx: &Ctx) -> Result<Option<String>, ConsoleError> {
    match cx.param("version") {
        None | Some("") => Ok(None),
        Some(v)
            if v.len() <= 1024
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.+=/".contains(&b)) =>
        {
            Ok(Some(v.to_owned()))
        }
        Some(_) => Err(ConsoleError::bad("invalid version id")),
    }
}

/// Parameters `bucket`, `key` and `version` (if given): one object or
/// one version of it.
pub fn object(cx: &Ctx) -> Result<(BucketName, ObjectKey, Option<String>), ConsoleError> {
    Ok((bucket(cx)?, key(cx)?, version(cx)?))
}
