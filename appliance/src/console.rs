//! `--console on|off`: the web console (crate cairn-console) on the S3
//! port at `/_cairn/console/`, wired as the S3 front's web front.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use futures::future::BoxFuture;

/// Whether the console is served.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConsoleMode {
    /// At /_cairn/console/ on the S3 port.
    #[default]
    On,
    Off,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// The web console at /_cairn/console/ on the S3 port: on or off.
    #[arg(long = "console", value_enum, default_value_t = ConsoleMode::On, env = "CAIRN_CONSOLE")]
    pub mode: ConsoleMode,
    /// The console's client id at the `--oidc-config-url` provider, for
    /// "Log in with SSO" (default: the first --oidc-client-id). The
    /// provider must allow the redirect URI
    /// `<scheme>://<host>/_cairn/console/api/oidc/callback`.
    #[arg(long, env = "CAIRN_CONSOLE_OIDC_CLIENT_ID")]
    pub console_oidc_client_id: Option<String>,
    /// The client secret, for a confidential client (a public client
    /// needs none: the flow uses PKCE).
    #[arg(long, env = "CAIRN_CONSOLE_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub console_oidc_client_secret: Option<String>,
    /// Serve the console on this address of its own (plain HTTP, at
    /// /_cairn/console/ there too) instead of on the S3 port.
    #[arg(long, env = "CAIRN_CONSOLE_ADDRESS")]
    pub console_address: Option<SocketAddr>,
}

impl ConsoleArgs {
    /// SSO through the OpenID provider, when one is configured.
    fn sso(
        &self,
        oidc: &crate::oidc::OidcArgs,
    ) -> anyhow::Result<Option<cairn_console::SsoConfig>> {
        let Some(config_url) = &oidc.oidc_config_url else {
            anyhow::ensure!(
                self.console_oidc_client_id.is_none() && self.console_oidc_client_secret.is_none(),
                "--console-oidc-client-id/-secret need --oidc-config-url"
            );
            return Ok(None);
        };
        let Some(client_id) = self
            .console_oidc_client_id
            .clone()
            .or_else(|| oidc.oidc_client_id.first().cloned())
        else {
            tracing::warn!(
                "console: no SSO login (no --console-oidc-client-id or --oidc-client-id)"
            );
            return Ok(None);
        };
        anyhow::ensure!(
            oidc.oidc_client_id.is_empty() || oidc.oidc_client_id.contains(&client_id),
            "--console-oidc-client-id {client_id:?} is not among --oidc-client-id: STS would refuse its tokens"
        );
        Ok(Some(cairn_console::SsoConfig {
            config_url: config_url.clone(),
            client_id,
            client_secret: self.console_oidc_client_secret.clone(),
        }))
    }
}

/// The console as the S3 front's web front.
struct Front(cairn_console::Console);

impl cairn_s3::WebFront for Front {
    fn prefix(&self) -> &'static str {
        cairn_console::PREFIX
    }

    fn call(
        &self,
        req: http::Request<hyper::body::Incoming>,
        conn: cairn_s3::WebConn,
    ) -> BoxFuture<'static, http::Response<cairn_s3::WebBody>> {
        let console = self.0.clone();
        Box::pin(async move { console.call(req, conn.tls).await })
    }
}

/// The console for an S3 port listening on `addr` (`None`: off). It
/// calls that port over loopback with plain HTTP, so with `--certs-dir`
/// it needs `--allow-plain-http` (else it stays off, said at start).
pub fn start(
    args: &ConsoleArgs,
    addr: SocketAddr,
    tls: &crate::tls::TlsArgs,
    region: &str,
    oidc: &crate::oidc::OidcArgs,
) -> anyhow::Result<Option<Arc<dyn cairn_s3::WebFront>>> {
    if args.mode == ConsoleMode::Off {
        return Ok(None);
    }
    if tls.certs_dir.is_some() && !tls.allow_plain_http {
        tracing::warn!(
            "console off: with --certs-dir it calls the S3 port over loopback in plain HTTP, \
             which needs --allow-plain-http"
        );
        return Ok(None);
    }
    let ip = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        a => a.ip(),
    };
    let endpoint = format!("http://{}", SocketAddr::new(ip, addr.port()));
    let console = cairn_console::Console::new(cairn_console::ConsoleConfig {
        endpoint,
        region: region.to_owned(),
        sso: args.sso(oidc)?,
        s3_port: args.console_address.map(|_| addr.port()),
    })?;
    if let Some(own) = args.console_address {
        let listener = std::net::TcpListener::bind(own)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .with_context(|| format!("--console-address {own}"))?;
        tracing::info!(address = %own, path = %format!("{}/", cairn_console::PREFIX), "web console on its own address");
        tokio::spawn(serve_alone(listener, console));
        return Ok(None);
    }
    tracing::info!(path = %format!("{}/", cairn_console::PREFIX), "web console on the S3 port");
    Ok(Some(Arc::new(Front(console))))
}

/// The console alone on its own listener (`--console-address`): HTTP/1.1
/// and h2c, one task per connection, for the life of the process.
async fn serve_alone(listener: tokio::net::TcpListener, console: cairn_console::Console) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::error!(error = %e, "console: accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let console = console.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let console = console.clone();
                async move { Ok::<_, std::convert::Infallible>(console.call_alone(req, false).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder.serve_connection(io, svc).await {
                tracing::debug!(error = %e, "console connection ended");
            }
        });
    }
}
