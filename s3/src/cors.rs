//! CORS: Put/Get/DeleteBucketCors, and the front's side of it: preflight
//! `OPTIONS` requests answered from the bucket's rules (unauthenticated, as
//! browsers send them without credentials) and the `Access-Control-*`
//! headers on the responses to requests that carry an `Origin` (signed,
//! presigned, form uploads and error answers alike). The rules and their
//! matching: `cairn_api::cors`.

use std::sync::Arc;

use cairn_api::cors::{self as rules, CorsConfig, CorsGrant, CorsRule};
use cairn_api::{BucketChange, BucketName, ObjectError, ObjectLayer};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use s3s::dto::*;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use tracing::{debug, error};

use crate::convert::bucket_name;
use crate::errors::{IntoS3 as _, s3_error};
use crate::host::Domains;
use crate::service::CairnS3;

/// The operation name preflights are counted and logged under.
pub(crate) const PREFLIGHT_OPERATION: &str = "PreflightRequest";

const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

fn rule_in(r: CORSRule) -> CorsRule {
    CorsRule {
        id: r.id,
        allowed_origins: r.allowed_origins,
        allowed_methods: r.allowed_methods,
        allowed_headers: r.allowed_headers.unwrap_or_default(),
        expose_headers: r.expose_headers.unwrap_or_default(),
        max_age_seconds: r.max_age_seconds,
    }
}

fn rule_out(r: &CorsRule) -> CORSRule {
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    CORSRule {
        id: r.id.clone(),
        allowed_origins: r.allowed_origins.clone(),
        allowed_methods: r.allowed_methods.clone(),
        allowed_headers: some(&r.allowed_headers),
        expose_headers: some(&r.expose_headers),
        max_age_seconds: r.max_age_seconds,
    }
}

impl CairnS3 {
    pub(crate) async fn do_get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let cors = cfg.cors.ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::NoSuchCORSConfiguration,
                "The CORS configuration does not exist",
            )
        })?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(cors.rules.iter().map(rule_out).collect()),
        }))
    }

    pub(crate) async fn do_put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let cors = CorsConfig {
            rules: input
                .cors_configuration
                .cors_rules
                .into_iter()
                .map(rule_in)
                .collect(),
        };
        cors.validate().map_err(s3_error)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Cors(Some(cors)))
            .await
            .s3()?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    pub(crate) async fn do_delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Cors(None))
            .await
            .s3()?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }
}

/// A request to a bucket as CORS sees it.
#[derive(Debug, Clone)]
pub(crate) struct CorsRequest {
    /// The bucket named (virtual host or first path segment).
    bucket: String,
    /// The `Origin` header (`None`: not from a browser page, no CORS).
    origin: Option<String>,
    method: Method,
    /// An `OPTIONS` request: a preflight, answered by the front alone.
    pub(crate) preflight: bool,
    /// `Access-Control-Request-Method` of a preflight.
    request_method: Option<String>,
    /// `Access-Control-Request-Headers` of a preflight.
    request_headers: Vec<String>,
}

impl CorsRequest {
    /// `None`: the request names no bucket, or is neither a preflight nor
    /// from a page (no `Origin`).
    pub(crate) fn of<B>(req: &Request<B>, domains: Option<&Domains>) -> Option<Self> {
        let headers = req.headers();
        let preflight = req.method() == Method::OPTIONS;
        let origin = text(headers, &header::ORIGIN);
        if !preflight && origin.is_none() {
            return None;
        }
        let bucket = crate::precheck::bucket_of(req.uri(), headers, domains)?;
        Some(Self {
            bucket,
            origin,
            method: req.method().clone(),
            preflight,
            request_method: text(headers, &header::ACCESS_CONTROL_REQUEST_METHOD),
            request_headers: headers
                .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(rules::request_headers)
                .collect(),
        })
    }
}

fn text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The front's CORS answers (it reads the rules from the layer itself:
/// preflights carry no credentials, and the headers do not depend on
/// who asks).
#[derive(Clone)]
pub(crate) struct CorsFront {
    layer: Arc<dyn ObjectLayer>,
}

/// What the bucket's rules are, as far as CORS cares.
enum Rules {
    Some(CorsConfig),
    /// No rules, or no such bucket (a preflight does not tell them apart).
    None,
    /// The store failed.
    Failed(ObjectError),
}

impl CorsFront {
    pub(crate) fn new(layer: Arc<dyn ObjectLayer>) -> Self {
        Self { layer }
    }

    async fn rules(&self, bucket: &str) -> Rules {
        let Ok(name) = BucketName::new(bucket) else {
            return Rules::None;
        };
        match self.layer.get_bucket_config(&name).await {
            Ok(c) => c.cors.map_or(Rules::None, Rules::Some),
            Err(ObjectError::NoSuchBucket { .. }) => Rules::None,
            Err(e) => Rules::Failed(e),
        }
    }

    /// The answer to a preflight.
    pub(crate) async fn preflight(&self, req: &CorsRequest) -> Response<Body> {
        let Some(origin) = &req.origin else {
            return answer(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Origin request header needed.",
            );
        };
        let Some(method) = &req.request_method else {
            return answer(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Access-Control-Request-Method header needed.",
            );
        };
        if !rules::METHODS.contains(&method.as_str()) {
            return answer(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                // the client's text, escaped for the XML body
                &format!(
                    "Invalid Access-Control-Request-Method: {}",
                    method
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                ),
            );
        }
        let cfg = match self.rules(&req.bucket).await {
            Rules::Some(c) => c,
            Rules::None => {
                return answer(
                    StatusCode::FORBIDDEN,
                    "CORSResponse",
                    "CORS is not enabled for this bucket.",
                );
            }
            Rules::Failed(e) => return failed(e),
        };
        match cfg.preflight(origin, method, &req.request_headers) {
            Some(grant) => {
                let mut resp = Response::new(Body::empty());
                set_headers(resp.headers_mut(), &grant, true);
                resp
            }
            None => {
                debug!(%origin, %method, headers = ?req.request_headers, bucket = %req.bucket, "CORS preflight refused");
                answer(
                    StatusCode::FORBIDDEN,
                    "CORSResponse",
                    "This CORS request is not allowed. This is usually because the evalution of \
                     Origin, request method / Access-Control-Request-Method or \
                     Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                )
            }
        }
    }

    /// Adds the `Access-Control-*` headers a rule grants to the response
    /// of a request from a page (none when no rule admits it: the
    /// browser then keeps the answer from the page).
    pub(crate) async fn decorate(&self, req: &CorsRequest, resp: &mut Response<Body>) {
        let Some(origin) = &req.origin else { return };
        let Rules::Some(cfg) = self.rules(&req.bucket).await else {
            return;
        };
        let headers = resp.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static(VARY));
        if let Some(grant) = cfg.actual(origin, req.method.as_str()) {
            set_headers(headers, &grant, false);
        }
    }
}

fn set_headers(headers: &mut HeaderMap, grant: &CorsGrant, preflight: bool) {
    let mut put = |name: HeaderName, value: &str| {
        // an origin with bytes a header cannot hold was not matched by a
        // rule anyway (rules are header-safe text); skipped, not a panic
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put(header::ACCESS_CONTROL_ALLOW_ORIGIN, &grant.allow_origin);
    put(header::ACCESS_CONTROL_ALLOW_METHODS, &grant.allow_methods);
    if grant.credentials {
        put(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    if let Some(h) = &grant.allow_headers {
        put(header::ACCESS_CONTROL_ALLOW_HEADERS, h);
    }
    if let Some(h) = &grant.expose_headers {
        put(header::ACCESS_CONTROL_EXPOSE_HEADERS, h);
    }
    if let Some(age) = grant.max_age {
        put(header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
    }
    if preflight {
        put(header::VARY, VARY);
    }
}

/// An S3 XML error answered by the front.
fn answer(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    crate::server::s3_error(status, code, message, false)
}

fn failed(e: ObjectError) -> Response<Body> {
    error!(error = %e, "CORS rules cannot be read");
    let e = s3_error(e);
    let status = e.status_code().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer(
        status,
        e.code().as_str(),
        e.message()
            .unwrap_or("We encountered an internal error. Please try again."),
    )
}
