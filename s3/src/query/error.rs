//! Query-protocol errors: the code, message and HTTP status AWS gives
//! each (botocore's service models: IAM's NoSuchEntity is 404,
//! EntityAlreadyExists / DeleteConflict / LimitExceeded 409, ...).

use cairn_iam::{IamError, IamServiceError};
use http::StatusCode;

/// An error answered as `<ErrorResponse><Error>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl QueryError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        QueryError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `Sender` for the client's mistakes, `Receiver` for the server's.
    pub(crate) fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }

    pub(crate) fn missing(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidInput", message)
    }

    pub(crate) fn no_such(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NoSuchEntity", message)
    }

    pub(crate) fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", message)
    }

    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub(crate) fn invalid_action(action: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {action} for version NO_VERSION_SPECIFIED"),
        )
    }

    pub(crate) fn service_failure() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }
}

impl From<IamError> for QueryError {
    fn from(e: IamError) -> Self {
        let message = e.to_string();
        match e {
            IamError::NoSuchEntity { .. } => Self::no_such(message),
            IamError::EntityAlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, "EntityAlreadyExists", message)
            }
            IamError::DeleteConflict(_) => {
                Self::new(StatusCode::CONFLICT, "DeleteConflict", message)
            }
            IamError::LimitExceeded(_) => Self::new(StatusCode::CONFLICT, "LimitExceeded", message),
            IamError::InvalidInput(_) => Self::invalid_input(message),
            IamError::MalformedPolicyDocument(_) => Self::malformed_policy(message),
        }
    }
}

impl From<cairn_iam::PolicyError> for QueryError {
    fn from(e: cairn_iam::PolicyError) -> Self {
        Self::malformed_policy(e.to_string())
    }
}

impl From<IamServiceError> for QueryError {
    fn from(e: IamServiceError) -> Self {
        match e {
            IamServiceError::Refused(e) => e.into(),
            // the shared store (a federation's etcd) is gone: say so
            IamServiceError::Storage(e @ cairn_api::ObjectError::BackendUnavailable { .. }) => {
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    e.to_string(),
                )
            }
            e => {
                tracing::error!(error = %e, "IAM change failed");
                Self::service_failure()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_errors_get_aws_codes_and_statuses() {
        let e: QueryError = IamError::NoSuchEntity {
            kind: "user",
            name: "x".into(),
        }
        .into();
        assert_eq!(
            (e.status.as_u16(), e.code, e.fault()),
            (404, "NoSuchEntity", "Sender")
        );
        let e: QueryError = IamError::LimitExceeded("AccessKeysPerUser: 2").into();
        assert_eq!((e.status.as_u16(), e.code), (409, "LimitExceeded"));
        let e: QueryError = IamError::DeleteConflict("x").into();
        assert_eq!((e.status.as_u16(), e.code), (409, "DeleteConflict"));
        assert_eq!(QueryError::service_failure().fault(), "Receiver");
    }
}
