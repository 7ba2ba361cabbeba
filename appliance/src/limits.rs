//! The S3 front's limits as flags (`cairn_s3::Limits`), and the open-file
//! limit the server raises at start.

use std::time::Duration;

use cairn_s3::Limits;

/// Timeouts and caps that keep slow, stalled or flooding clients from
/// taking the server down.
#[derive(clap::Args, Debug)]
pub struct LimitArgs {
    /// Seconds a new connection may take to send a whole request head;
    /// connections that never send a byte are closed after it too.
    #[arg(long, default_value = "30", value_parser = parse_secs, env = "CAIRN_HEADER_TIMEOUT")]
    pub header_timeout: Duration,
    /// Seconds a keep-alive connection may stay idle between requests.
    #[arg(long, default_value = "60", value_parser = parse_secs, env = "CAIRN_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,
    /// Seconds a request body may send nothing while the server waits for
    /// it; then the request fails (400 RequestTimeout, nothing stored) and
    /// the connection closes. Also the window of --body-min-rate.
    #[arg(long, default_value = "30", value_parser = parse_secs, env = "CAIRN_BODY_TIMEOUT")]
    pub body_timeout: Duration,
    /// Slowest request body accepted, in bytes per second averaged over
    /// --body-timeout of waiting for it (0: no minimum).
    #[arg(long, default_value_t = 1024, env = "CAIRN_BODY_MIN_RATE")]
    pub body_min_rate: u64,
    /// Most connections held at once; at the cap, idle connections are
    /// closed to make room. Default: half the open-file limit, at most
    /// 10000.
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most requests whose body is being read at once (uploads, parts);
    /// beyond it such requests get 503 SlowDown at once.
    #[arg(long, default_value_t = 1024, env = "CAIRN_MAX_INFLIGHT_REQUESTS")]
    pub max_inflight_requests: usize,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{s}: give more than 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl LimitArgs {
    /// The front's limits; `open_files` is the process's open-file limit.
    pub fn limits(&self, open_files: u64) -> Limits {
        let auto = usize::try_from(open_files / 2)
            .unwrap_or(usize::MAX)
            .clamp(64, 10_000);
        Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
            body_min_rate: self.body_min_rate,
            max_connections: self.max_connections.unwrap_or(auto),
            max_inflight_requests: self.max_inflight_requests,
        }
    }
}

/// Raises the soft open-file limit to the hard one (as most servers do:
/// every connection and every open shard file is a descriptor) and returns
/// the limit now in force.
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return 1024;
        }
    };
    let now = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
                soft
            }
        }
    } else {
        soft
    };
    tracing::info!(limit = now, hard, "open-file limit");
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_and_connections_follow_the_file_limit() {
        assert_eq!(parse_secs("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
        let args = LimitArgs {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            max_connections: None,
            max_inflight_requests: 1024,
        };
        assert_eq!(args.limits(1024).max_connections, 512);
        assert_eq!(args.limits(1 << 20).max_connections, 10_000);
        assert_eq!(args.limits(20).max_connections, 64);
    }
}
