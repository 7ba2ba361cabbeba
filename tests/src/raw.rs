//! A minimal HTTP/1.1 client on a raw `TcpStream`, with optional SigV4
//! signing (aws-sigv4, no path normalisation), for the requests an SDK
//! would refuse or rewrite: keys with `..` or empty segments or NUL,
//! malformed XML, presigned URLs, bodies streamed slowly.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::REGION;

/// Access key and secret.
#[derive(Debug, Clone)]
pub struct Creds {
    pub access_key: String,
    pub secret_key: String,
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 XML error body.
    pub fn code(&self) -> Option<String> {
        xml_tag(&self.text(), "Code")
    }

    /// "HTTP 400 InvalidObjectName: <body>" for messages.
    pub fn describe(&self) -> String {
        let body = self.text();
        let body: String = body.chars().take(600).collect();
        format!("HTTP {} {}", self.status, body)
    }
}

/// Text of the first `<tag>...</tag>` in `xml`.
pub fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let i = xml.find(&open)? + open.len();
    let j = xml[i..].find(&close)? + i;
    Some(xml[i..j].to_string())
}

/// Texts of every `<tag>...</tag>` in `xml`, in order.
pub fn xml_tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let s = &rest[i + open.len()..];
        let Some(j) = s.find(&close) else { break };
        out.push(s[..j].to_string());
        rest = &s[j + close.len()..];
    }
    out
}

/// Percent-encodes a key for a request path: everything but unreserved
/// characters and `/` (so `..` and empty segments reach the server as is).
pub fn encode_path(key: &str) -> String {
    encode(key, true)
}

/// Percent-encodes a query component.
pub fn encode_query(v: &str) -> String {
    encode(v, false)
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-_.~".contains(c) || (keep_slash && c == '/') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the signature says about the body.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// Sign the SHA-256 of these bytes.
    Signed(&'a [u8]),
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`
    Unsigned,
}

/// How a SigV4 request is signed.
#[derive(Debug, Clone, Copy)]
pub struct SigV4<'a> {
    pub region: &'a str,
    /// Presigned for this long (query parameters); `None`: header auth.
    pub presign: Option<Duration>,
    /// Headers left out of SignedHeaders (e.g. `host`).
    pub exclude: &'static [&'static str],
}

impl SigV4<'static> {
    /// Header auth for the test region, every header signed.
    pub const HEADER: SigV4<'static> = SigV4 {
        region: REGION,
        presign: None,
        exclude: &[],
    };
}

/// What signing made of a request.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The target with the presigned query parameters appended.
    pub target: String,
    /// The headers signing added (Authorization, x-amz-date, ...).
    pub headers: Vec<(String, String)>,
}

/// Signs `method http://<addr><target>` carrying `headers` (with `host`),
/// as `how` says, with no path normalisation.
pub fn sign_v4(
    creds: &Creds,
    how: &SigV4<'_>,
    method: &str,
    addr: &str,
    target: &str,
    headers: &[(String, String)],
    payload: Payload<'_>,
) -> Result<SignedRequest> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
        SigningSettings, UriPathNormalizationMode, sign,
    };
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(
            &creds.access_key,
            &creds.secret_key,
            None,
            None,
            "raw",
        )
        .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    match how.presign {
        Some(d) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(d);
        }
        None => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
    }
    if let Some(ex) = settings.excluded_headers.as_mut() {
        ex.extend(how.exclude.iter().map(|h| std::borrow::Cow::Borrowed(*h)));
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(how.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| anyhow!("signing params: {e}"))?
        .into();
    let url = format!("http://{addr}{target}");
    let body = match payload {
        Payload::Signed(b) => SignableBody::Precomputed(hex::encode(Sha256::digest(b))),
        Payload::Unsigned => SignableBody::UnsignedPayload,
    };
    let req = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .map_err(|e| anyhow!("signable request for {url}: {e}"))?;
    let (instr, _sig) = sign(req, &params)
        .map_err(|e| anyhow!("sign: {e}"))?
        .into_parts();
    let (added_headers, added_params) = instr.into_parts();
    let mut out = SignedRequest {
        target: target.to_string(),
        headers: Vec::new(),
    };
    for (i, (k, v)) in added_params.iter().enumerate() {
        let sep = if i == 0 && !target.contains('?') {
            '?'
        } else {
            '&'
        };
        out.target
            .push_str(&format!("{sep}{k}={}", encode_query(v)));
    }
    for h in added_headers {
        out.headers
            .push((h.name().to_string(), h.value().to_string()));
    }
    Ok(out)
}

/// Adds SigV4 headers (Authorization, x-amz-date, x-amz-content-sha256)
/// to `headers` for this request.
pub fn sign_headers(
    creds: &Creds,
    method: &str,
    addr: &str,
    target: &str,
    headers: &mut Vec<(String, String)>,
    payload: Payload<'_>,
) -> Result<()> {
    let signed = sign_v4(
        creds,
        &SigV4::HEADER,
        method,
        addr,
        target,
        headers,
        payload,
    )?;
    headers.extend(signed.headers);
    Ok(())
}

/// A client for one server address.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: String,
    pub creds: Option<Creds>,
    /// `Host` header (and signed host) if not `addr`: virtual-host style.
    pub host: Option<String>,
}

impl Client {
    pub fn new(addr: String, creds: Option<Creds>) -> Self {
        Self {
            addr,
            creds,
            host: None,
        }
    }

    /// Sends `Host: <host>` (e.g. `bucket.localhost:PORT`) instead of the address.
    pub fn with_host(mut self, host: String) -> Self {
        self.host = Some(host);
        self
    }

    fn head(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        len: Option<u64>,
        payload: Payload<'_>,
    ) -> Result<Vec<u8>> {
        let host = self.host.clone().unwrap_or_else(|| self.addr.clone());
        let mut hs: Vec<(String, String)> = vec![("host".into(), host.clone())];
        for (k, v) in headers {
            hs.push((k.to_string(), v.to_string()));
        }
        if let Some(creds) = &self.creds {
            sign_headers(creds, method, &host, target, &mut hs, payload)?;
        }
        let mut out = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in &hs {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = len {
            out.push_str(&format!("content-length: {n}\r\n"));
        }
        out.push_str("connection: close\r\n\r\n");
        Ok(out.into_bytes())
    }

    /// Sends a request with a (signed) body and reads the whole response.
    /// `target` is the path and query exactly as it goes on the wire.
    pub async fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let needs_len = !body.is_empty() || matches!(method, "PUT" | "POST");
        let head = self.head(
            method,
            target,
            headers,
            needs_len.then_some(body.len() as u64),
            Payload::Signed(body),
        )?;
        let mut s = connect(&self.addr).await?;
        s.write_all(&head).await?;
        s.write_all(body).await?;
        s.flush().await?;
        read_response(&mut BufReader::new(s), method == "HEAD").await
    }

    /// Opens a connection and sends only the head of a request whose body
    /// (`len` bytes, UNSIGNED-PAYLOAD) the caller then writes.
    pub async fn open_upload(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        len: u64,
    ) -> Result<TcpStream> {
        let head = self.head(method, target, headers, Some(len), Payload::Unsigned)?;
        let mut s = connect(&self.addr).await?;
        s.write_all(&head).await?;
        Ok(s)
    }

    /// Streams a GET body into `sink` without holding it; returns the status,
    /// headers and number of bytes (for errors the body is passed to sink too).
    pub async fn get_streaming(
        &self,
        target: &str,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(u16, Vec<(String, String)>, u64)> {
        let head = self.head("GET", target, &[], None, Payload::Signed(b""))?;
        let mut s = connect(&self.addr).await?;
        s.write_all(&head).await?;
        let mut r = BufReader::with_capacity(256 * 1024, s);
        let (status, headers) = read_head(&mut r).await?;
        let len = header_of(&headers, "content-length").map(|v| v.parse::<u64>());
        let chunked = header_of(&headers, "transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let mut total = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        if chunked {
            let body = read_chunked(&mut r).await?;
            total = body.len() as u64;
            sink(&body);
        } else if let Some(len) = len {
            let len = len.context("bad content-length")?;
            while total < len {
                let want = ((len - total) as usize).min(buf.len());
                let n = r.read(&mut buf[..want]).await?;
                if n == 0 {
                    bail!("connection closed after {total} of {len} body bytes");
                }
                sink(&buf[..n]);
                total += n as u64;
            }
        } else {
            loop {
                let n = r.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                sink(&buf[..n]);
                total += n as u64;
            }
        }
        Ok((status, headers, total))
    }
}

fn header_of<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

async fn connect(addr: &str) -> Result<TcpStream> {
    let s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Unsigned GET of a path (health checks).
pub async fn get(addr: &str, target: &str) -> Result<Response> {
    Client::new(addr.to_string(), None)
        .send("GET", target, &[], b"")
        .await
}

/// Sends a request to a full `http://host:port/...` URL (presigned URLs)
/// with the given headers and body, unsigned, and reads the response.
pub async fn send_url(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("not an http:// URL: {url}"))?;
    let (addr, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut hs: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
        .copied()
        .collect();
    hs.insert(0, ("host", addr));
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &hs {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("connection: close\r\n\r\n");
    let mut s = connect(addr).await?;
    s.write_all(out.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await?;
    read_response(&mut BufReader::new(s), method == "HEAD").await
}

async fn read_head<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<(u16, Vec<(String, String)>)> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            bail!("connection closed before a response");
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("bad status line {line:?}"))?
            .parse()
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                bail!("connection closed in the response head");
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        // 100 Continue: the real response follows.
        if status == 100 {
            continue;
        }
        return Ok((status, headers));
    }
}

async fn read_chunked<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .with_context(|| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            // trailers until the empty line
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).await? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).await?;
    }
}

/// Reads a response (head and whole body) from a stream.
pub async fn read_response<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    head_request: bool,
) -> Result<Response> {
    let (status, headers) = read_head(r).await?;
    let mut body = Vec::new();
    if !head_request && status != 204 && status != 304 {
        let chunked = header_of(&headers, "transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = read_chunked(r).await?;
        } else if let Some(len) = header_of(&headers, "content-length") {
            let len: usize = len.parse().context("bad content-length")?;
            body.resize(len, 0);
            r.read_exact(&mut body).await?;
        } else {
            r.read_to_end(&mut body).await?;
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Reads the response of an upload opened with [`Client::open_upload`].
pub async fn finish_upload(s: TcpStream) -> Result<Response> {
    read_response(&mut BufReader::new(s), false).await
}
