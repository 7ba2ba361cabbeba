//! Write-back commits (`PutOptions::write_back`, the file fronts' close):
//! the drives install the new version without fsyncs
//! (`Drive::commit_version_with(.., durable: false)`, as healing does),
//! so the object is visible at once; a flusher task then makes every such
//! commit durable with one syncfs per file system of the drives, at most
//! `DELAY` after the first commit it covers, and at once when someone
//! waits in `ErasureSet::sync` (fsync, fsyncdir, unmount).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cairn_api::{ObjectError, ObjectResult, QuorumOp};
use tokio::sync::{Notify, watch};

use crate::drive::Drive;
use crate::set::ErasureSet;

/// How long the flusher gathers commits before a sync round.
const DELAY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, Default)]
struct Round {
    /// Write-back commits made durable (counted in `WriteBack::commits`).
    durable: u64,
    /// Sync rounds that missed the write quorum so far.
    failed: u64,
    /// Drives synced in the last failed round.
    got: usize,
}

#[derive(Debug)]
pub(crate) struct WriteBack {
    /// Write-back commits finished so far.
    commits: AtomicU64,
    rounds: watch::Sender<Round>,
    /// A commit is waiting for the next round.
    wake: Notify,
    /// Someone waits in `sync`: no gathering delay.
    urgent: Notify,
    started: AtomicBool,
}

impl Default for WriteBack {
    fn default() -> Self {
        Self {
            commits: AtomicU64::new(0),
            rounds: watch::channel(Round::default()).0,
            wake: Notify::new(),
            urgent: Notify::new(),
            started: AtomicBool::new(false),
        }
    }
}

impl ErasureSet {
    /// Counts a finished write-back commit for the flusher (started on the
    /// first one).
    pub(crate) fn written_back(&self) {
        let wb = &self.write_back;
        wb.commits.fetch_add(1, Ordering::AcqRel);
        if !wb.started.swap(true, Ordering::AcqRel) {
            let (_, quorum) = self.default_quorums();
            tokio::spawn(flusher(wb.clone(), self.drives.clone(), quorum));
        }
        wb.wake.notify_one();
    }

    /// Returns once every write-back commit finished before the call is
    /// durable on a write quorum of drives.
    pub(crate) async fn sync_impl(&self) -> ObjectResult<()> {
        let wb = &self.write_back;
        let target = wb.commits.load(Ordering::Acquire);
        let mut rx = wb.rounds.subscribe();
        let start = *rx.borrow();
        if start.durable >= target {
            return Ok(());
        }
        wb.urgent.notify_one();
        let (_, quorum) = self.default_quorums();
        let r = *rx
            .wait_for(|r| r.durable >= target || r.failed > start.failed)
            .await
            .map_err(ObjectError::internal)?;
        if r.durable >= target {
            Ok(())
        } else {
            Err(ObjectError::Unavailable {
                op: QuorumOp::Write,
                needed: quorum,
                got: r.got,
            })
        }
    }
}

async fn flusher(wb: Arc<WriteBack>, drives: Vec<Arc<Drive>>, quorum: usize) {
    loop {
        if wb.commits.load(Ordering::Acquire) <= wb.rounds.borrow().durable {
            wb.wake.notified().await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(DELAY) => {}
            _ = wb.urgent.notified() => {}
        }
        // every commit counted here finished before the syncfs starts
        let target = wb.commits.load(Ordering::Acquire);
        let ds = drives.clone();
        let got = tokio::task::spawn_blocking(move || sync_drives(&ds))
            .await
            .unwrap_or(0);
        wb.rounds.send_modify(|r| {
            if got >= quorum {
                r.durable = r.durable.max(target);
            } else {
                r.failed += 1;
                r.got = got;
            }
        });
        if got < quorum {
            tracing::error!(
                got,
                quorum,
                "write-back sync missed the write quorum; retrying"
            );
        }
    }
}

/// One syncfs per file system holding online drives; returns how many
/// online drives are durable now.
fn sync_drives(drives: &[Arc<Drive>]) -> usize {
    // (node and device, drives on it with their deferred folders)
    type OnDevice<'a> = Vec<(&'a Arc<Drive>, Vec<std::path::PathBuf>)>;
    let mut groups: Vec<((String, u64), OnDevice<'_>)> = Vec::new();
    for d in drives.iter().filter(|d| d.is_online()) {
        let Ok(m) = d.io().stat(&d.root) else {
            continue;
        };
        let made = d.take_deferred();
        let on = (d.io().node().to_owned(), m.dev);
        match groups.iter_mut().find(|(dev, _)| *dev == on) {
            Some((_, g)) => g.push((d, made)),
            None => groups.push((on, vec![(d, made)])),
        }
    }
    let mut got = 0;
    for (_, group) in groups {
        let Some((first, _)) = group.first() else {
            continue;
        };
        let root = first.root.clone();
        let res = first.io().sync_fs(&root);
        if let Err(e) = &res {
            tracing::warn!(drive = %root.display(), error = %e, "write-back syncfs failed");
        }
        for (d, made) in group {
            d.after_sync_fs(made, res.is_ok());
            got += usize::from(res.is_ok());
        }
    }
    got
}
