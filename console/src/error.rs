//! The console's errors and the one mapping of each to an HTTP answer
//! (a JSON body `{"code": ..., "message": ...}` the pages show).

use http::StatusCode;

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session cookie, or one that does not open, has expired or was
    /// logged out.
    #[error("not logged in")]
    NoSession,
    /// A state-changing request without the session's CSRF token, or from
    /// another origin.
    #[error("cross-site request refused: {0}")]
    Csrf(&'static str),
    /// An SSO login refused on the console's side (state, nonce, code,
    /// no pending login): the reason's code.
    #[error("single sign-on refused: {0}")]
    Sso(&'static str),
    /// A request the console does not understand (bad parameter, name the
    /// store's types refuse, body too big).
    #[error("{0}")]
    BadRequest(String),
    /// No such console call.
    #[error("no such console call")]
    NotFound,
    /// The server's API refused or failed the call the console made for
    /// the user: its status and S3/STS/admin error code, passed on.
    #[error("{code}: {message}")]
    Upstream {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// The console could not reach its own server or read its answer.
    #[error("calling the server's API failed: {0}")]
    Transport(String),
}

impl ConsoleError {
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// The status the browser gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoSession => StatusCode::UNAUTHORIZED,
            Self::Csrf(_) | Self::Sso(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Upstream { status, .. } => *status,
            Self::Transport(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Self::NoSession => "NoSession",
            Self::Csrf(_) => "CsrfRefused",
            Self::Sso(code) => code,
            Self::BadRequest(_) => "BadRequest",
            Self::NotFound => "NotFound",
            Self::Upstream { code, .. } => code,
            Self::Transport(_) => "Transport",
        }
    }

    /// The error of an SDK call: the server's status and code when it
    /// answered, else a transport failure.
    pub(crate) fn sdk<E>(
        e: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        match &e {
            SdkError::ServiceError(se) => {
                let status = StatusCode::from_u16(se.raw().status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                let err = se.err();
                Self::Upstream {
                    status,
                    code: err.code().unwrap_or("Unknown").to_owned(),
                    message: err.message().unwrap_or_default().to_owned(),
                }
            }
            _ => {
                let detail = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                tracing::error!(error = %detail, "console: the server's S3 API could not be called");
                Self::Transport(detail)
            }
        }
    }
}
