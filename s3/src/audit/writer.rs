//! The audit log's writer: requests hand their lines to a bounded channel
//! without waiting, and one thread of its own writes them through a
//! buffer, flushed within a second of a line (at once when it was idle),
//! on [`AuditLog::flush`] (the front calls it when it stops) and before
//! reopening the file on SIGHUP (logrotate's `postrotate`).
//!
//! A writer that falls behind (the channel full) or a file that fails
//! (disk full, permissions) loses lines rather than memory or requests:
//! they are counted (`cairn_audit_dropped_lines_total` on the metrics
//! page) and an ERROR says so in the server log, at most every 10 s.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines waiting for the writer at most (some MiB).
const CAPACITY: usize = 16 * 1024;
/// A written line reaches the file within this.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// At most one ERROR about lost lines per this.
const COMPLAIN_EVERY: Duration = Duration::from_secs(10);
/// The writer's buffer.
const BUFFER: usize = 64 * 1024;
/// How long [`AuditLog::flush`] waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    Stdout,
    /// Appended to (created `0640` if missing).
    File(PathBuf),
}

impl AuditTarget {
    /// `-` is stdout, anything else a file path.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            AuditTarget::Stdout
        } else {
            AuditTarget::File(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for AuditTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditTarget::Stdout => f.write_str("stdout"),
            AuditTarget::File(p) => write!(f, "{}", p.display()),
        }
    }
}

enum Msg {
    Line(String),
    Flush(std::sync::mpsc::Sender<()>),
    Reopen,
}

/// Counts lost lines and says so now and then.
struct Losses {
    dropped: AtomicU64,
    last_complaint: Mutex<Option<Instant>>,
}

impl Losses {
    fn lost(&self, n: u64, why: &dyn std::fmt::Display) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let Ok(mut last) = self.last_complaint.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < COMPLAIN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::error!(dropped_total = total, reason = %why, "audit log lines lost");
    }
}

/// The audit log of a server: cheap to share, never blocks a request.
pub struct AuditLog {
    tx: SyncSender<Msg>,
    losses: Arc<Losses>,
    target: AuditTarget,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

type Out = BufWriter<Box<dyn Write + Send>>;

fn open(target: &AuditTarget) -> io::Result<Out> {
    let w: Box<dyn Write + Send> = match target {
        AuditTarget::Stdout => Box::new(io::stdout()),
        AuditTarget::File(p) => {
            let mut o = std::fs::OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o640);
            let f: File = o.open(p)?;
            Box::new(f)
        }
    };
    Ok(BufWriter::with_capacity(BUFFER, w))
}

impl AuditLog {
    /// Opens `target` (an error if the file cannot be opened) and starts
    /// the writer thread; a file is reopened on SIGHUP when a tokio
    /// runtime is at hand.
    pub fn open(target: AuditTarget) -> io::Result<Arc<Self>> {
        let out = open(&target)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(CAPACITY);
        let losses = Arc::new(Losses {
            dropped: AtomicU64::new(0),
            last_complaint: Mutex::new(None),
        });
        let writer = Writer {
            out,
            target: target.clone(),
            losses: losses.clone(),
            pending: 0,
            torn: false,
        };
        std::thread::Builder::new()
            .name("cairn-audit".into())
            .spawn(move || writer.run(rx))?;
        let log = Arc::new(AuditLog { tx, losses, target });
        if matches!(log.target, AuditTarget::File(_)) {
            log.reopen_on_sighup();
        }
        Ok(log)
    }

    /// Where the lines go.
    pub fn target(&self) -> &AuditTarget {
        &self.target
    }

    /// Lines lost so far (writer behind, file failing).
    pub fn dropped(&self) -> u64 {
        self.losses.dropped.load(Ordering::Relaxed)
    }

    /// Hands a line to the writer, or counts it lost.
    pub(crate) fn write(&self, line: String) {
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.losses.lost(1, &"the writer is behind"),
            Err(TrySendError::Disconnected(_)) => self.losses.lost(1, &"the writer stopped"),
        }
    }

    /// Waits (a few seconds at most) until every line handed over so far
    /// is written out.
    pub async fn flush(&self) {
        let tx = self.tx.clone();
        let waited = tokio::task::spawn_blocking(move || {
            let (done, wait) = std::sync::mpsc::channel();
            if tx.send(Msg::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(FLUSH_WAIT);
            }
        })
        .await;
        if let Err(e) = waited {
            tracing::error!(error = %e, "flushing the audit log failed");
        }
    }

    /// Has the writer reopen its file (after a rotation).
    pub fn reopen(&self) {
        if self.tx.try_send(Msg::Reopen).is_err() {
            tracing::error!("audit log reopen not queued: the writer is behind or stopped");
        }
    }

    #[cfg(unix)]
    fn reopen_on_sighup(self: &Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = Arc::downgrade(self);
        rt.spawn(async move {
            let mut hup = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "no SIGHUP handler: the audit log is not reopened on rotation");
                    return;
                }
            };
            while hup.recv().await.is_some() {
                let Some(log) = me.upgrade() else { return };
                tracing::info!(path = %log.target, "SIGHUP: reopening the audit log");
                log.reopen();
            }
        });
    }

    #[cfg(not(unix))]
    fn reopen_on_sighup(self: &Arc<Self>) {}
}

struct Writer {
    out: Out,
    target: AuditTarget,
    losses: Arc<Losses>,
    /// Lines in the buffer, not yet written out.
    pending: u64,
    /// A write failed: what reached the file may end in part of a line,
    /// so the next line starts on a fresh one.
    torn: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        // Flushed this long ago: a first line after a quiet spell goes
        // out at once, a stream of them once a second.
        let mut flushed = Instant::now()
            .checked_sub(FLUSH_EVERY)
            .unwrap_or_else(Instant::now);
        let mut dirty = false;
        loop {
            let wait = if dirty {
                FLUSH_EVERY.saturating_sub(flushed.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            match rx.recv_timeout(wait) {
                Ok(Msg::Line(line)) => {
                    self.put(&line);
                    dirty = true;
                }
                Ok(Msg::Flush(done)) => {
                    self.flush();
                    (dirty, flushed) = (false, Instant::now());
                    let _ = done.send(());
                }
                Ok(Msg::Reopen) => {
                    self.flush();
                    (dirty, flushed) = (false, Instant::now());
                    match open(&self.target) {
                        Ok(out) => self.out = out,
                        Err(e) => {
                            tracing::error!(path = %self.target, error = %e, "reopening the audit log failed; writing on to the old file")
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
            if dirty && flushed.elapsed() >= FLUSH_EVERY {
                self.flush();
                (dirty, flushed) = (false, Instant::now());
            }
        }
    }

    fn put(&mut self, line: &str) {
        let fresh = if std::mem::take(&mut self.torn) {
            &b"\n"[..]
        } else {
            &b""[..]
        };
        let res = self
            .out
            .write_all(fresh)
            .and_then(|()| self.out.write_all(line.as_bytes()))
            .and_then(|()| self.out.write_all(b"\n"));
        match res {
            // the buffer was written out to make room: this line alone is in it
            Ok(()) if self.out.buffer().len() <= fresh.len() + line.len() + 1 => self.pending = 1,
            Ok(()) => self.pending += 1,
            Err(e) => self.failed(1, &e),
        }
    }

    fn flush(&mut self) {
        match self.out.flush() {
            Ok(()) => self.pending = 0,
            Err(e) => self.failed(0, &e),
        }
    }

    /// A write failed (disk full, file gone): the buffered lines (and
    /// `more`) are lost, not retried, and counted.
    fn failed(&mut self, more: u64, e: &io::Error) {
        let lost = std::mem::take(&mut self.pending) + more;
        self.losses
            .lost(lost, &format!("writing {}: {e}", self.target));
        let out = std::mem::replace(&mut self.out, BufWriter::new(Box::new(io::sink())));
        let (inner, _unwritten) = out.into_parts();
        self.out = BufWriter::with_capacity(BUFFER, inner);
        self.torn = true;
    }
}
