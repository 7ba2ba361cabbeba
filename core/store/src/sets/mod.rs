//! `ErasureSets`: a deployment's erasure sets, each key on the set its
//! name hashes to (`placement`), buckets on every set. The fronts see
//! one `ObjectLayer` (`layer.rs`); listings merge the sets' sorted
//! listings (`merge.rs`); admin, metrics and configuration records fan
//! out or are placed like keys (`admin.rs`).
//!
//! Set 0 is the home of bucket existence: a bucket is made on the other
//! sets first and on set 0 last, deleted from set 0 last, and its
//! existence and configuration are read from set 0.

mod admin;
mod layer;
mod layout;
mod merge;
pub mod placement;

use std::path::PathBuf;
use std::sync::Arc;

pub use layout::SetLayout;
pub use placement::SizingError;

use crate::set::ErasureSet;
use crate::setup::SetupError;

/// How the drives given are opened.
#[derive(Debug, Clone, Default)]
pub struct SetsConfig {
    /// Parity of the STANDARD class (per set; default as the set size
    /// gives it); kept from the first start.
    pub parity: Option<usize>,
    /// Drives per erasure set on a first start (default: all drives up
    /// to 16, else the largest size in 2..=16 dividing the drive count).
    pub set_drive_count: Option<usize>,
    /// Each drive's file operations (default: this machine's).
    pub drive_io: crate::driveio::IoFor,
    /// Each set's lockers in a cluster (none on one node: the node's own
    /// lock table is the only one).
    pub set_locks: Option<crate::locks::LocksFor>,
    /// A wait before every commit, under the object's write lock: a
    /// fault switch for tests (a node paused while it holds a lock).
    pub fault_commit_delay: std::time::Duration,
}

pub struct ErasureSets {
    sets: Vec<Arc<ErasureSet>>,
    deployment_id: String,
    /// The placement hash's key (the deployment id's bytes).
    key: [u8; 16],
    /// In a cluster: bumped when another node changed a config record
    /// (`ConfigStore::changes`: IAM reads its records again).
    config_changes: Option<tokio::sync::watch::Sender<u64>>,
}

/// The `bucket` of the change events of config records (IAM): no
/// bucket's name (a leading dot), so no front takes it for one.
pub const CONFIG_CHANGES: &str = ".cairn.sys";

impl ErasureSets {
    /// Opens (and on a first start formats) every set: drives are found
    /// in their sets by the ids their formats hold, empty drives fill the
    /// places nobody holds, and what does not belong is refused naming
    /// the drive. Every set is checked before any is opened, so a refused
    /// start formats nothing.
    pub fn open(paths: Vec<PathBuf>, cfg: SetsConfig) -> Result<Self, SetupError> {
        let plan = layout::plan(&paths, cfg.set_drive_count, &cfg.drive_io)?;
        for p in &plan.paths {
            ErasureSet::check_drives_with(p, cfg.parity, &cfg.drive_io)?;
        }
        let changes = tokio::sync::broadcast::channel(cairn_api::changes::CHANGE_QUEUE).0;
        let mut sets = Vec::with_capacity(plan.paths.len());
        for (i, p) in plan.paths.iter().enumerate() {
            let mut set = ErasureSet::open_in(
                p.clone(),
                cfg.parity,
                Some(plan.deployment.clone()),
                plan.layout(i),
                &cfg.drive_io,
            )?;
            // one stream of change events for the whole deployment
            set.changes = changes.clone();
            set.locks.cluster = cfg.set_locks.as_ref().map(|l| l.for_set(p));
            set.commit_delay = cfg.fault_commit_delay;
            sets.push(Arc::new(set));
        }
        Ok(Self {
            key: placement::deployment_key(&plan.deployment),
            deployment_id: plan.deployment,
            sets,
            config_changes: cfg
                .set_locks
                .is_some()
                .then(|| tokio::sync::watch::channel(0).0),
        })
    }

    /// The checks of [`ErasureSets::open`] without making, locking or
    /// writing anything.
    pub fn check_drives(paths: &[PathBuf], cfg: &SetsConfig) -> Result<(), SetupError> {
        let plan = layout::plan(paths, cfg.set_drive_count, &cfg.drive_io)?;
        for p in &plan.paths {
            ErasureSet::check_drives_with(p, cfg.parity, &cfg.drive_io)?;
        }
        Ok(())
    }

    /// The sets, in order.
    pub fn sets(&self) -> &[Arc<ErasureSet>] {
        &self.sets
    }

    /// The set that holds `key` (its name alone decides, as in MinIO).
    pub fn set_of(&self, key: &str) -> &Arc<ErasureSet> {
        self.set_at(self.set_index_of(key))
    }

    /// The set both keys hash to, if they hash to the same one.
    pub(crate) fn common_set(&self, a: &str, b: &str) -> Option<&Arc<ErasureSet>> {
        let i = self.set_index_of(a);
        (i == self.set_index_of(b)).then(|| self.set_at(i))
    }

    fn set_at(&self, i: usize) -> &Arc<ErasureSet> {
        // `set_index` is below the set count, and there is at least one set
        #[allow(clippy::indexing_slicing)]
        &self.sets[i]
    }

    /// The index of the set that holds `key`.
    pub fn set_index_of(&self, key: &str) -> usize {
        placement::set_index(key, self.sets.len(), &self.key)
    }

    /// A change another node's store made (heard through the cluster's
    /// relay): cached bucket configuration goes, and this node's
    /// subscribers (the file fronts' caches) hear it.
    pub fn peer_change(&self, mut c: cairn_api::changes::Change) {
        c.from_peer = true;
        if c.bucket == CONFIG_CHANGES {
            if let Some(w) = &self.config_changes {
                w.send_modify(|n| *n += 1);
            }
            return;
        }
        if c.is_bucket() {
            for s in &self.sets {
                s.bucket_cfg.lock().remove(&c.bucket);
            }
        } else {
            self.set_of(&c.key).forget_cached(&c.bucket, &c.key);
        }
        let _ = self.home().changes.send(c);
    }

    /// Set 0: where bucket existence and configuration are read.
    pub(crate) fn home(&self) -> &Arc<ErasureSet> {
        // `open` makes at least one set
        #[allow(clippy::indexing_slicing)]
        &self.sets[0]
    }

    /// Every set but the home one.
    pub(crate) fn others(&self) -> impl Iterator<Item = &Arc<ErasureSet>> {
        self.sets.iter().skip(1)
    }

    pub fn deployment_id(&self) -> &str {
        &self.deployment_id
    }

    pub fn drive_count(&self) -> usize {
        self.sets.iter().map(|s| s.drive_count()).sum()
    }

    pub fn set_drive_count(&self) -> usize {
        self.home().drive_count()
    }

    /// Parity of the STANDARD class (the same in every set).
    pub fn parity(&self) -> usize {
        self.home().parity()
    }

    pub fn online_drives(&self) -> usize {
        self.sets.iter().map(|s| s.online_drives()).sum()
    }

    /// Ready for writes: every set has its write quorum (a key may land
    /// on any set).
    pub fn is_ready(&self) -> bool {
        self.sets.iter().all(|s| s.is_ready())
    }

    pub fn set_kms(&self, kms: Option<Arc<dyn crate::kms::Kms>>) {
        for s in &self.sets {
            s.set_kms(kms.clone());
        }
    }

    pub fn set_cipher(&self, cipher: crate::sse::Cipher) {
        for s in &self.sets {
            s.set_cipher(cipher);
        }
    }

    pub fn set_clock_offset(&self, secs: i64) {
        for s in &self.sets {
            s.set_clock_offset(secs);
        }
    }

    /// Starts each set's healer (of what this node's reads queued) and
    /// drive monitor (this node's view of the drives, and its own
    /// replacement drives): every node runs them.
    pub fn start_node_services(&self) {
        for s in &self.sets {
            s.start_healer();
            s.start_monitor();
        }
    }

    /// Starts each set's scanner: one node of a cluster runs them.
    pub fn start_scanners(&self, cfg: &crate::scan::ScannerConfig) {
        for s in &self.sets {
            s.start_scanner(cfg.clone());
        }
    }
}
