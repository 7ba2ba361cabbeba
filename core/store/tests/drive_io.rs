#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! Every file operation of the store goes through the drive's `DriveIo`:
//! drives whose configured roots name no folder of this machine (as a
//! remote node's drives do) are served through an io that maps them to
//! real folders elsewhere. A single operation that bypassed the trait
//! would touch the configured path: it fails (or, run as root, makes the
//! missing folder), and the test sees either.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cairn_api::SafePath;
use cairn_api::admin::HealRequest;
use cairn_api::{
    BucketName, GetOptions, ObjectKey, ObjectLayer, PutOptions, bytes_stream, collect_stream,
};
use cairn_core::driveio::{
    DirEntry, DriveIo, FileRead, FileWrite, HeldLock, IoFor, LocalIo, Space, Stat, Walk, WalkQuery,
};
use cairn_core::drivelock::LockError;
use cairn_core::{ErasureSets, SetsConfig};

/// The drives' roots as configured: nothing is there on this machine.
fn nowhere() -> PathBuf {
    PathBuf::from(format!("/cairn-nowhere-{}", uuid::Uuid::new_v4().simple()))
}

/// A drive whose root `shown` is served from `real`; any path outside
/// `shown` is refused and recorded.
#[derive(Debug)]
struct Rebased {
    shown: PathBuf,
    real: PathBuf,
    /// The node holding it: drive 0 is this node's, the others another's.
    node: &'static str,
    outside: Arc<parking_lot::Mutex<Vec<PathBuf>>>,
}

impl Rebased {
    fn map(&self, p: &Path) -> std::io::Result<PathBuf> {
        match p.strip_prefix(&self.shown) {
            Ok(rel) => Ok(self.real.join(rel)),
            Err(_) => {
                self.outside.lock().push(p.to_path_buf());
                Err(std::io::Error::other(format!(
                    "{} is not on this drive",
                    p.display()
                )))
            }
        }
    }

    fn map_safe(&self, p: &SafePath) -> std::io::Result<SafePath> {
        Ok(SafePath::root(self.map(p)?))
    }
}

impl DriveIo for Rebased {
    /// Another node's drive but for drive 0, as far as the set can tell
    /// (its version cache stays off; drive 0's replacement is this
    /// node's to format).
    fn node(&self) -> &str {
        self.node
    }
    fn read(&self, p: &Path) -> std::io::Result<Vec<u8>> {
        LocalIo.read(&self.map(p)?)
    }
    fn read_prefix(&self, p: &Path, len: u64) -> std::io::Result<Vec<u8>> {
        LocalIo.read_prefix(&self.map(p)?, len)
    }
    fn read_record(&self, p: &Path, whole: bool) -> std::io::Result<Vec<u8>> {
        LocalIo.read_record(&self.map(p)?, whole)
    }
    fn write_atomic(
        &self,
        tmp: &Path,
        dest: &Path,
        body: &[u8],
        durable: bool,
    ) -> std::io::Result<()> {
        LocalIo.write_atomic(&self.map(tmp)?, &self.map(dest)?, body, durable)
    }
    fn write_at(&self, p: &Path, at: u64, body: &[u8], durable: bool) -> std::io::Result<()> {
        LocalIo.write_at(&self.map(p)?, at, body, durable)
    }
    fn open(&self, p: &Path, offset: u64) -> std::io::Result<Box<dyn FileRead>> {
        LocalIo.open(&self.map(p)?, offset)
    }
    fn create(&self, p: &Path) -> std::io::Result<Box<dyn FileWrite>> {
        LocalIo.create(&self.map(p)?)
    }
    fn make_root(&self, root: &Path) -> std::io::Result<Vec<PathBuf>> {
        let made = LocalIo.make_root(&self.map(root)?)?;
        Ok(if made.is_empty() {
            made
        } else {
            vec![root.to_path_buf()]
        })
    }
    fn create_dir(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.create_dir(&self.map(p)?)
    }
    fn create_dir_all(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.create_dir_all(&self.map(p)?)
    }
    fn remove_file(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.remove_file(&self.map(p)?)
    }
    fn remove_dir(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.remove_dir(&self.map(p)?)
    }
    fn remove_dir_all(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.remove_dir_all(&self.map(p)?)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        LocalIo.rename(&self.map(from)?, &self.map(to)?)
    }
    fn read_dir(&self, p: &Path) -> std::io::Result<Vec<DirEntry>> {
        LocalIo.read_dir(&self.map(p)?)
    }
    fn stat(&self, p: &Path) -> std::io::Result<Stat> {
        LocalIo.stat(&self.map(p)?)
    }
    fn lstat(&self, p: &Path) -> std::io::Result<Stat> {
        LocalIo.lstat(&self.map(p)?)
    }
    fn sync_dir(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.sync_dir(&self.map(p)?)
    }
    fn sync_fs(&self, p: &Path) -> std::io::Result<()> {
        LocalIo.sync_fs(&self.map(p)?)
    }
    fn space(&self, p: &Path) -> std::io::Result<Space> {
        LocalIo.space(&self.map(p)?)
    }
    fn lock(&self, sys_dir: &SafePath) -> Result<HeldLock, LockError> {
        LocalIo.lock(&self.map_safe(sys_dir)?)
    }
    fn probe_lock(&self, sys_dir: &SafePath) -> Result<(), LockError> {
        LocalIo.probe_lock(&self.map_safe(sys_dir)?)
    }
    fn walk(&self, bucket_dir: &SafePath, q: &WalkQuery) -> Walk {
        match self.map_safe(bucket_dir) {
            Ok(d) => LocalIo.walk(&d, q),
            Err(_) => Box::new(std::iter::empty()),
        }
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    shown: Vec<PathBuf>,
    real: Vec<PathBuf>,
    outside: Arc<parking_lot::Mutex<Vec<PathBuf>>>,
    cfg: SetsConfig,
}

/// `n` drives shown under a root that does not exist, kept in a tempdir.
fn fixture(n: usize, set_drive_count: usize) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = nowhere();
    let shown: Vec<PathBuf> = (0..n).map(|i| base.join(format!("d{i}"))).collect();
    let real: Vec<PathBuf> = (0..n).map(|i| tmp.path().join(format!("d{i}"))).collect();
    let outside: Arc<parking_lot::Mutex<Vec<PathBuf>>> = Default::default();
    let (s, r, o) = (shown.clone(), real.clone(), outside.clone());
    let io = IoFor::new(move |root| {
        let i = s.iter().position(|p| p == root).unwrap_or(usize::MAX);
        Arc::new(Rebased {
            shown: root.to_path_buf(),
            real: r
                .get(i)
                .cloned()
                .unwrap_or_else(|| PathBuf::from("/dev/null/none")),
            node: if i == 0 { "" } else { "elsewhere" },
            outside: o.clone(),
        }) as Arc<dyn DriveIo>
    });
    Fixture {
        _tmp: tmp,
        shown,
        real,
        outside,
        cfg: SetsConfig {
            set_drive_count: Some(set_drive_count),
            drive_io: io,
            ..Default::default()
        },
    }
}

impl Fixture {
    fn open(&self) -> ErasureSets {
        ErasureSets::open(self.shown.clone(), self.cfg.clone()).unwrap()
    }

    /// Nothing touched the configured roots, and nothing asked the ios for
    /// a path outside their drive.
    fn assert_nothing_bypassed(&self) {
        for p in &self.shown {
            assert!(
                !p.exists() && p.parent().is_none_or(|b| !b.exists()),
                "{} was made: an operation bypassed DriveIo",
                p.display()
            );
        }
        assert!(
            self.outside.lock().is_empty(),
            "paths outside their drive: {:?}",
            self.outside.lock()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_runs_on_drives_reached_only_through_their_io() {
    let f = fixture(8, 4);
    let sets = f.open();
    cairn_api::conformance::run_all(&sets).await;
    // the data is on the real folders, in both sets
    for r in &f.real {
        assert!(
            r.join(".cairn.sys/format.json").is_file(),
            "{}",
            r.display()
        );
    }
    f.assert_nothing_bypassed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_replaced_behind_its_io_is_healed_through_it() {
    let f = fixture(4, 4);
    let sets = f.open();
    let b = BucketName::new("heal").unwrap();
    sets.make_bucket(&b).await.unwrap();
    let mut objs = Vec::new();
    for i in 0..12usize {
        let k = ObjectKey::new(format!("dir/o{i}")).unwrap();
        // inline and data-dir objects both
        let body = Bytes::from(vec![i as u8; 100 + i * 40_000]);
        sets.put_object(&b, &k, bytes_stream(body.clone()), PutOptions::default())
            .await
            .unwrap();
        objs.push((k, body));
    }
    // drive 0 replaced by an empty folder, then two others lost: only a
    // heal through the io can make the objects readable again
    std::fs::remove_dir_all(&f.real[0]).unwrap();
    std::fs::create_dir(&f.real[0]).unwrap();
    let set = &sets.sets()[0];
    assert_eq!(set.monitor_drives().await, 1, "the empty drive joins");
    let sum = set
        .heal_all(&HealRequest::default(), std::time::Duration::ZERO, None)
        .await;
    assert_eq!(sum.failed, 0, "{sum:?}");
    std::fs::remove_dir_all(&f.real[1]).unwrap();
    std::fs::remove_dir_all(&f.real[2]).unwrap();
    for (k, body) in &objs {
        let g = sets.get_object(&b, k, GetOptions::default()).await.unwrap();
        assert_eq!(&collect_stream(g.body).await.unwrap(), body, "{k}");
    }
    f.assert_nothing_bypassed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_remote_drives_a_record_changed_elsewhere_is_read_as_it_is_now() {
    // Another node's commit changes these records without this set
    // knowing: its version cache must be off, every GET reads the drives.
    let f = fixture(4, 4);
    let sets = f.open();
    let b = BucketName::new("peer").unwrap();
    sets.make_bucket(&b).await.unwrap();
    let k = ObjectKey::new("small").unwrap();
    let mut opts = PutOptions::default();
    opts.metadata.user.insert("owner".into(), "first".into());
    let body = Bytes::from(vec![5u8; 3000]);
    sets.put_object(&b, &k, bytes_stream(body.clone()), opts)
        .await
        .unwrap();
    let owner = || async {
        let g = sets
            .get_object(&b, &k, GetOptions::default())
            .await
            .unwrap();
        assert_eq!(collect_stream(g.body).await.unwrap(), body);
        g.info
            .user_metadata
            .get("owner")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(owner().await, "first");
    for r in &f.real {
        let p = r.join("peer/small/cairn.meta");
        let mut m =
            cairn_core::meta::ObjectMeta::decode(&std::fs::read(&p).unwrap(), true).unwrap();
        m.versions[0].user.insert("owner".into(), "second".into());
        std::fs::write(&p, m.encode().unwrap()).unwrap();
    }
    assert_eq!(
        owner().await,
        "second",
        "a kept read answered for a changed record"
    );
    f.assert_nothing_bypassed();
}
