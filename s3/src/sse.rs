//! Server-side encryption on the wire: the SSE request headers parsed into
//! cairn-api options, the response headers S3 answers with, the "SSE-C only
//! over TLS" rule, and the bucket default encryption operations.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_api::{BucketEncryption, CustomerKey, Encryption, ObjectError, SseRequest};
use http::Extensions;
use s3s::dto::{self, ServerSideEncryption};
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::bucket_name;
use crate::errors::{IntoS3 as _, invalid_argument, s3_error};
use crate::service::CairnS3;

/// The algorithm of SSE-S3 and of SSE-C.
const AES256: &str = "AES256";
/// The algorithm of SSE-KMS.
const AWS_KMS: &str = "aws:kms";

/// How a request reached the server, put into every request's extensions by
/// the hyper service (one value per connection), where s3s hooks
/// (`S3Access`: `cx.extensions_mut().get::<ConnInfo>()`) and operations
/// read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS (served with a certificate,
    /// crate::tls; `aws:SecureTransport`). A TLS proxy in front of a plain
    /// port is not seen.
    pub tls: bool,
}

impl ConnInfo {
    /// A customer key may travel over TLS, or over a connection that never
    /// leaves this machine.
    fn may_carry_customer_key(&self) -> bool {
        self.tls || self.peer.ip().to_canonical().is_loopback()
    }
}

/// Refuses SSE-C headers on a plain-HTTP connection from another machine
/// (S3: 400 InvalidRequest): the key would have crossed the network in the
/// clear. A request without connection info (not served by `serve`) is
/// refused too.
fn check_transport(ext: &Extensions) -> S3Result<()> {
    match ext.get::<ConnInfo>() {
        Some(c) if c.may_carry_customer_key() => Ok(()),
        _ => Err(s3_error(ObjectError::SseCustomerKeyInsecure)),
    }
}

/// The three `x-amz-[copy-source-]server-side-encryption-customer-*`
/// headers of one request.
#[derive(Clone, Copy, Default)]
pub(crate) struct CustomerHeaders<'a> {
    pub algorithm: Option<&'a str>,
    pub key: Option<&'a str>,
    pub key_md5: Option<&'a str>,
}

impl<'a> CustomerHeaders<'a> {
    pub(crate) fn new(
        algorithm: Option<&'a String>,
        key: Option<&'a String>,
        key_md5: Option<&'a String>,
    ) -> Self {
        Self {
            algorithm: algorithm.map(String::as_str),
            key: key.map(String::as_str),
            key_md5: key_md5.map(String::as_str),
        }
    }

    fn is_empty(&self) -> bool {
        self.algorithm.is_none() && self.key.is_none() && self.key_md5.is_none()
    }

    /// The customer key the headers carry, if any. `prefix` names the
    /// header family in error messages.
    pub(crate) fn parse(&self, ext: &Extensions, prefix: &str) -> S3Result<Option<CustomerKey>> {
        if self.is_empty() {
            return Ok(None);
        }
        check_transport(ext)?;
        let Some(algorithm) = self.algorithm else {
            return Err(invalid_argument(format!(
                "Requests specifying Server Side Encryption with Customer provided keys must \
                 provide a valid encryption algorithm ({prefix}-customer-algorithm)."
            )));
        };
        let Some(key) = self.key else {
            return Err(invalid_argument(format!(
                "Requests specifying Server Side Encryption with Customer provided keys must \
                 provide an appropriate secret key ({prefix}-customer-key)."
            )));
        };
        CustomerKey::from_headers(algorithm, key, self.key_md5)
            .map(Some)
            .s3()
    }
}

/// The SSE headers of a request that writes an object (PutObject,
/// CopyObject's destination, CreateMultipartUpload).
#[derive(Clone, Copy, Default)]
pub(crate) struct SseHeaders<'a> {
    pub sse: Option<&'a ServerSideEncryption>,
    pub kms_key_id: Option<&'a str>,
    /// `x-amz-server-side-encryption-context`: base64 of a JSON object.
    pub kms_context: Option<&'a str>,
    pub customer: CustomerHeaders<'a>,
}

/// `x-amz-server-side-encryption` and its companions.
pub(crate) const SSE_PREFIX: &str = "x-amz-server-side-encryption";
/// The SSE-C headers naming a copy's source key.
pub(crate) const COPY_SOURCE_PREFIX: &str = "x-amz-copy-source-server-side-encryption";

impl SseHeaders<'_> {
    /// What the request asks for: `None` when it names no encryption (the
    /// bucket's default then applies).
    pub(crate) fn parse(&self, ext: &Extensions) -> S3Result<Option<SseRequest>> {
        let customer = self.customer.parse(ext, SSE_PREFIX)?;
        let kms_key_id = self.kms_key_id.map(str::trim);
        if let Some(k) = customer {
            if self.sse.is_some() || kms_key_id.is_some() || self.kms_context.is_some() {
                return Err(invalid_argument(
                    "Server Side Encryption with Customer provided key is incompatible with the \
                     encryption method specified (x-amz-server-side-encryption and the \
                     x-amz-server-side-encryption-customer-* headers were both sent).",
                ));
            }
            return Ok(Some(SseRequest::Customer(k)));
        }
        let needs_kms = || {
            invalid_argument(
                "x-amz-server-side-encryption-aws-kms-key-id and \
                 x-amz-server-side-encryption-context require \
                 x-amz-server-side-encryption: aws:kms",
            )
        };
        let Some(sse) = self.sse else {
            if kms_key_id.is_some() || self.kms_context.is_some() {
                return Err(needs_kms());
            }
            return Ok(None);
        };
        match sse.as_str() {
            AES256 => {
                if kms_key_id.is_some() || self.kms_context.is_some() {
                    return Err(needs_kms());
                }
                Ok(Some(SseRequest::S3))
            }
            AWS_KMS => Ok(Some(SseRequest::Kms {
                key_id: kms_key_id.filter(|k| !k.is_empty()).map(str::to_owned),
                context: self
                    .kms_context
                    .map(kms_context)
                    .transpose()?
                    .unwrap_or_default(),
            })),
            other => Err(s3_error(ObjectError::InvalidEncryptionAlgorithm {
                algorithm: other.to_owned(),
            })),
        }
    }
}

/// Decodes `x-amz-server-side-encryption-context`: base64 of a JSON object
/// whose values are strings.
fn kms_context(v: &str) -> S3Result<BTreeMap<String, String>> {
    let bad = |why: &str| {
        invalid_argument(format!(
            "x-amz-server-side-encryption-context must be the base64 encoding of a JSON object \
             of strings: {why}"
        ))
    };
    let json = B64.decode(v.trim()).map_err(|_| bad("not base64"))?;
    serde_json::from_slice::<BTreeMap<String, String>>(&json).map_err(|e| bad(&e.to_string()))
}

/// The SSE response headers of an operation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SseOut {
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub ssekms_key_id: Option<String>,
    pub sse_customer_algorithm: Option<String>,
    pub sse_customer_key_md5: Option<String>,
}

impl SseOut {
    /// From what an object is encrypted with. For SSE-C the MD5 echoed is
    /// that of the key the request presented (else the one the layer knows).
    pub(crate) fn new(enc: Option<&Encryption>, presented: Option<&CustomerKey>) -> Self {
        let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
        match enc {
            None => Self::default(),
            Some(Encryption::S3) => Self {
                server_side_encryption: Some(ServerSideEncryption::from_static(AES256)),
                ..Self::default()
            },
            Some(Encryption::Kms { key_id }) => Self {
                server_side_encryption: Some(ServerSideEncryption::from_static(AWS_KMS)),
                ssekms_key_id: non_empty(key_id),
                ..Self::default()
            },
            Some(Encryption::Customer { key_md5 }) => Self {
                sse_customer_algorithm: Some(AES256.to_owned()),
                sse_customer_key_md5: presented
                    .map(CustomerKey::md5_base64)
                    .or_else(|| non_empty(key_md5)),
                ..Self::default()
            },
        }
    }

    /// From what a request asked for (when the layer reports nothing).
    pub(crate) fn requested(req: Option<&SseRequest>) -> Self {
        match req {
            None => Self::default(),
            Some(SseRequest::Customer(k)) => Self::new(
                Some(&Encryption::Customer {
                    key_md5: k.md5_base64(),
                }),
                Some(k),
            ),
            Some(r) => Self::new(Some(&r.encryption()), None),
        }
    }
}

/// Copies the four SSE response fields into an s3s output.
#[macro_export]
#[doc(hidden)]
macro_rules! set_sse {
    ($out:expr, $sse:expr) => {{
        let s: $crate::sse::SseOut = $sse;
        $out.server_side_encryption = s.server_side_encryption;
        $out.ssekms_key_id = s.ssekms_key_id;
        $out.sse_customer_algorithm = s.sse_customer_algorithm;
        $out.sse_customer_key_md5 = s.sse_customer_key_md5;
    }};
}

// ---------------------------------------------------------------------------
// Bucket default encryption

/// The one rule of a `ServerSideEncryptionConfiguration` as a bucket default.
fn bucket_encryption(cfg: dto::ServerSideEncryptionConfiguration) -> S3Result<BucketEncryption> {
    let mut rules = cfg.rules.into_iter();
    let (Some(rule), None) = (rules.next(), rules.next()) else {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The server-side encryption configuration must hold exactly one Rule.",
        ));
    };
    let by_default = rule
        .apply_server_side_encryption_by_default
        .ok_or_else(|| {
            invalid_argument("The encryption rule must have an ApplyServerSideEncryptionByDefault.")
        })?;
    let key_id = by_default
        .kms_master_key_id
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty());
    match by_default.sse_algorithm.as_str() {
        AES256 => match key_id {
            None => Ok(BucketEncryption::S3),
            Some(_) => Err(invalid_argument(
                "KMSMasterKeyID is only allowed with SSEAlgorithm aws:kms.",
            )),
        },
        AWS_KMS => Ok(BucketEncryption::Kms { key_id }),
        other => Err(invalid_argument(format!(
            "SSEAlgorithm {other:?} is not supported as a bucket default: use AES256 (SSE-S3) or \
             aws:kms (SSE-KMS); customer keys (SSE-C) cannot be a bucket default."
        ))),
    }
}

fn configuration(enc: &BucketEncryption) -> dto::ServerSideEncryptionConfiguration {
    let (alg, key) = match enc {
        BucketEncryption::S3 => (AES256, None),
        BucketEncryption::Kms { key_id } => (AWS_KMS, key_id.clone()),
    };
    dto::ServerSideEncryptionConfiguration {
        rules: vec![dto::ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(dto::ServerSideEncryptionByDefault {
                kms_master_key_id: key,
                sse_algorithm: ServerSideEncryption::from_static(alg),
            }),
            bucket_key_enabled: Some(false),
        }],
    }
}

impl CairnS3 {
    pub(crate) async fn do_put_bucket_encryption(
        &self,
        req: S3Request<dto::PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<dto::PutBucketEncryptionOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let enc = bucket_encryption(input.server_side_encryption_configuration)?;
        self.layer
            .put_bucket_encryption(&bucket, Some(enc.clone()))
            .await
            .s3()?;
        tracing::info!(bucket = %bucket, encryption = ?enc, "bucket default encryption set");
        Ok(S3Response::new(dto::PutBucketEncryptionOutput::default()))
    }

    pub(crate) async fn do_get_bucket_encryption(
        &self,
        req: S3Request<dto::GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<dto::GetBucketEncryptionOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let Some(enc) = self.layer.get_bucket_encryption(&bucket).await.s3()? else {
            let mut e = S3Error::with_message(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "The server side encryption configuration was not found",
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            return Err(e);
        };
        Ok(S3Response::new(dto::GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(configuration(&enc)),
        }))
    }

    pub(crate) async fn do_delete_bucket_encryption(
        &self,
        req: S3Request<dto::DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketEncryptionOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer.put_bucket_encryption(&bucket, None).await.s3()?;
        tracing::info!(bucket = %bucket, "bucket default encryption removed");
        Ok(S3Response::new(dto::DeleteBucketEncryptionOutput::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(peer: &str) -> Extensions {
        let mut e = Extensions::new();
        e.insert(ConnInfo {
            peer: peer.parse().expect("address"),
            tls: false,
        });
        e
    }

    fn key_headers(key: &[u8; 32]) -> (String, String) {
        let k = CustomerKey::new(*key);
        (B64.encode(key), k.md5_base64())
    }

    fn code(e: &S3Error) -> (String, u16) {
        (
            e.code().as_str().to_owned(),
            e.status_code().map_or(0, |s| s.as_u16()),
        )
    }

    #[test]
    fn parses_modes() {
        let local = ext("127.0.0.1:5000");
        let aes = ServerSideEncryption::from_static(AES256);
        let kms = ServerSideEncryption::from_static(AWS_KMS);
        let none = SseHeaders::default();
        assert_eq!(none.parse(&local).ok(), Some(None));
        let s3 = SseHeaders {
            sse: Some(&aes),
            ..Default::default()
        };
        assert_eq!(s3.parse(&local).ok(), Some(Some(SseRequest::S3)));

        let ctx = B64.encode(br#"{"a":"1","b":"2"}"#);
        let k = SseHeaders {
            sse: Some(&kms),
            kms_key_id: Some("my-key"),
            kms_context: Some(&ctx),
            ..Default::default()
        };
        let want = SseRequest::Kms {
            key_id: Some("my-key".into()),
            context: [("a".into(), "1".into()), ("b".into(), "2".into())].into(),
        };
        assert_eq!(k.parse(&local).ok(), Some(Some(want)));

        let (kb, md5) = key_headers(&[3; 32]);
        let c = SseHeaders {
            customer: CustomerHeaders {
                algorithm: Some(AES256),
                key: Some(&kb),
                key_md5: Some(&md5),
            },
            ..Default::default()
        };
        assert_eq!(
            c.parse(&local).ok(),
            Some(Some(SseRequest::Customer(CustomerKey::new([3; 32]))))
        );
        // IPv6 loopback, and IPv4 loopback mapped into IPv6, are local.
        assert!(c.parse(&ext("[::1]:80")).is_ok());
        assert!(c.parse(&ext("[::ffff:127.0.0.1]:80")).is_ok());
    }

    #[test]
    fn refuses_bad_combinations() {
        let local = ext("127.0.0.1:5000");
        let aes = ServerSideEncryption::from_static(AES256);
        let bogus = ServerSideEncryption::from_static("AES128");
        let (kb, _) = key_headers(&[3; 32]);
        let cust = CustomerHeaders {
            algorithm: Some(AES256),
            key: Some(&kb),
            key_md5: None,
        };

        let e = SseHeaders {
            sse: Some(&bogus),
            ..Default::default()
        }
        .parse(&local)
        .expect_err("refused");
        assert_eq!(code(&e), ("InvalidEncryptionAlgorithmError".into(), 400));

        let e = SseHeaders {
            sse: Some(&aes),
            customer: cust,
            ..Default::default()
        }
        .parse(&local)
        .expect_err("refused");
        assert_eq!(code(&e), ("InvalidArgument".into(), 400));

        for (key_id, ctx) in [(Some("k"), None), (None, Some("e30="))] {
            let e = SseHeaders {
                sse: Some(&aes),
                kms_key_id: key_id,
                kms_context: ctx,
                ..Default::default()
            }
            .parse(&local)
            .expect_err("refused");
            assert_eq!(code(&e), ("InvalidArgument".into(), 400));
        }

        let kms = ServerSideEncryption::from_static(AWS_KMS);
        for ctx in ["!!", &B64.encode(b"[1]"), &B64.encode(br#"{"a":1}"#)] {
            let e = SseHeaders {
                sse: Some(&kms),
                kms_context: Some(ctx),
                ..Default::default()
            }
            .parse(&local)
            .expect_err("refused");
            assert_eq!(code(&e), ("InvalidArgument".into(), 400), "{ctx}");
        }

        // Key without algorithm, algorithm without key.
        let e = CustomerHeaders {
            algorithm: None,
            key: Some(&kb),
            key_md5: None,
        }
        .parse(&local, SSE_PREFIX)
        .expect_err("refused");
        assert_eq!(code(&e), ("InvalidArgument".into(), 400));
        let e = CustomerHeaders {
            algorithm: Some(AES256),
            key: None,
            key_md5: None,
        }
        .parse(&local, SSE_PREFIX)
        .expect_err("refused");
        assert_eq!(code(&e), ("InvalidArgument".into(), 400));
    }

    #[test]
    fn customer_key_needs_a_safe_transport() {
        let (kb, _) = key_headers(&[3; 32]);
        let cust = CustomerHeaders {
            algorithm: Some(AES256),
            key: Some(&kb),
            key_md5: None,
        };
        let e = cust
            .parse(&ext("192.0.2.7:5000"), SSE_PREFIX)
            .expect_err("refused");
        assert_eq!(code(&e), ("InvalidRequest".into(), 400));
        let e = cust
            .parse(&Extensions::new(), SSE_PREFIX)
            .expect_err("refused");
        assert_eq!(code(&e), ("InvalidRequest".into(), 400));
        let mut tls = Extensions::new();
        tls.insert(ConnInfo {
            peer: "192.0.2.7:5000".parse().expect("address"),
            tls: true,
        });
        assert!(cust.parse(&tls, SSE_PREFIX).is_ok());
        // No SSE-C header: no transport rule.
        assert!(
            CustomerHeaders::default()
                .parse(&ext("192.0.2.7:5000"), SSE_PREFIX)
                .is_ok()
        );
    }

    #[test]
    fn response_headers() {
        let k = CustomerKey::new([9; 32]);
        let out = SseOut::new(
            Some(&Encryption::Customer {
                key_md5: String::new(),
            }),
            Some(&k),
        );
        assert_eq!(out.sse_customer_algorithm.as_deref(), Some("AES256"));
        assert_eq!(out.sse_customer_key_md5, Some(k.md5_base64()));
        assert!(out.server_side_encryption.is_none());

        let out = SseOut::new(
            Some(&Encryption::Kms {
                key_id: "k1".into(),
            }),
            None,
        );
        assert_eq!(
            out.server_side_encryption.as_ref().map(|s| s.as_str()),
            Some("aws:kms")
        );
        assert_eq!(out.ssekms_key_id.as_deref(), Some("k1"));
        assert_eq!(SseOut::new(None, Some(&k)), SseOut::default());
        assert_eq!(
            SseOut::requested(Some(&SseRequest::S3))
                .server_side_encryption
                .map(|s| s.as_str().to_owned())
                .as_deref(),
            Some("AES256")
        );
    }

    #[test]
    fn bucket_configuration() {
        let rule = |alg: &'static str, key: Option<&str>| dto::ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(dto::ServerSideEncryptionByDefault {
                kms_master_key_id: key.map(str::to_owned),
                sse_algorithm: ServerSideEncryption::from_static(alg),
            }),
            bucket_key_enabled: None,
        };
        let cfg = |rules| dto::ServerSideEncryptionConfiguration { rules };
        assert_eq!(
            bucket_encryption(cfg(vec![rule(AES256, None)])).ok(),
            Some(BucketEncryption::S3)
        );
        assert_eq!(
            bucket_encryption(cfg(vec![rule(AWS_KMS, Some("k"))])).ok(),
            Some(BucketEncryption::Kms {
                key_id: Some("k".into())
            })
        );
        for bad in [
            cfg(vec![]),
            cfg(vec![rule(AES256, None), rule(AES256, None)]),
            cfg(vec![rule(AES256, Some("k"))]),
            cfg(vec![rule("SSE-C", None)]),
            cfg(vec![dto::ServerSideEncryptionRule::default()]),
        ] {
            let e = bucket_encryption(bad).expect_err("refused");
            assert_eq!(e.status_code().map(|s| s.as_u16()), Some(400));
        }
        let back = configuration(&BucketEncryption::Kms {
            key_id: Some("k".into()),
        });
        assert_eq!(
            bucket_encryption(back).ok(),
            Some(BucketEncryption::Kms {
                key_id: Some("k".into())
            })
        );
    }
}
