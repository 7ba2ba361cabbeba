//! Test harness: `cairn_s3::serve` over a `MemLayer` on a loopback port,
//! driven by the real `aws-sdk-s3` client and by raw HTTP/1.1.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};
use cairn_api::ObjectLayer;
use cairn_api::mem::MemLayer;
use cairn_s3::{ReadyFn, S3Config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "cairn-test-access";
pub const SECRET_KEY: &str = "cairn-test-secret-key";
pub const REGION: &str = "us-east-1";

pub struct Server {
    pub addr: SocketAddr,
    pub ready: Arc<AtomicBool>,
    pub layer: Arc<MemLayer>,
    /// The server's IAM service (users made here govern requests).
    pub iam: Arc<cairn_iam::Iam>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let layer = Arc::new(MemLayer::new());
        let ready = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&ready);
        let ready_fn: ReadyFn = Arc::new(move || flag.load(Ordering::SeqCst));
        let (tx, rx) = oneshot::channel::<()>();
        let iam = Arc::new(
            cairn_iam::Iam::load(cairn_iam::IamConfig {
                root_access_key: ACCESS_KEY.into(),
                root_secret_key: SECRET_KEY.into(),
                account: cairn_iam::DEFAULT_ACCOUNT.into(),
                deployment_id: "test".into(),
                store: Arc::new(cairn_api::MemConfig::new()),
            })
            .await?,
        );
        let cfg = S3Config {
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            domains: vec!["localhost".into()],
            admin: None,
            metrics_token: None,
            limits: Default::default(),
            iam: Some(iam.clone()),
            oidc: None,
            audit: None,
            web: None,
            router: None,
            notify_targets: Vec::new(),
            replication: None,
        };
        let dyn_layer: Arc<dyn ObjectLayer> = layer.clone();
        let task = tokio::spawn(cairn_s3::serve(listener, dyn_layer, cfg, ready_fn, async {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            ready,
            layer,
            iam,
            stop: Some(tx),
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A path-style client with the root credential.
    pub fn client(&self) -> Client {
        client(&self.endpoint(), ACCESS_KEY, SECRET_KEY, true)
    }

    /// A virtual-host-style client on `http://localhost:PORT`; every
    /// `*.localhost` name resolves to the loopback server.
    pub fn vhost_client(&self) -> Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_with_resolver(Loopback);
        let conf = base_config(
            &format!("http://localhost:{}", self.addr.port()),
            ACCESS_KEY,
            SECRET_KEY,
        )
        .force_path_style(false)
        .http_client(http)
        .build();
        Client::from_conf(conf)
    }

    /// Stops accepting and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .context("serve did not return after shutdown")???;
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Loopback;

impl ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

fn base_config(endpoint: &str, ak: &str, sk: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ak, sk, None, None, "cairn-test"))
}

/// A path-style client with temporary credentials (`token`).
pub fn session_client(endpoint: &str, ak: &str, sk: &str, token: &str) -> Client {
    Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                ak,
                sk,
                Some(token.to_owned()),
                None,
                "cairn-test",
            ))
            .force_path_style(true)
            .build(),
    )
}

pub fn client(endpoint: &str, ak: &str, sk: &str, path_style: bool) -> Client {
    Client::from_conf(
        base_config(endpoint, ak, sk)
            .force_path_style(path_style)
            .build(),
    )
}

/// What the client saw of a failed call: HTTP status, S3 error code, message.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub fn failure<T: std::fmt::Debug, E>(
    r: Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> Failure
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => Failure {
            status: e.raw_response().map_or(0, |r| r.status().as_u16()),
            code: e.code().unwrap_or_default().to_owned(),
            message: e.message().unwrap_or_default().to_owned(),
        },
    }
}

/// A response to a raw request.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request to `addr` (`target` is the path and query,
/// `host` the Host header) and reads the whole response.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<RawResponse> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        if !n.eq_ignore_ascii_case("host") {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await??;
    parse_response(&buf, method == "HEAD")
}

/// Sends a presigned request (URL from the SDK) over a raw connection.
pub async fn raw_presigned(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Result<RawResponse> {
    let rest = uri.strip_prefix("http://").context("not an http URL")?;
    let (host, target) = rest.split_at(rest.find('/').context("no path")?);
    raw(addr, method, host, target, extra, body).await
}

fn parse_response(buf: &[u8], head: bool) -> Result<RawResponse> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head_text = std::str::from_utf8(&buf[..split])?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked && !head {
        body = dechunk(&body)?;
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_text = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Sends a SigV4-signed raw request with the root credential. The payload
/// hash (`x-amz-content-sha256`) is given as is, so bodies the SDK would
/// never produce (a chosen aws-chunked trailer, say) can be sent.
pub async fn signed(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    body: &[u8],
) -> Result<RawResponse> {
    let all = sign(addr, method, target, headers, payload_hash)?;
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    raw(addr, method, &addr.to_string(), target, &refs, body).await
}

/// The headers of a SigV4-signed request (see [`signed`]): `host`, the
/// given ones, then what signing adds.
pub fn sign(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> Result<Vec<(String, String)>> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let host = addr.to_string();
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "raw").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let mut all: Vec<(String, String)> = vec![("host".into(), host.clone())];
    all.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let url = format!("http://{host}{target}");
    let req = SignableRequest::new(
        method,
        url.as_str(),
        all.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload_hash.to_owned()),
    )?;
    let (instructions, _) = sign(req, &params)?.into_parts();
    for (k, v) in instructions.headers() {
        all.push((k.to_owned(), v.to_owned()));
    }
    Ok(all)
}

/// An unsigned aws-chunked body (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`) with
/// one trailer line.
pub fn aws_chunked(data: &[u8], chunk: usize, trailer: (&str, &str)) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0\r\n{}:{}\r\n\r\n", trailer.0, trailer.1).as_bytes());
    out
}
