//! Who signed a query request: the caller IAM sees for the verified
//! access key and the request's session token (checked to the second).

use cairn_iam::{Caller, CallerError, Iam};
use http::StatusCode;
use s3s::{Body, S3Request};

use super::error::QueryError;

/// The caller of `req` (`None`: unsigned).
pub(crate) fn caller(iam: &Iam, req: &S3Request<Body>) -> Result<Option<Caller>, QueryError> {
    let Some(cred) = &req.credentials else {
        return Ok(None);
    };
    let token = crate::access::session_token(&req.headers, &req.uri);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match iam.caller(&cred.access_key, token.as_deref(), now) {
        Ok(c) => Ok(Some(c)),
        Err(CallerError::Expired) => Err(QueryError::new(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            "The security token included in the request is expired",
        )),
        Err(e) => {
            tracing::debug!(access_key = %cred.access_key, error = %e, "query API caller refused");
            Err(QueryError::new(
                StatusCode::FORBIDDEN,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ))
        }
    }
}
