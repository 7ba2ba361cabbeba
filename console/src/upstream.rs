//! The console's one way to the store: this server's own public APIs over
//! loopback, signed with SigV4 like any client's requests, so every
//! signature rule, policy and audit line applies to what a console user
//! does. S3 through the AWS SDK; STS AssumeRole and the admin API (which
//! the SDK has no calls for) as hand-signed requests.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http::StatusCode;

use crate::error::ConsoleError;
use crate::session::Session;

/// Any RoleArn that names no role of the deployment (account `console` is
/// no account id): STS then gives a session with the caller's own
/// policies (MinIO's way, s3/src/query/sts.rs).
const ROLE_ARN: &str = "arn:aws:iam::console:role/cairn-console";
/// How long a console session lives (STS's default).
pub const SESSION_SECS: i64 = 3600;
/// The deadline of every call to the server's API but object bodies.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how the console reaches its server's API.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http://127.0.0.1:PORT`: the S3 port, over loopback.
    endpoint: String,
    region: String,
    http: reqwest::Client,
}

/// Temporary credentials from STS.
#[derive(Debug)]
pub struct Temporary {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expires: i64,
    pub arn: String,
}

/// One hand-signed request.
struct Call<'a> {
    method: http::Method,
    path_and_query: &'a str,
    service: &'a str,
    content_type: Option<&'a str>,
    body: Bytes,
    /// `None`: sent unsigned (AssumeRoleWithWebIdentity, whose token is
    /// the credential).
    creds: Option<Credentials>,
}

impl Upstream {
    /// A client of the API at `endpoint` (`http://host:port`).
    pub fn new(endpoint: String, region: String) -> Result<Self, ConsoleError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| ConsoleError::Transport(e.to_string()))?;
        Ok(Self {
            endpoint,
            region,
            http,
        })
    }

    fn credentials(s: &Session) -> Credentials {
        Credentials::new(
            &s.access_key,
            &s.secret_key,
            Some(s.session_token.clone()),
            None,
            "cairn-console",
        )
    }

    /// An S3 client acting as session `s`, against `endpoint` (the
    /// loopback one unless given: a share link names the host the
    /// browser used).
    pub fn s3(&self, s: &Session, endpoint: Option<&str>) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint.unwrap_or(&self.endpoint))
            .region(Region::new(self.region.clone()))
            .credentials_provider(Self::credentials(s))
            .force_path_style(true)
            // bodies stream through as the browser sends them
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// STS AssumeRole signed with the user's long-term keys: a session
    /// with the user's own rights for [`SESSION_SECS`].
    pub async fn assume_role(
        &self,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Temporary, ConsoleError> {
        let body = form(&[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", ROLE_ARN),
            ("RoleSessionName", "cairn-console"),
            ("DurationSeconds", &SESSION_SECS.to_string()),
        ]);
        let creds = Credentials::new(access_key, secret_key, None, None, "cairn-console-login");
        self.sts(body, Some(creds)).await
    }

    /// STS AssumeRoleWithWebIdentity (unsigned: the OpenID provider's ID
    /// token is the credential): a session with the policies the token's
    /// claims map to, for [`SESSION_SECS`].
    pub async fn assume_role_with_web_identity(
        &self,
        id_token: &str,
    ) -> Result<Temporary, ConsoleError> {
        let body = form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("WebIdentityToken", id_token),
            ("RoleSessionName", "cairn-console"),
            ("DurationSeconds", &SESSION_SECS.to_string()),
        ]);
        self.sts(body, None).await
    }

    /// One STS call with a form `body`: the credentials it answers.
    async fn sts(
        &self,
        body: String,
        creds: Option<Credentials>,
    ) -> Result<Temporary, ConsoleError> {
        let (status, answer) = self
            .send(Call {
                method: http::Method::POST,
                path_and_query: "/",
                service: "sts",
                content_type: Some("application/x-www-form-urlencoded"),
                body: Bytes::from(body),
                creds,
            })
            .await?;
        let text = String::from_utf8_lossy(&answer);
        if !status.is_success() {
            return Err(upstream_error(status, &text));
        }
        let leaf = |name: &str| xml_leaf(&text, name).unwrap_or_default();
        let expires = time::OffsetDateTime::parse(
            &leaf("Expiration"),
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.unix_timestamp())
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc().unix_timestamp() + SESSION_SECS);
        let t = Temporary {
            access_key: leaf("AccessKeyId"),
            secret_key: leaf("SecretAccessKey"),
            session_token: leaf("SessionToken"),
            expires,
            arn: leaf("Arn"),
        };
        if t.access_key.is_empty() || t.secret_key.is_empty() || t.session_token.is_empty() {
            return Err(ConsoleError::Transport(
                "STS answered without credentials".into(),
            ));
        }
        Ok(t)
    }

    /// A call of the admin API (`/_cairn/admin/v1/<what>`, `what` with
    /// its query, made by the caller from checked values) as session `s`:
    /// its status and body, whatever the status.
    pub async fn admin(
        &self,
        s: &Session,
        method: http::Method,
        what: &str,
    ) -> Result<(StatusCode, Bytes), ConsoleError> {
        self.send(Call {
            method,
            path_and_query: &format!("/_cairn/admin/v1/{what}"),
            service: "s3",
            content_type: None,
            body: Bytes::new(),
            creds: Some(Self::credentials(s)),
        })
        .await
    }

    /// A POST of the admin API whose answer streams (heal's NDJSON): the
    /// response, for up to `life`.
    pub async fn admin_stream(
        &self,
        s: &Session,
        what: &str,
        life: Duration,
    ) -> Result<reqwest::Response, ConsoleError> {
        let req = self.request(Call {
            method: http::Method::POST,
            path_and_query: &format!("/_cairn/admin/v1/{what}"),
            service: "s3",
            content_type: None,
            body: Bytes::new(),
            creds: Some(Self::credentials(s)),
        })?;
        req.timeout(life).send().await.map_err(|e| {
            tracing::error!(error = %e, "console: the server's API could not be reached");
            ConsoleError::Transport(e.to_string())
        })
    }

    /// An IAM query API call (`form`: `Action` and its parameters) as
    /// session `s`, signed for service `iam` as botocore signs it: its
    /// status and XML answer.
    pub async fn iam(
        &self,
        s: &Session,
        form: String,
    ) -> Result<(StatusCode, Bytes), ConsoleError> {
        self.send(Call {
            method: http::Method::POST,
            path_and_query: "/",
            service: "iam",
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            body: Bytes::from(form),
            creds: Some(Self::credentials(s)),
        })
        .await
    }

    async fn send(&self, c: Call<'_>) -> Result<(StatusCode, Bytes), ConsoleError> {
        Self::answer(self.request(c)?).await
    }

    /// The request of `c`, signed unless it has no credentials.
    fn request(&self, c: Call<'_>) -> Result<reqwest::RequestBuilder, ConsoleError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let fail = |e: &dyn std::fmt::Display| ConsoleError::Transport(format!("signing: {e}"));
        let url = format!("{}{}", self.endpoint, c.path_and_query);
        let Some(creds) = c.creds else {
            let mut req = self.http.request(c.method, &url);
            if let Some(ct) = c.content_type {
                req = req.header("content-type", ct);
            }
            return Ok(req.body(c.body));
        };
        let host = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, h)| h)
            .to_owned();
        let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(c.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(&e))?
            .into();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&c.body));
        let mut headers = vec![("host", host.as_str())];
        // S3 wants the body's hash in a header; the query API hashes the
        // body itself (as botocore signs it)
        if c.service == "s3" {
            headers.push(("x-amz-content-sha256", sha.as_str()));
        }
        if let Some(ct) = c.content_type {
            headers.push(("content-type", ct));
        }
        let signable = SignableRequest::new(
            c.method.as_str(),
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(&c.body),
        )
        .map_err(|e| fail(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
        let mut req = self.http.request(c.method, &url);
        for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
            req = req.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        Ok(req.body(c.body))
    }

    /// Sends `req`: its status and body, whatever the status.
    async fn answer(req: reqwest::RequestBuilder) -> Result<(StatusCode, Bytes), ConsoleError> {
        let resp = req.send().await.map_err(|e| {
            tracing::error!(error = %e, "console: the server's API could not be reached");
            ConsoleError::Transport(e.to_string())
        })?;
        let status =
            StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = resp
            .bytes()
            .await
            .map_err(|e| ConsoleError::Transport(e.to_string()))?;
        Ok((status, body))
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` string (a query or
/// a form body).
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// The error an S3 (`<Error>`) or query API (`<ErrorResponse>`) answer
/// names.
pub(crate) fn upstream_error(status: StatusCode, text: &str) -> ConsoleError {
    ConsoleError::Upstream {
        status,
        code: xml_leaf(text, "Code").unwrap_or_else(|| "Unknown".into()),
        message: xml_leaf(text, "Message").unwrap_or_default(),
    }
}

/// The text of the first element named `name` in `xml`, unescaped.
pub(crate) fn xml_leaf(xml: &str, name: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut text: Option<String> = None;
    loop {
        match r.read_event().ok()? {
            Event::Start(e) if text.is_none() && e.local_name().as_ref() == name.as_bytes() => {
                text = Some(String::new());
            }
            Event::Text(t) => {
                if let Some(out) = text.as_mut() {
                    out.push_str(&t.xml10_content().ok()?);
                }
            }
            Event::GeneralRef(g) => {
                if let Some(out) = text.as_mut() {
                    if let Ok(Some(c)) = g.resolve_char_ref() {
                        out.push(c);
                    } else {
                        out.push_str(match g.decode().ok()?.as_ref() {
                            "lt" => "<",
                            "gt" => ">",
                            "amp" => "&",
                            "quot" => "\"",
                            "apos" => "'",
                            _ => "",
                        });
                    }
                }
            }
            Event::End(_) if text.is_some() => return text,
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_and_errors_are_read() {
        let x = "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                 <AccessKeyId>ASIA1</AccessKeyId><SessionToken>a&amp;b</SessionToken>\
                 </Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert_eq!(xml_leaf(x, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(xml_leaf(x, "SessionToken").as_deref(), Some("a&b"));
        assert_eq!(xml_leaf(x, "Nope"), None);
        let e = upstream_error(
            StatusCode::FORBIDDEN,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>no</Message></Error></ErrorResponse>",
        );
        assert_eq!(e.code(), "AccessDenied");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }
}
