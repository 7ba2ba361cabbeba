//! The lean client of `cairn bench s3 --lean`: hyper's pooled HTTP/1.1
//! client and one SigV4 header signature per request (aws-sigv4,
//! `UNSIGNED-PAYLOAD`), nothing more. The SDK's layers (interceptors,
//! retries, endpoint resolution, response parsing) cost more CPU per
//! request than a small GET costs the server; on a machine where client and
//! server share the cores that measured the client.

use std::time::SystemTime;

use anyhow::{Context as _, anyhow};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What S3 leaves unencoded in a key's path: the unreserved characters and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub(crate) struct Lean {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port`, no trailing slash.
    base: String,
    host: String,
    region: String,
    identity: Identity,
}

/// A GET's answer body, read by the caller frame by frame.
pub(crate) type Body = hyper::body::Incoming;

impl Lean {
    /// A client of `endpoint` (http:// only) keeping up to `pool` idle
    /// connections (one per worker).
    pub(crate) fn new(
        endpoint: &str,
        (access_key, secret_key): (&str, &str),
        pool: usize,
    ) -> anyhow::Result<Self> {
        let url = url::Url::parse(endpoint).with_context(|| format!("--endpoint {endpoint}"))?;
        anyhow::ensure!(url.scheme() == "http", "--lean speaks http:// only");
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => anyhow::bail!("--endpoint has no host"),
        };
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .build(http);
        let identity = aws_credential_types::Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "cairn-bench",
        )
        .into();
        Ok(Self {
            client,
            base: format!("http://{host}"),
            host,
            region: "us-east-1".into(),
            identity,
        })
    }

    /// A signed request for `bucket/key`, the body unsigned.
    fn request(
        &self,
        method: &str,
        (bucket, key): (&str, &str),
        body: Bytes,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let uri = format!(
            "{}/{}/{}",
            self.base,
            utf8_percent_encode(bucket, KEY),
            utf8_percent_encode(key, KEY)
        );
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| anyhow!("signing: {e}"))?
            .into();
        let headers = [("host", self.host.as_str())];
        let signable = SignableRequest::new(
            method,
            uri.as_str(),
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| anyhow!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| anyhow!("signing: {e}"))?
            .into_parts();
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        for (k, v) in instructions.headers() {
            b = b.header(k, v);
        }
        Ok(b.body(Full::new(body))?)
    }

    /// Sends a request and fails on any status but 200, with the server's
    /// answer in the error.
    async fn send(&self, req: http::Request<Full<Bytes>>, what: &str) -> anyhow::Result<Body> {
        let resp = self
            .client
            .request(req)
            .await
            .with_context(|| format!("{what}: sending"))?;
        let status = resp.status();
        if status != http::StatusCode::OK {
            let text = resp
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            anyhow::bail!("{what}: {status}: {}", text.trim());
        }
        Ok(resp.into_body())
    }

    pub(crate) async fn put(&self, bucket: &str, key: &str, body: Bytes) -> anyhow::Result<()> {
        let req = self.request("PUT", (bucket, key), body)?;
        let mut rest = self.send(req, &format!("PUT {key}")).await?;
        // the (empty) answer is read so the connection goes back to the pool
        while rest.frame().await.transpose()?.is_some() {}
        Ok(())
    }

    /// GETs `bucket/key`; the caller reads the body.
    pub(crate) async fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Body> {
        let req = self.request("GET", (bucket, key), Bytes::new())?;
        self.send(req, &format!("GET {key}")).await
    }
}

/// The next data chunk of a body, skipping trailers; None at its end.
pub(crate) async fn next_chunk(body: &mut Body) -> anyhow::Result<Option<Bytes>> {
    while let Some(frame) = body.frame().await.transpose()? {
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}
