//! object_store errors as `ObjectError`s: one place for every cloud
//! backend. A backend that cannot be reached (or refuses our credentials)
//! is a 503, never a 404 or a partial object.

use cairn_api::ObjectError;

/// `backend` names the gateway ("the GCS gateway") in the 503's message.
pub(crate) fn cloud_error(
    backend: &'static str,
    e: object_store::Error,
    bucket: &str,
    key: &str,
) -> ObjectError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => ObjectError::no_such_key(&bucket, &key),
        E::Precondition { .. } | E::AlreadyExists { .. } => ObjectError::PreconditionFailed,
        E::NotModified { .. } => ObjectError::PreconditionFailed,
        // what a remote cannot do, named (gcs.rs `Gap`)
        E::NotSupported { source } if source.is::<super::gcs::Gap>() => {
            match source.downcast::<super::gcs::Gap>() {
                Ok(gap) => ObjectError::NotImplemented {
                    what: super::named(backend, gap.0),
                },
                Err(other) => unavailable(backend, bucket, key, &other),
            }
        }
        other => unavailable(backend, bucket, key, &other),
    }
}

fn unavailable(
    backend: &'static str,
    bucket: &str,
    key: &str,
    e: &dyn std::fmt::Display,
) -> ObjectError {
    tracing::error!(bucket, key, error = %e, "the cloud backend failed");
    ObjectError::BackendUnavailable {
        backend,
        reason: "the remote store failed or cannot be reached",
    }
}
