//! cairn-console: the web console, served by the binary on the S3 port at
//! `/_cairn/console/` (see ARCHITECTURE.md "Console").
//!
//! The console has no powers of its own. A login exchanges the user's
//! access keys for STS temporary credentials (AssumeRole on this same
//! server), which live sealed in the session cookie (crate::session);
//! every page action is a call of the console's JSON API (crate::api,
//! crate::transfer) that the backend turns into a SigV4-signed S3, STS or
//! admin request to its own S3 port over loopback (crate::upstream), so the
//! server's signature rules, policies and logs apply as for any client.
//! The pages are plain HTML, CSS and JavaScript embedded in the binary
//! (crate::assets).

mod admin;
mod api;
mod assets;
mod error;
mod iam;
mod names;
mod oidc;
mod preview;
mod reply;
mod retention;
mod session;
mod settings;
mod transfer;
mod upstream;

use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response};
use hyper::body::Incoming;

pub use error::ConsoleError;
pub use oidc::SsoConfig;
pub use reply::Body;
pub use session::NoRandom;

use session::{Session, Sessions};
use upstream::Upstream;

/// Where the console lives on the S3 port.
pub const PREFIX: &str = "/_cairn/console";
/// The header a state-changing request carries its session's CSRF token
/// in.
pub const CSRF_HEADER: &str = "x-cairn-csrf";

/// How the console reaches its server.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The S3 port's loopback URL, `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The region the server answers for (signatures name it).
    pub region: String,
    /// "Log in with SSO" through this OpenID provider (`None`: keys only).
    pub sso: Option<SsoConfig>,
    /// The S3 port, when the console is served on an address of its own
    /// (share links then name the browser's host with this port).
    pub s3_port: Option<u16>,
}

/// The console: its sessions and its way to the server.
#[derive(Debug, Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sessions: Sessions,
    upstream: Upstream,
    sso: Option<oidc::Sso>,
    s3_port: Option<u16>,
}

/// A request as the console's handlers see it.
pub(crate) struct Ctx {
    pub method: Method,
    /// The path below [`PREFIX`], e.g. `/api/objects`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The host the browser named (`Host`, or HTTP/2's `:authority`).
    pub host: Option<String>,
    pub body: Incoming,
    /// Whether the browser's connection is TLS.
    pub tls: bool,
    /// The S3 port when it is not the one the browser used.
    pub s3_port: Option<u16>,
}

impl Ctx {
    /// Query parameter `name`, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The host the browser named, as a valid authority.
    pub fn authority(&self) -> Result<http::uri::Authority, ConsoleError> {
        self.host
            .as_deref()
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .ok_or_else(|| ConsoleError::bad("no valid Host"))
    }

    /// Query parameter `name`, required.
    pub fn req(&self, name: &str) -> Result<&str, ConsoleError> {
        self.param(name)
            .ok_or_else(|| ConsoleError::bad(format!("missing parameter {name}")))
    }
}

impl Console {
    /// A console calling the server at `cfg.endpoint`, with a fresh
    /// session key (sessions of an earlier process do not open).
    pub fn new(cfg: ConsoleConfig) -> Result<Self, ConsoleError> {
        let sessions = Sessions::new().map_err(|e| ConsoleError::Transport(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                sessions,
                upstream: Upstream::new(cfg.endpoint, cfg.region)?,
                sso: cfg.sso.map(oidc::Sso::new).transpose()?,
                s3_port: cfg.s3_port,
            }),
        })
    }

    /// Answers one request below [`PREFIX`]; `tls`: whether the browser's
    /// connection is TLS (the cookie is then `Secure`).
    pub async fn call(&self, req: Request<Incoming>, tls: bool) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path()
            .strip_prefix(PREFIX)
            .unwrap_or_default()
            .to_owned();
        let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
        let cx = Ctx {
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            host,
            body,
            tls,
            s3_port: self.inner.s3_port,
        };
        let method = cx.method.clone();
        let path = cx.path.clone();
        let mut resp = match self.route(cx).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%method, %path, status = %e.status(), error = %e, "console request refused");
                reply::error(&e)
            }
        };
        reply::secure_headers(resp.headers_mut());
        resp
    }

    /// Answers one request of a listener serving the console alone
    /// (`--console-address`): the console's paths as [`Console::call`],
    /// any other a 303 to the console's page.
    pub async fn call_alone(&self, req: Request<Incoming>, tls: bool) -> Response<Body> {
        let path = req.uri().path();
        let ours = path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if ours {
            return self.call(req, tls).await;
        }
        let mut resp = reply::redirect(&format!("{PREFIX}/"));
        reply::secure_headers(resp.headers_mut());
        resp
    }

    async fn route(&self, cx: Ctx) -> Result<Response<Body>, ConsoleError> {
        if cx.path.is_empty() {
            return Ok(reply::redirect(&format!("{PREFIX}/")));
        }
        if let Some(asset) = cx.path.strip_prefix('/').and_then(assets::get) {
            if cx.method != Method::GET && cx.method != Method::HEAD {
                return Err(ConsoleError::NotFound);
            }
            return Ok(reply::asset(asset));
        }
        let Some(call) = cx.path.strip_prefix("/api/").map(str::to_owned) else {
            return Err(ConsoleError::NotFound);
        };
        let changes = cx.method != Method::GET && cx.method != Method::HEAD;
        if changes {
            same_origin(&cx.headers, cx.host.as_deref())?;
        }
        let up = &self.inner.upstream;
        match (cx.method.clone(), call.as_str()) {
            (Method::POST, "login") => api::login(&self.inner.sessions, up, cx).await,
            (Method::GET, "config") => Ok(reply::json(
                &serde_json::json!({ "sso": self.inner.sso.is_some() }),
            )),
            (Method::GET, "oidc/start") => {
                let sso = self.inner.sso.as_ref().ok_or(ConsoleError::NotFound)?;
                sso.start(&self.inner.sessions, &cx).await
            }
            (Method::GET, "oidc/callback") => {
                let sso = self.inner.sso.as_ref().ok_or(ConsoleError::NotFound)?;
                Ok(sso.callback(&self.inner.sessions, up, &cx).await)
            }
            _ => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let value = session::cookie_value(&cx.headers).ok_or(ConsoleError::NoSession)?;
                let s = self.inner.sessions.open(value, now)?;
                if changes {
                    csrf(&cx.headers, &s)?;
                }
                self.call_api(&call, cx, s).await
            }
        }
    }

    async fn call_api(
        &self,
        call: &str,
        cx: Ctx,
        s: Session,
    ) -> Result<Response<Body>, ConsoleError> {
        let up = &self.inner.upstream;
        match (cx.method.clone(), call) {
            (Method::GET, "session") => api::session_info(up, &s).await,
            (Method::POST, "logout") => {
                self.inner.sessions.close(&s);
                Ok(api::logged_out(cx.tls))
            }
            (Method::GET, "buckets") => api::list_buckets(up, &s).await,
            (Method::POST, "buckets") => api::create_bucket(up, &s, &cx).await,
            (Method::GET, "versioning") => api::get_versioning(up, &s, &cx).await,
            (Method::PUT, "versioning") => api::put_versioning(up, &s, &cx).await,
            (Method::GET, "objects") => api::list_objects(up, &s, &cx).await,
            (Method::GET, "details") => api::details(up, &s, &cx).await,
            (Method::POST, "delete") => api::delete_object(up, &s, &cx).await,
            (Method::POST, "folder") => api::create_folder(up, &s, &cx).await,
            (Method::POST, "share") => api::share(up, &s, &cx).await,
            (Method::GET, "preview") => preview::text(up, &s, &cx).await,
            (Method::PUT, "retention") => retention::put_retention(up, &s, &cx).await,
            (Method::PUT, "legal-hold") => retention::put_legal_hold(up, &s, &cx).await,
            (Method::GET, "settings") => settings::get(up, &s, &cx).await,
            (Method::PUT, "settings/lock") => settings::put_lock(up, &s, &cx).await,
            (Method::PUT, "settings/encryption") => settings::put_encryption(up, &s, &cx).await,
            (Method::POST, "settings/lifecycle") => settings::add_rule(up, &s, &cx).await,
            (Method::POST, "settings/lifecycle/delete") => settings::delete_rule(up, &s, &cx).await,
            (Method::PUT, "settings/tags") => settings::put_tags(up, &s, cx).await,
            (Method::PUT, "settings/policy") => settings::put_policy(up, &s, cx).await,
            (Method::GET, "admin/info") => admin::info(up, &s).await,
            (Method::GET, "admin/kms") => admin::kms_status(up, &s).await,
            (Method::POST, "admin/kms/keys") => admin::kms_create(up, &s, &cx).await,
            (Method::POST, "admin/kms/rotate") => admin::kms_rotate(up, &s, &cx).await,
            (Method::POST, "admin/heal") => admin::heal(up, &s, &cx).await,
            (Method::POST, "iam") => iam::call(up, &s, cx.body).await,
            (Method::GET, "download") => transfer::download(up, &s, &cx).await,
            (Method::PUT, "upload") => transfer::upload(up, &s, cx).await,
            (Method::POST, "multipart/create") => transfer::create_multipart(up, &s, &cx).await,
            (Method::PUT, "multipart/part") => transfer::upload_part(up, &s, cx).await,
            (Method::POST, "multipart/complete") => transfer::complete(up, &s, cx).await,
            (Method::POST, "multipart/abort") => transfer::abort(up, &s, &cx).await,
            _ => Err(ConsoleError::NotFound),
        }
    }
}

/// A state-changing request must come from a page of this origin: its
/// `Origin` (which browsers send on every POST/PUT/DELETE) names the host
/// the request went to.
fn same_origin(h: &HeaderMap, host: Option<&str>) -> Result<(), ConsoleError> {
    let origin = h
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or(ConsoleError::Csrf("no Origin header"))?;
    let host = host.ok_or(ConsoleError::Csrf("no Host header"))?;
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or(ConsoleError::Csrf("Origin is not http(s)"))?;
    if !origin_host.eq_ignore_ascii_case(host) {
        return Err(ConsoleError::Csrf("Origin is another site"));
    }
    Ok(())
}

/// The session's CSRF token must be in [`CSRF_HEADER`].
fn csrf(h: &HeaderMap, s: &Session) -> Result<(), ConsoleError> {
    let given = h
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(ConsoleError::Csrf("no CSRF token"))?;
    if !session::same_token(given, &s.csrf) {
        return Err(ConsoleError::Csrf("wrong CSRF token"));
    }
    Ok(())
}
