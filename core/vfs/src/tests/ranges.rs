//! Staging by range: sparse staging files, reads that merge them with the
//! stored object, commits that send only what changed.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_api::mem::MemLayer;
use cairn_api::patch::{PatchOptions, PatchStream};
use cairn_api::types::*;
use cairn_api::{
    BucketName, ObjectError, ObjectKey, ObjectLayer, ObjectResult, bytes_stream, collect_stream,
};
use futures::StreamExt as _;
use parking_lot::Mutex;
use rand::{Rng as _, SeedableRng as _};

use super::{b, object, put};
use crate::*;

/// One patch_object call: whether it named a base, its size, its changes.
type Patch = (bool, u64, Vec<(u64, Bytes)>);

/// MemLayer, recording what each patch carried and counting whole writes.
#[derive(Default)]
struct Counting {
    inner: MemLayer,
    patches: Mutex<Vec<Patch>>,
    puts: Mutex<u64>,
}

#[async_trait]
impl ObjectLayer for Counting {
    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.inner.make_bucket(bucket).await
    }
    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        self.inner.head_bucket(bucket).await
    }
    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        self.inner.list_buckets().await
    }
    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<cairn_api::BucketConfig> {
        self.inner.get_bucket_config(bucket).await
    }
    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: cairn_api::BucketChange,
    ) -> ObjectResult<()> {
        self.inner.update_bucket_config(bucket, change).await
    }
    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.inner.delete_bucket(bucket).await
    }
    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        *self.puts.lock() += 1;
        self.inner.put_object(bucket, key, body, opts).await
    }
    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        self.inner.get_object(bucket, key, opts).await
    }
    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        self.inner.head_object(bucket, key, conditions).await
    }
    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.inner.delete_object(bucket, key).await
    }
    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        self.inner.list_objects(bucket, opts).await
    }
    async fn patch_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        mut changes: PatchStream,
        opts: PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        let mut got = Vec::new();
        while let Some(c) = changes.next().await {
            got.push(c.map_err(|e| ObjectError::InvalidArgument {
                message: e.to_string(),
            })?);
        }
        self.patches
            .lock()
            .push((opts.base.is_some(), opts.size, got.clone()));
        // the default patch, not a counted PUT
        let replay = cairn_api::patch_stream(got);
        cairn_api::layer::patch_via_stream(&self.inner, bucket, key, replay, opts).await
    }
    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        self.inner.create_multipart_upload(bucket, key, opts).await
    }
    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo> {
        self.inner
            .upload_part(bucket, key, upload_id, part_number, body, opts)
            .await
    }
    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: usize,
    ) -> ObjectResult<ListPartsPage> {
        self.inner
            .list_parts(bucket, key, upload_id, part_number_marker, max_parts)
            .await
    }
    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: cairn_api::CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.inner
            .complete_multipart_upload_with(bucket, key, upload_id, parts, opts)
            .await
    }
    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        self.inner
            .abort_multipart_upload(bucket, key, upload_id)
            .await
    }
    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        self.inner.list_multipart_uploads(bucket, opts).await
    }
}

struct C {
    layer: Arc<Counting>,
    vfs: Vfs,
    spool: tempfile::TempDir,
}

async fn counting(f: impl FnOnce(&mut VfsConfig)) -> C {
    let layer = Arc::new(Counting::default());
    layer.make_bucket(&b()).await.unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = VfsConfig::new(spool.path());
    f(&mut cfg);
    let vfs = Vfs::new(layer.clone(), cfg).unwrap();
    C { layer, vfs, spool }
}

fn random_bytes(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<u8> {
    // never zero: a zero chunk in a patch must be one the view made
    (0..n).map(|_| rng.random_range(1..=255u8)).collect()
}

async fn file_ino(vfs: &Vfs, name: &str) -> u64 {
    let dir = vfs.lookup(ROOT_INO, "bkt").await.unwrap().ino;
    vfs.lookup(dir, name).await.unwrap().ino
}

async fn open_rw(vfs: &Vfs, ino: u64) -> u64 {
    vfs.open(
        ino,
        OpenMode {
            write: true,
            truncate: false,
        },
    )
    .await
    .unwrap()
}

async fn stored(l: &Counting, k: &str) -> Vec<u8> {
    let got = l
        .inner
        .get_object(&b(), &ObjectKey::new(k).unwrap(), GetOptions::default())
        .await
        .unwrap();
    collect_stream(got.body).await.unwrap()
}

async fn truncate(vfs: &Vfs, ino: u64, size: u64) {
    vfs.setattr(
        ino,
        SetAttr {
            size: Some(size),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// Random pwrites, truncates down and up, writes past the end and reads
/// while dirty, against a `Vec<u8>` after every step and the stored
/// object after every fsync; the spool budget holds exactly the bytes
/// written since the last commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_writes_and_truncates_match_a_model() {
    for seed in 0..4u64 {
        let c = counting(|_| {}).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut model = random_bytes(&mut rng, 2 << 20);
        c.layer
            .put_object(
                &b(),
                &ObjectKey::new("f").unwrap(),
                bytes_stream(model.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap();
        let ino = file_ino(&c.vfs, "f").await;
        let mut fh = open_rw(&c.vfs, ino).await;
        let mut dirty = vec![false; model.len()];
        for step in 0..250 {
            let op = rng.random_range(0..100);
            if op < 45 {
                let off = rng.random_range(0..model.len() + (64 << 10));
                let n = rng.random_range(1..40_000);
                let data = random_bytes(&mut rng, n);
                assert_eq!(
                    c.vfs.write(fh, off as u64, &data).await.unwrap() as usize,
                    data.len()
                );
                let end = off + data.len();
                if model.len() < end {
                    model.resize(end, 0);
                    dirty.resize(end, false);
                }
                model[off..end].copy_from_slice(&data);
                dirty[off..end].fill(true);
            } else if op < 55 {
                let n = if rng.random_range(0..8) == 0 {
                    0
                } else {
                    rng.random_range(0..(model.len() * 3 / 2).min(4 << 20) + 1)
                };
                truncate(&c.vfs, ino, n as u64).await;
                model.resize(n, 0);
                dirty.resize(n, false);
            } else if op < 90 {
                let off = rng.random_range(0..model.len() + 100);
                let size = rng.random_range(1..300_000u32);
                let got = c.vfs.read(fh, off as u64, size).await.unwrap().to_vec();
                let want = model
                    .get(off..(off + size as usize).min(model.len()))
                    .unwrap_or_default();
                if got != want {
                    let first = got.iter().zip(want.iter()).position(|(a, b)| a != b);
                    panic!(
                        "seed {seed} step {step}: read at {off} of {size}: got {} want {} first diff {first:?} (len {})",
                        got.len(),
                        want.len(),
                        model.len()
                    );
                }
            } else if op < 97 {
                c.vfs.fsync(fh).await.unwrap();
                assert!(
                    stored(&c.layer, "f").await == model,
                    "seed {seed} step {step}: the object after fsync"
                );
                dirty.fill(false);
            } else {
                c.vfs.release(fh).await.unwrap();
                assert!(stored(&c.layer, "f").await == model, "after release");
                dirty.fill(false);
                fh = open_rw(&c.vfs, ino).await;
            }
            let want = dirty.iter().filter(|d| **d).count() as u64;
            assert_eq!(
                c.vfs.staged_bytes(),
                want,
                "seed {seed} step {step}: the budget counts dirty bytes"
            );
        }
        c.vfs.release(fh).await.unwrap();
        assert!(stored(&c.layer, "f").await == model);
        assert_eq!(c.vfs.staged_bytes(), 0);
        // nothing left in the spool
        let left = std::fs::read_dir(c.spool.path()).unwrap().count();
        assert_eq!(left, 0, "staging files are removed after the commit");
        // the stored file was patched, never written whole (truncates to
        // 0 are written whole: the spool holds all of such a file)
        assert!(!c.layer.patches.lock().is_empty());
    }
}

/// A 20 MiB file, three 4 KiB writes: the commit carries those 12 KiB
/// and nothing else (no zero chunks, no PUT of the file).
#[tokio::test]
async fn a_commit_sends_only_the_changed_ranges() {
    let c = counting(|_| {}).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut model = random_bytes(&mut rng, 20 << 20);
    c.layer
        .put_object(
            &b(),
            &ObjectKey::new("big").unwrap(),
            bytes_stream(model.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let puts_before = *c.layer.puts.lock();
    let ino = file_ino(&c.vfs, "big").await;
    let fh = open_rw(&c.vfs, ino).await;
    let offs = [7u64 << 20, 123, 15 << 20];
    for &o in &offs {
        let data = random_bytes(&mut rng, 4096);
        c.vfs.write(fh, o, &data).await.unwrap();
        model[o as usize..o as usize + 4096].copy_from_slice(&data);
    }
    // nothing was copied into the spool
    assert_eq!(c.vfs.staged_bytes(), 3 * 4096);
    c.vfs.fsync(fh).await.unwrap();
    {
        let p = c.layer.patches.lock();
        assert_eq!(p.len(), 1, "one patch");
        let (based, size, changes) = &p[0];
        assert!(*based, "a patch of the version opened");
        assert_eq!(*size, 20 << 20);
        let mut want: Vec<u64> = offs.to_vec();
        want.sort();
        let got: Vec<(u64, usize)> = changes.iter().map(|(o, d)| (*o, d.len())).collect();
        assert_eq!(got, want.iter().map(|o| (*o, 4096)).collect::<Vec<_>>());
        let total: usize = changes.iter().map(|(_, d)| d.len()).sum();
        assert_eq!(total, 12 << 10);
    }
    assert_eq!(*c.layer.puts.lock(), puts_before, "no PUT from the view");
    assert!(stored(&c.layer, "big").await == model);
    // a truncate down then up: the cleared bytes go as zeros (the base
    // had bytes there), the rest of the base is not sent
    truncate(&c.vfs, ino, 100).await;
    truncate(&c.vfs, ino, 1000).await;
    c.vfs.write(fh, 500, b"0123456789").await.unwrap();
    c.vfs.fsync(fh).await.unwrap();
    {
        let p = c.layer.patches.lock();
        let (_, size, changes) = &p[1];
        assert_eq!(*size, 1000);
        let got: Vec<(u64, usize, bool)> = changes
            .iter()
            .map(|(o, d)| (*o, d.len(), d.iter().all(|x| *x == 0)))
            .collect();
        assert_eq!(
            got,
            vec![(100, 400, true), (500, 10, false), (510, 490, true)]
        );
    }
    let mut want = model[..100].to_vec();
    want.resize(1000, 0);
    want[500..510].copy_from_slice(b"0123456789");
    assert!(stored(&c.layer, "big").await == want);
    c.vfs.release(fh).await.unwrap();
}

/// Another front replaced the object after the open: the ranges go onto
/// its current version. Deleted meanwhile: the file comes back with what
/// was written here.
#[tokio::test]
async fn a_changed_base_takes_the_ranges_and_a_deleted_one_comes_back() {
    let c = counting(|_| {}).await;
    let k = ObjectKey::new("f").unwrap();
    let put_whole = |data: Vec<u8>| {
        let l = c.layer.clone();
        let k = k.clone();
        async move {
            l.inner
                .put_object(&b(), &k, bytes_stream(data), PutOptions::default())
                .await
                .unwrap();
        }
    };
    put_whole(vec![b'a'; 100_000]).await;
    let ino = file_ino(&c.vfs, "f").await;
    let fh = open_rw(&c.vfs, ino).await;
    c.vfs.write(fh, 1000, &[b'X'; 4096]).await.unwrap();
    // behind the view's back
    put_whole(vec![b'b'; 100_000]).await;
    c.vfs.fsync(fh).await.unwrap();
    let mut want = vec![b'b'; 100_000];
    want[1000..5096].fill(b'X');
    assert!(
        stored(&c.layer, "f").await == want,
        "the ranges on the new version"
    );
    {
        let p = c.layer.patches.lock();
        assert_eq!(p.len(), 2, "refused against the old base, then applied");
        assert!(p[0].0 && !p[1].0);
    }
    // after the commit, its result is the base
    c.vfs.write(fh, 0, b"Y").await.unwrap();
    c.vfs.fsync(fh).await.unwrap();
    want[0] = b'Y';
    assert!(stored(&c.layer, "f").await == want);
    assert_eq!(c.layer.patches.lock().len(), 3);
    // deleted behind the view's back: written whole again (the bucket
    // keeps no versions: what was not written here is zeros)
    c.vfs.write(fh, 10, b"Z").await.unwrap();
    c.layer.inner.delete_object(&b(), &k).await.unwrap();
    c.vfs.fsync(fh).await.unwrap();
    let mut gone = vec![0u8; 100_000];
    gone[10] = b'Z';
    assert!(stored(&c.layer, "f").await == gone);
    c.vfs.release(fh).await.unwrap();
}

/// Truncating a file to 1 GiB and writing 4 KiB costs 4 KiB of spool.
#[tokio::test]
async fn the_spool_budget_counts_dirty_bytes_only() {
    let c = counting(|cfg| cfg.spool_limit = 1 << 20).await;
    let data = vec![b'd'; 8192];
    c.layer
        .put_object(
            &b(),
            &ObjectKey::new("disk").unwrap(),
            bytes_stream(data.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let ino = file_ino(&c.vfs, "disk").await;
    let fh = open_rw(&c.vfs, ino).await;
    truncate(&c.vfs, ino, 1 << 30).await;
    assert_eq!(c.vfs.staged_bytes(), 0);
    c.vfs.write(fh, 512 << 20, &[7u8; 4096]).await.unwrap();
    assert_eq!(c.vfs.staged_bytes(), 4096);
    assert_eq!(c.vfs.getattr(ino).await.unwrap().size, 1 << 30);
    let r = c.vfs.read(fh, (512 << 20) - 2, 6).await.unwrap().to_vec();
    assert_eq!(r, [0, 0, 7, 7, 7, 7]);
    let r = c.vfs.read(fh, 8190, 4).await.unwrap().to_vec();
    assert_eq!(r, [b'd', b'd', 0, 0]);
    // the limit still holds for what is written
    assert!(matches!(
        c.vfs.write(fh, 0, &vec![1u8; 2 << 20]).await,
        Err(VfsError::NoSpace { .. })
    ));
    truncate(&c.vfs, ino, 16384).await;
    assert_eq!(c.vfs.staged_bytes(), 0);
    c.vfs.release(fh).await.unwrap();
    let mut want = data;
    want.resize(16384, 0);
    assert!(stored(&c.layer, "disk").await == want);
}

/// A staging made durable (sync_staging: spool file and sidecar) is
/// applied by another view as its ranges, onto the object's current
/// version: the rest of the file stays as it is.
#[tokio::test]
async fn a_synced_staging_is_applied_as_ranges_by_a_new_view() {
    let t = super::setup(|_| {}).await;
    let old: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8 + 1).collect();
    put(&t.layer, "f", &old).await;
    let ino = file_ino(&t.vfs, "f").await;
    let fh = open_rw(&t.vfs, ino).await;
    t.vfs.write(fh, 1_000_000, &[b'X'; 5000]).await.unwrap();
    t.vfs.write(fh, 2_999_000, &[b'T'; 2000]).await.unwrap();
    let path = t.vfs.sync_staging(fh).await.unwrap().unwrap();
    let side = crate::sidecar::path_of(&path).unwrap();
    let state = crate::sidecar::read(&side).unwrap();
    assert_eq!(
        state.dirty,
        vec![(1_000_000, 1_005_000), (2_999_000, 3_001_000)]
    );
    assert_eq!((state.base_valid, state.len), (3_000_000, 3_001_000));
    // the sparse spool file holds only what was written
    let kept = tempfile::tempdir().unwrap();
    let copy = cairn_api::SafePath::root(kept.path())
        .join_str("stage-copy")
        .unwrap();
    std::fs::copy(&path, &copy).unwrap();
    // this view goes away without committing (a crash)
    drop(t.vfs);
    assert!(object(&t.layer, "f").await.unwrap().0 == old);
    let spool = tempfile::tempdir().unwrap();
    let vfs = Vfs::new(t.layer.clone(), VfsConfig::new(spool.path())).unwrap();
    let dir = vfs.lookup(ROOT_INO, "bkt").await.unwrap().ino;
    let n = vfs
        .apply_staged(
            StagedTarget {
                parent: dir,
                name: "f",
                perm: 0o644,
                uid: 0,
                gid: 0,
            },
            &copy,
            &state,
        )
        .await
        .unwrap();
    assert_eq!(n, 7000);
    let mut want = old;
    want[1_000_000..1_005_000].fill(b'X');
    want.truncate(2_999_000);
    want.extend_from_slice(&[b'T'; 2000]);
    assert!(object(&t.layer, "f").await.unwrap().0 == want);
}

/// An open file renamed keeps patching: its moved version is the base of
/// later writes (no refused patch, no rewrite; MemLayer's move keeps the
/// ETag, so this checks the path, the store's new version id is what
/// `set_open_base` is for).
#[tokio::test]
async fn a_renamed_open_file_patches_its_moved_version() {
    let c = counting(|_| {}).await;
    let mut model = vec![b'r'; 300_000];
    c.layer
        .put_object(
            &b(),
            &ObjectKey::new("a").unwrap(),
            bytes_stream(model.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let ino = file_ino(&c.vfs, "a").await;
    let fh = open_rw(&c.vfs, ino).await;
    c.vfs.write(fh, 10, b"one").await.unwrap();
    model[10..13].copy_from_slice(b"one");
    let dir = c.vfs.lookup(ROOT_INO, "bkt").await.unwrap().ino;
    c.vfs.rename(dir, "a", dir, "b", false).await.unwrap();
    c.vfs.write(fh, 200_000, b"two").await.unwrap();
    model[200_000..200_003].copy_from_slice(b"two");
    c.vfs.fsync(fh).await.unwrap();
    assert!(stored(&c.layer, "b").await == model);
    {
        let p = c.layer.patches.lock();
        assert_eq!(p.len(), 2, "the commit before the move and the one after");
        assert!(p.iter().all(|(based, _, _)| *based), "no patch was refused");
        assert_eq!(p[1].2.len(), 1);
    }
    c.vfs.release(fh).await.unwrap();
}
