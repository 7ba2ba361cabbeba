//! `QuorumLocks`: an erasure set's object locks, asked of the lockers of
//! the set's drives (one per drive, on the node that serves it; this
//! node's own without a request). A write lock needs more than half the
//! lockers, a read lock enough that no write lock can be granted
//! meanwhile (`n - write + 1`): a set that can still read its data (its
//! read quorum is never below that) is never made unreadable by its
//! locks.
//!
//! A write lock's fence is proposed by the asker (this node's clock in
//! microseconds, or one above the highest fence a locker reported) and
//! granted only above every fence those lockers granted before; the
//! fence of the lock is the one granted, so it is above the fence of any
//! earlier holder (their quorums share a locker).
//!
//! Held locks are refreshed every `LockConfig::refresh`; a holder that
//! loses its quorum of lockers logs it (its commits are then refused by
//! fencing once a newer holder committed). Dropping the lock releases it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cairn_core::locks::{ClusterLock, ClusterLocks, LockFailure, LockKind};
use tokio::runtime::Handle;

use crate::client::Node;
use crate::locker::{Answer, Ask, Kind, LockCall, LockConfig, LockOp, Lockers};

/// What this node's lock askers did (for `/metrics`).
#[derive(Debug, Default)]
pub struct LockStats {
    pub granted_read: AtomicU64,
    pub granted_write: AtomicU64,
    /// Not granted: others kept it past the wait.
    pub busy: AtomicU64,
    /// Not granted: too few lockers answered.
    pub unreachable: AtomicU64,
    /// Held locks whose quorum of lockers was lost.
    pub lost: AtomicU64,
}

/// Where a drive's locker is.
#[derive(Clone, Debug)]
pub enum LockerAt {
    /// This node's.
    Local(Arc<Lockers>),
    Remote(Node),
}

/// The lockers of one node that serve drives of the set: asked in one
/// call per round.
#[derive(Clone, Debug)]
struct Group {
    at: LockerAt,
    /// The drives' paths on that node.
    drives: Vec<String>,
}

#[derive(Debug)]
struct Inner {
    groups: Vec<Group>,
    /// Drives (lockers) in the set.
    n: usize,
    cfg: LockConfig,
    rt: Handle,
    /// The highest fence this node proposed or heard of.
    last_fence: AtomicU64,
    stats: Arc<LockStats>,
}

/// One erasure set's lockers.
#[derive(Clone, Debug)]
pub struct QuorumLocks {
    inner: Arc<Inner>,
}

/// What one round of asks gave, per drive.
#[derive(Debug, Default)]
struct Round {
    granted: usize,
    unreachable: usize,
    /// Free, but the fence proposed was too low.
    stale: usize,
    stale_max: u64,
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl QuorumLocks {
    /// The lockers of a set's drives: `drives[i]` is drive i's locker and
    /// its path on that node; what the askers do is counted in `stats`.
    pub fn new(
        drives: Vec<(LockerAt, String)>,
        cfg: LockConfig,
        rt: Handle,
        stats: Arc<LockStats>,
    ) -> Self {
        let n = drives.len();
        let mut groups: Vec<Group> = Vec::new();
        for (at, path) in drives {
            let same = groups.iter_mut().find(|g| same_locker(&g.at, &at));
            match same {
                Some(g) => g.drives.push(path),
                None => groups.push(Group {
                    at,
                    drives: vec![path],
                }),
            }
        }
        Self {
            inner: Arc::new(Inner {
                groups,
                n,
                cfg,
                rt,
                last_fence: AtomicU64::new(0),
                stats,
            }),
        }
    }

    fn needed(&self, kind: LockKind) -> usize {
        let write = self.inner.n / 2 + 1;
        match kind {
            LockKind::Write => write,
            LockKind::Read => self.inner.n + 1 - write,
        }
    }
}

fn same_locker(a: &LockerAt, b: &LockerAt) -> bool {
    match (a, b) {
        (LockerAt::Local(x), LockerAt::Local(y)) => Arc::ptr_eq(x, y),
        (LockerAt::Remote(x), LockerAt::Remote(y)) => x.same_node(y),
        _ => false,
    }
}

impl Inner {
    /// Sends `op` for `resource` to every locker; the answers per drive
    /// (`None`: the node did not answer in time).
    async fn round(&self, op: LockOp, ask: &Ask) -> Vec<Option<Answer>> {
        let calls = self.groups.iter().map(|g| {
            let call = LockCall {
                op,
                asks: g
                    .drives
                    .iter()
                    .map(|d| Ask {
                        drive: d.clone(),
                        ..ask.clone()
                    })
                    .collect(),
            };
            let at = g.at.clone();
            let n = g.drives.len();
            let limit = self.cfg.call;
            async move {
                let got = match at {
                    LockerAt::Local(l) => Ok(l.answer(&call)),
                    LockerAt::Remote(node) => tokio::time::timeout(limit, node.locks(&call))
                        .await
                        .unwrap_or_else(|_| {
                            Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "locker did not answer in time",
                            ))
                        }),
                };
                match got {
                    Ok(a) if a.len() == n => a.into_iter().map(Some).collect(),
                    Ok(_) => vec![None; n],
                    Err(e) => {
                        tracing::debug!(error = %e, "locker unreachable");
                        vec![None; n]
                    }
                }
            }
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    fn tally(answers: &[Option<Answer>]) -> Round {
        let mut r = Round::default();
        for a in answers {
            match a {
                Some(Answer::Granted) => r.granted += 1,
                Some(Answer::Stale { max }) => {
                    r.stale += 1;
                    r.stale_max = r.stale_max.max(*max);
                }
                Some(_) => {}
                None => r.unreachable += 1,
            }
        }
        r
    }

    /// Releases `ask`'s lock everywhere, in the background.
    fn release(self: &Arc<Self>, ask: Ask) {
        let me = self.clone();
        self.rt.spawn(async move {
            me.round(LockOp::Unlock, &ask).await;
        });
    }
}

#[async_trait]
impl ClusterLocks for QuorumLocks {
    async fn lock(
        &self,
        resource: &str,
        kind: LockKind,
    ) -> Result<Box<dyn ClusterLock>, LockFailure> {
        let inner = &self.inner;
        let needed = self.needed(kind);
        let mut ask = Ask {
            drive: String::new(),
            resource: resource.to_owned(),
            uid: uuid::Uuid::new_v4().to_string(),
            kind: match kind {
                LockKind::Read => Kind::Read,
                LockKind::Write => Kind::Write,
            },
            fence: 0,
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if kind == LockKind::Write {
                let last = inner.last_fence.load(Ordering::Relaxed);
                ask.fence = micros_now().max(last.saturating_add(1));
                inner.last_fence.fetch_max(ask.fence, Ordering::Relaxed);
            }
            let answers = inner.round(LockOp::Lock, &ask).await;
            let r = Inner::tally(&answers);
            if r.granted >= needed {
                let counter = match kind {
                    LockKind::Read => &inner.stats.granted_read,
                    LockKind::Write => &inner.stats.granted_write,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return Ok(Box::new(Held::start(inner.clone(), ask, needed)));
            }
            if r.granted > 0 {
                // partial grants go back at once (another asker may need them)
                inner.round(LockOp::Unlock, &ask).await;
            }
            let reachable = inner.n - r.unreachable;
            if reachable < needed {
                inner.stats.unreachable.fetch_add(1, Ordering::Relaxed);
                return Err(LockFailure::Unreachable {
                    needed,
                    got: reachable,
                });
            }
            if started.elapsed() >= inner.cfg.wait {
                inner.stats.busy.fetch_add(1, Ordering::Relaxed);
                return Err(LockFailure::Busy {
                    needed,
                    got: r.granted,
                });
            }
            // free where the fence was too low: asked again at once with
            // one above the highest those lockers granted
            inner.last_fence.fetch_max(r.stale_max, Ordering::Relaxed);
            if r.stale > 0 && r.granted + r.stale >= needed {
                continue;
            }
            let jitter = Duration::from_micros(u64::from(rand_u16()) % 5_000);
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// A little randomness for the retry jitter (two askers do not retry in
/// step).
fn rand_u16() -> u16 {
    let b = uuid::Uuid::new_v4().into_bytes();
    u16::from_le_bytes([b[0], b[1]])
}

/// A held lock: refreshed until dropped, released on drop.
struct Held {
    inner: Arc<Inner>,
    ask: Ask,
    refresher: tokio::task::JoinHandle<()>,
}

impl Held {
    fn start(inner: Arc<Inner>, ask: Ask, needed: usize) -> Self {
        let (i, a) = (inner.clone(), ask.clone());
        let refresher = inner.rt.spawn(async move {
            loop {
                tokio::time::sleep(i.cfg.refresh).await;
                let answers = i.round(LockOp::Refresh, &a).await;
                let held = answers
                    .iter()
                    .filter(|x| matches!(x, Some(Answer::Done)))
                    .count();
                if held < needed {
                    i.stats.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(resource = %a.resource, held, needed,
                        "lost the lock's quorum of lockers: commits under it are refused once a newer holder commits");
                    return;
                }
            }
        });
        Self {
            inner,
            ask,
            refresher,
        }
    }
}

impl ClusterLock for Held {
    fn fence(&self) -> u64 {
        self.ask.fence
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.refresher.abort();
        self.inner.release(self.ask.clone());
    }
}
