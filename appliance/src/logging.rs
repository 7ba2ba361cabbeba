//! The log: what is written (`CAIRN_LOG`, tracing's EnvFilter syntax) and
//! how (`--log-format text|json`), always to stderr.

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log filter without CAIRN_LOG. nfs3_server logs every accepted
/// connection at info and every refused NFS call (NOENT, EXIST) at error;
/// cairn-nfs logs the failures that matter itself (nfs/src/error.rs), so
/// only the wire layer's own errors are kept.
const DEFAULT_LOG: &str = "info,nfs3_server=off,nfs3_server::rpcwire=error";

/// The end of `cairn --help`: the log's environment.
pub const HELP: &str = "\
Logging (to stderr):
  CAIRN_LOG          what is logged, as tracing's EnvFilter: a level (error, warn,
                     info, debug, trace) and TARGET=LEVEL pairs, comma-separated.
                     Default: info. Examples: CAIRN_LOG=debug,
                     CAIRN_LOG=info,cairn::access=off (no access log),
                     CAIRN_LOG=warn,cairn::access=info (only the access log and warnings).
                     No level writes a secret (SSE-C keys, signatures, tokens).
  --log-format json  one JSON object per line (CAIRN_LOG_FORMAT=json).
The access log (target cairn::access, INFO) has one line per S3 request:
method, op, bucket, key, status, bytes_in, bytes_out, duration_ms, request_id
(the x-amz-request-id the response carries), remote, access_key.";

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and the
    /// event's fields at the top level.
    Json,
}

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        // Whatever CAIRN_LOG says, no secret is written: s3s's dumps of
        // requests, forms and signatures are dropped (the front logs each
        // request itself, redacted); so are s3s's ERROR reports of every
        // error response (the front logs each once, at the level its cause
        // deserves: cairn_s3::is_s3s_error_report).
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !cairn_s3::redact::leaks_secrets(meta) && !cairn_s3::is_s3s_error_report(meta)
        }))
        .with(filter)
        .with(fmt)
        .init();
}
