//! `--console on|off`: the web console (crate cairn-console) on the S3
//! port at `/_cairn/console/`, wired as the S3 front's web front.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

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
    })?;
    tracing::info!(path = %format!("{}/", cairn_console::PREFIX), "web console on the S3 port");
    Ok(Some(Arc::new(Front(console))))
}
