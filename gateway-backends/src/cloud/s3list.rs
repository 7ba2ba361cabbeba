//! ListBuckets on an S3 remote, for `cairn gateway s3` without `--bucket`
//! (object_store has no bucket API): signed GETs of the service root
//! (SigV4 by reqsign, the signer OpenDAL's GCS service brings along),
//! their XML read through quick-xml's serde, continuation tokens
//! followed.

use std::time::Duration;

use reqsign_aws_v4::{EnvCredentialProvider, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, OsEnv, Signer};
use serde::Deserialize;

/// Why the remote's buckets could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListBucketsError {
    #[error("the endpoint {0:?} is not a URL")]
    Endpoint(String),
    #[error("signing the request: {0}")]
    Sign(#[from] reqsign_core::Error),
    #[error("the request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the remote answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the remote's answer is no bucket list: {0}")]
    Xml(#[from] quick_xml::DeError),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAllMyBucketsResult {
    #[serde(default)]
    buckets: Buckets,
    continuation_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct Buckets {
    #[serde(rename = "Bucket", default)]
    bucket: Vec<Bucket>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Bucket {
    name: String,
}

/// The names of every bucket the remote lists to these credentials
/// (`access` / `secret`, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
/// AWS_SESSION_TOKEN). `endpoint` defaults to AWS's for `region`.
pub async fn s3_bucket_names(
    endpoint: Option<&str>,
    region: &str,
    access: Option<&str>,
    secret: Option<&str>,
) -> Result<Vec<String>, ListBucketsError> {
    let base = match endpoint {
        Some(ep) => ep.trim_end_matches('/').to_owned(),
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let ctx = Context::new().with_env(OsEnv);
    let rs = RequestSigner::new("s3", region);
    let signer = match (access, secret) {
        (Some(a), Some(s)) => Signer::new(ctx, StaticCredentialProvider::new(a, s), rs),
        _ => Signer::new(ctx, EnvCredentialProvider::new(), rs),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = reqwest::Url::parse(&format!("{base}/"))
            .map_err(|_| ListBucketsError::Endpoint(base.clone()))?;
        url.query_pairs_mut().append_pair("max-buckets", "1000");
        if let Some(t) = &token {
            url.query_pairs_mut().append_pair("continuation-token", t);
        }
        let (mut parts, ()) = http::Request::get(url.as_str())
            .body(())
            .map_err(|_| ListBucketsError::Endpoint(base.clone()))?
            .into_parts();
        signer.sign(&mut parts, None).await?;
        let req = reqwest::Request::try_from(http::Request::from_parts(parts, Vec::<u8>::new()))?;
        let resp = client.execute(req).await?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            return Err(ListBucketsError::Refused {
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        let page: ListAllMyBucketsResult = quick_xml::de::from_str(&body)?;
        names.extend(page.buckets.bucket.into_iter().map(|b| b.name));
        match page.continuation_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(names),
        }
    }
}
