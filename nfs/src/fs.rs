//! The `nfsserve::vfs::NFSFileSystem` implementation: file ids from the
//! persistent map (ids.rs) resolved to view inodes, each call forwarded to
//! cairn-vfs, errors through error.rs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cairn_vfs::{Attr, FileKind, ROOT_INO, SetAttr, Vfs, VfsError};
use nfsserve::nfs::{
    fattr3, fileid3, filename3, fsinfo3, ftype3, nfs_fh3, nfspath3, nfsstat3, nfstime3,
    post_op_attr, sattr3, set_gid3, set_mode3, set_mtime, set_size3, set_uid3, specdata3,
};
use nfsserve::vfs::{DirEntry, NFSFileSystem, ReadDirResult, VFSCapabilities};
use parking_lot::Mutex;

use crate::error::status;
use crate::ids::{IdMap, ROOT_ID};
use crate::open::OpenFiles;
use crate::{NfsOptions, Squash};

type R<T> = Result<T, nfsstat3>;

/// Where a directory listing stands: the view's directory stream and, for
/// each id it handed out, the offset after it (NFS cookies are file ids).
struct DirCursor {
    fh: u64,
    after: HashMap<u64, u64>,
    used: std::time::Instant,
}

pub struct CairnNfs {
    vfs: Arc<Vfs>,
    ids: Arc<IdMap>,
    open: Arc<OpenFiles>,
    opts: NfsOptions,
    /// File id -> view inode, for ids resolved in this process.
    inos: Mutex<HashMap<u64, u64>>,
    dirs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirCursor>>>>,
}

fn name_of(n: &filename3) -> R<&str> {
    std::str::from_utf8(&n.0).map_err(|_| nfsstat3::NFS3ERR_INVAL)
}

fn time3(t: SystemTime) -> nfstime3 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    nfstime3 {
        seconds: d.as_secs() as u32,
        nseconds: d.subsec_nanos(),
    }
}

fn from_time3(t: nfstime3) -> SystemTime {
    UNIX_EPOCH + Duration::new(u64::from(t.seconds), t.nseconds)
}

fn fattr(id: u64, a: &Attr) -> fattr3 {
    fattr3 {
        ftype: match a.kind {
            FileKind::File => ftype3::NF3REG,
            FileKind::Dir => ftype3::NF3DIR,
            FileKind::Symlink => ftype3::NF3LNK,
        },
        mode: a.perm & 0o7777,
        nlink: a.nlink(),
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        used: a.size,
        rdev: specdata3::default(),
        fsid: 0xca12,
        fileid: id,
        atime: time3(a.mtime),
        mtime: time3(a.mtime),
        ctime: time3(a.ctime),
    }
}

impl CairnNfs {
    pub(crate) fn new(
        vfs: Arc<Vfs>,
        ids: Arc<IdMap>,
        open: Arc<OpenFiles>,
        opts: NfsOptions,
    ) -> Self {
        Self {
            vfs,
            ids,
            open,
            opts,
            inos: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a top-level name is exported (all buckets, or the named).
    fn bucket_allowed(&self, name: &str) -> bool {
        self.opts.buckets.is_empty() || self.opts.buckets.iter().any(|b| b == name)
    }

    fn squash_uid(&self, uid: u32) -> u32 {
        match self.opts.squash {
            Squash::None => uid,
            Squash::Root if uid != 0 => uid,
            _ => self.opts.anon_uid,
        }
    }

    fn squash_gid(&self, gid: u32) -> u32 {
        match self.opts.squash {
            Squash::None => gid,
            Squash::Root if gid != 0 => gid,
            _ => self.opts.anon_gid,
        }
    }

    /// Owner of something made without an owner in its attributes: nfsserve
    /// hands no credentials over, so the export's anonymous ids when
    /// squashing, else the view's defaults.
    fn new_owner(&self, s: &sattr3) -> (u32, u32) {
        let d = &self.vfs.config().defaults;
        let (du, dg) = match self.opts.squash {
            Squash::None => (d.uid, d.gid),
            _ => (self.opts.anon_uid, self.opts.anon_gid),
        };
        let uid = match s.uid {
            set_uid3::uid(u) => self.squash_uid(u),
            set_uid3::Void => du,
        };
        let gid = match s.gid {
            set_gid3::gid(g) => self.squash_gid(g),
            set_gid3::Void => dg,
        };
        (uid, gid)
    }

    /// The view inode of a file id, walking the persistent path when this
    /// process has not seen the id; an id whose entry is gone is STALE.
    async fn ino(&self, id: u64) -> R<u64> {
        if id == ROOT_ID {
            return Ok(ROOT_INO);
        }
        if let Some(&ino) = self.inos.lock().get(&id) {
            return Ok(ino);
        }
        self.resolve(id).await
    }

    async fn resolve(&self, id: u64) -> R<u64> {
        let names = self.ids.path(id).ok_or(nfsstat3::NFS3ERR_STALE)?;
        let mut ino = ROOT_INO;
        for n in &names {
            ino = match self.vfs.lookup(ino, n).await {
                Ok(a) => a.ino,
                Err(VfsError::NotFound) => return Err(nfsstat3::NFS3ERR_STALE),
                Err(e) => return Err(status(&e)),
            };
        }
        self.inos.lock().insert(id, ino);
        Ok(ino)
    }

    /// Attributes of an id; a cached inode that went away is resolved
    /// again by path once (another front may have replaced the object).
    async fn attr(&self, id: u64) -> R<Attr> {
        let ino = self.ino(id).await?;
        match self.vfs.getattr(ino).await {
            Ok(a) => Ok(a),
            Err(VfsError::NotFound) if id != ROOT_ID => {
                self.inos.lock().remove(&id);
                let ino = self.resolve(id).await?;
                self.vfs.getattr(ino).await.map_err(|e| match e {
                    VfsError::NotFound => nfsstat3::NFS3ERR_STALE,
                    e => status(&e),
                })
            }
            Err(e) => Err(status(&e)),
        }
    }

    fn remember(&self, id: u64, ino: u64) {
        self.inos.lock().insert(id, ino);
    }

    fn new_id(&self, dir: u64, name: &str) -> R<u64> {
        self.ids.child(dir, name).map_err(|e| {
            tracing::error!(error = %e, "file id map");
            nfsstat3::NFS3ERR_IO
        })
    }

    fn check_top(&self, dir: u64, name: &str) -> R<()> {
        if dir == ROOT_ID && self.vfs.config().bucket.is_none() && !self.bucket_allowed(name) {
            return Err(nfsstat3::NFS3ERR_NOENT);
        }
        Ok(())
    }

    fn writable(&self) -> R<()> {
        if self.vfs.config().read_only {
            Err(nfsstat3::NFS3ERR_ROFS)
        } else {
            Ok(())
        }
    }

    fn id_err(e: crate::ids::IdError) -> nfsstat3 {
        tracing::error!(error = %e, "file id map");
        nfsstat3::NFS3ERR_IO
    }

    async fn readdir_inner(&self, dirid: u64, start_after: u64, max: usize) -> R<ReadDirResult> {
        self.reap_dirs(Duration::from_secs(30));
        let ino = self.ino(dirid).await?;
        let cursor = {
            let existing = self.dirs.lock().get(&dirid).cloned();
            match existing {
                Some(c) => c,
                None => {
                    let fh = self.vfs.opendir(ino).await.map_err(|e| status(&e))?;
                    let c = Arc::new(tokio::sync::Mutex::new(DirCursor {
                        fh,
                        after: HashMap::new(),
                        used: std::time::Instant::now(),
                    }));
                    self.dirs.lock().entry(dirid).or_insert(c).clone()
                }
            }
        };
        let mut c = cursor.lock().await;
        c.used = std::time::Instant::now();
        let mut offset = if start_after == 0 {
            0
        } else {
            match c.after.get(&start_after) {
                Some(&o) => o,
                // a cookie this cursor did not hand out (or forgot):
                // re-list from the top and skip to it
                None => self.seek_cookie(&mut c, dirid, start_after).await?,
            }
        };
        let mut out = Vec::new();
        let mut end = false;
        let max = max.max(1);
        'pages: while out.len() < max {
            let page = self
                .vfs
                .readdir(c.fh, offset)
                .await
                .map_err(|e| status(&e))?;
            if page.is_empty() {
                end = true;
                break;
            }
            let keep = |e: &cairn_vfs::DirEntry| {
                e.name != "."
                    && e.name != ".."
                    && (dirid != ROOT_ID || self.bucket_allowed(&e.name))
            };
            let names: Vec<&str> = page
                .iter()
                .filter(|e| keep(e))
                .map(|e| e.name.as_str())
                .collect();
            let ids = self.ids.children(dirid, &names).map_err(Self::id_err)?;
            let mut ids = ids.into_iter();
            for e in &page {
                if out.len() >= max {
                    break 'pages;
                }
                offset = e.next_offset;
                if !keep(e) {
                    continue;
                }
                let Some(id) = ids.next() else { break };
                self.remember(id, e.ino);
                let a = match self.vfs.entry_attr(e).await {
                    Some(a) => a,
                    None => match self.vfs.getattr(e.ino).await {
                        Ok(a) => a,
                        // gone since the listing: not shown
                        Err(_) => continue,
                    },
                };
                c.after.insert(id, e.next_offset);
                out.push(DirEntry {
                    fileid: id,
                    name: e.name.as_bytes().into(),
                    attr: fattr(id, &a),
                });
            }
            // A reply ends at the view's page end: nfsserve cuts replies to
            // the client's byte budget, and the next cookie must stay in the
            // page the view holds (an offset before it re-lists the
            // directory from the top).
            if !out.is_empty() {
                break;
            }
        }
        Ok(ReadDirResult { entries: out, end })
    }

    /// The offset after `cookie`, found by listing from the top.
    async fn seek_cookie(&self, c: &mut DirCursor, dirid: u64, cookie: u64) -> R<u64> {
        let want = self.ids.parent_name(cookie);
        let Some((parent, name)) = want.filter(|(p, _)| *p == dirid) else {
            return Err(nfsstat3::NFS3ERR_BAD_COOKIE);
        };
        let _ = parent;
        let mut offset = 0;
        loop {
            let page = self
                .vfs
                .readdir(c.fh, offset)
                .await
                .map_err(|e| status(&e))?;
            let Some(last) = page.last() else {
                return Err(nfsstat3::NFS3ERR_BAD_COOKIE);
            };
            if let Some(e) = page.iter().find(|e| e.name == name) {
                c.after.insert(cookie, e.next_offset);
                return Ok(e.next_offset);
            }
            offset = last.next_offset;
        }
    }

    /// Drops directory cursors idle for a while (clients never say when
    /// a listing ends).
    fn reap_dirs(&self, idle: Duration) {
        let now = std::time::Instant::now();
        let mut gone = Vec::new();
        self.dirs.lock().retain(|_, c| match c.try_lock() {
            Ok(g) if now.duration_since(g.used) >= idle => {
                gone.push(g.fh);
                false
            }
            _ => true,
        });
        for fh in gone {
            self.vfs.releasedir(fh);
        }
    }

    fn set_attr(&self, s: &sattr3) -> SetAttr {
        SetAttr {
            perm: match s.mode {
                set_mode3::mode(m) => Some(m & 0o7777),
                set_mode3::Void => None,
            },
            uid: match s.uid {
                set_uid3::uid(u) => Some(self.squash_uid(u)),
                set_uid3::Void => None,
            },
            gid: match s.gid {
                set_gid3::gid(g) => Some(self.squash_gid(g)),
                set_gid3::Void => None,
            },
            size: match s.size {
                set_size3::size(n) => Some(n),
                set_size3::Void => None,
            },
            mtime: match s.mtime {
                set_mtime::DONT_CHANGE => None,
                set_mtime::SET_TO_SERVER_TIME => Some(SystemTime::now()),
                set_mtime::SET_TO_CLIENT_TIME(t) => Some(from_time3(t)),
            },
        }
    }
}

#[async_trait]
impl NFSFileSystem for CairnNfs {
    fn capabilities(&self) -> VFSCapabilities {
        if self.vfs.config().read_only {
            VFSCapabilities::ReadOnly
        } else {
            VFSCapabilities::ReadWrite
        }
    }

    fn root_dir(&self) -> fileid3 {
        ROOT_ID
    }

    async fn lookup(&self, dirid: fileid3, filename: &filename3) -> R<fileid3> {
        let name = name_of(filename)?;
        let dir = self.ino(dirid).await?;
        if name == "." {
            return Ok(dirid);
        }
        if name == ".." {
            return Ok(self
                .ids
                .parent_name(dirid)
                .map(|(p, _)| p)
                .unwrap_or(ROOT_ID));
        }
        self.check_top(dirid, name)?;
        let a = self.vfs.lookup(dir, name).await.map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok(id)
    }

    async fn getattr(&self, id: fileid3) -> R<fattr3> {
        Ok(fattr(id, &self.attr(id).await?))
    }

    async fn setattr(&self, id: fileid3, setattr: sattr3) -> R<fattr3> {
        self.writable()?;
        let ino = self.ino(id).await?;
        let set = self.set_attr(&setattr);
        let a = self.vfs.setattr(ino, set).await.map_err(|e| status(&e))?;
        if self.open.is_open(id) {
            // a truncate of an open file changed its staging file
            let lease = self
                .open
                .lease(id, ino, true)
                .await
                .map_err(|e| status(&e))?;
            let r = self.open.make_durable(&lease).await;
            self.open.done(lease);
            r.map_err(|e| status(&e))?;
        }
        Ok(fattr(id, &a))
    }

    async fn read(&self, id: fileid3, offset: u64, count: u32) -> R<(Vec<u8>, bool)> {
        let a = self.attr(id).await?;
        if a.kind == FileKind::Dir {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        if offset >= a.size {
            return Ok((Vec::new(), true));
        }
        let lease = self
            .open
            .lease(id, a.ino, false)
            .await
            .map_err(|e| match e {
                VfsError::NotFound => nfsstat3::NFS3ERR_STALE,
                e => status(&e),
            })?;
        let got = self.vfs.read(lease.fh, offset, count).await;
        self.open.done(lease);
        let data = got.map_err(|e| status(&e))?;
        let eof = offset + data.len() as u64 >= a.size;
        Ok((data, eof))
    }

    async fn write(&self, id: fileid3, offset: u64, data: &[u8]) -> R<fattr3> {
        self.writable()?;
        let ino = self.ino(id).await?;
        let lease = self.open.lease(id, ino, true).await.map_err(|e| match e {
            VfsError::NotFound => nfsstat3::NFS3ERR_STALE,
            e => status(&e),
        })?;
        let r = async {
            self.vfs.write(lease.fh, offset, data).await?;
            self.open.make_durable(&lease).await?;
            self.vfs.getattr(ino).await
        }
        .await;
        self.open.done(lease);
        let a = r.map_err(|e| status(&e))?;
        Ok(fattr(id, &a))
    }

    async fn create(
        &self,
        dirid: fileid3,
        filename: &filename3,
        attr: sattr3,
    ) -> R<(fileid3, fattr3)> {
        self.writable()?;
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let dir = self.ino(dirid).await?;
        if let Some(old) = self.ids.find(dirid, name) {
            self.open.close(old).await.map_err(|e| status(&e))?;
        }
        let perm = match attr.mode {
            set_mode3::mode(m) => m & 0o7777,
            set_mode3::Void => self.vfs.config().defaults.file_perm,
        };
        let (uid, gid) = self.new_owner(&attr);
        let (a, fh) = self
            .vfs
            .create(dir, name, perm, uid, gid, false)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        let lease = self.open.adopt(id, fh, true);
        let r = self.open.make_durable(&lease).await;
        self.open.done(lease);
        r.map_err(|e| status(&e))?;
        Ok((id, fattr(id, &a)))
    }

    async fn create_exclusive(&self, dirid: fileid3, filename: &filename3) -> R<fileid3> {
        self.writable()?;
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let dir = self.ino(dirid).await?;
        let (uid, gid) = self.new_owner(&sattr3::default());
        let perm = self.vfs.config().defaults.file_perm;
        let (a, fh) = self
            .vfs
            .create(dir, name, perm, uid, gid, true)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        let lease = self.open.adopt(id, fh, true);
        let r = self.open.make_durable(&lease).await;
        self.open.done(lease);
        r.map_err(|e| status(&e))?;
        Ok(id)
    }

    async fn mkdir(&self, dirid: fileid3, dirname: &filename3) -> R<(fileid3, fattr3)> {
        self.writable()?;
        let name = name_of(dirname)?;
        if dirid == ROOT_ID && !self.opts.buckets.is_empty() {
            // a bucket export names its buckets; no new ones appear in it
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        let dir = self.ino(dirid).await?;
        let (uid, gid) = self.new_owner(&sattr3::default());
        let perm = self.vfs.config().defaults.dir_perm;
        let a = self
            .vfs
            .mkdir(dir, name, perm, uid, gid)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok((id, fattr(id, &a)))
    }

    /// REMOVE and RMDIR both arrive here (nfsserve routes RMDIR to it).
    async fn remove(&self, dirid: fileid3, filename: &filename3) -> R<()> {
        self.writable()?;
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let dir = self.ino(dirid).await?;
        let a = self.vfs.lookup(dir, name).await.map_err(|e| status(&e))?;
        if let Some(id) = self.ids.find(dirid, name) {
            // staged bytes of a file being removed need no commit, but its
            // handle must go first so nothing commits it back
            let _ = self.open.close(id).await;
        }
        let r = if a.kind == FileKind::Dir {
            self.vfs.rmdir(dir, name).await
        } else {
            self.vfs.unlink(dir, name).await
        };
        r.map_err(|e| status(&e))?;
        if let Some(id) = self.ids.find(dirid, name) {
            self.inos.lock().remove(&id);
        }
        self.dirs.lock().remove(&dirid);
        self.ids.remove(dirid, name).map_err(Self::id_err)
    }

    async fn rename(
        &self,
        from_dirid: fileid3,
        from_filename: &filename3,
        to_dirid: fileid3,
        to_filename: &filename3,
    ) -> R<()> {
        self.writable()?;
        let from = name_of(from_filename)?;
        let to = name_of(to_filename)?;
        self.check_top(from_dirid, from)?;
        self.check_top(to_dirid, to)?;
        let fdir = self.ino(from_dirid).await?;
        let tdir = self.ino(to_dirid).await?;
        // the view commits a staged source before moving it
        self.vfs
            .rename(fdir, from, tdir, to, false)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(from_dirid, from)?;
        if let Some(replaced) = self.ids.find(to_dirid, to).filter(|r| *r != id) {
            let _ = self.open.close(replaced).await;
            self.inos.lock().remove(&replaced);
        }
        self.ids.rename(id, to_dirid, to).map_err(Self::id_err)?;
        {
            let mut d = self.dirs.lock();
            d.remove(&from_dirid);
            d.remove(&to_dirid);
        }
        Ok(())
    }

    async fn readdir(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> R<ReadDirResult> {
        self.readdir_inner(dirid, start_after, max_entries).await
    }

    async fn symlink(
        &self,
        dirid: fileid3,
        linkname: &filename3,
        symlink: &nfspath3,
        attr: &sattr3,
    ) -> R<(fileid3, fattr3)> {
        self.writable()?;
        let name = name_of(linkname)?;
        let target = std::str::from_utf8(&symlink.0).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        let dir = self.ino(dirid).await?;
        let (uid, gid) = self.new_owner(attr);
        let a = self
            .vfs
            .symlink(dir, name, target, uid, gid)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok((id, fattr(id, &a)))
    }

    async fn readlink(&self, id: fileid3) -> R<nfspath3> {
        let a = self.attr(id).await?;
        let t = self.vfs.readlink(a.ino).await.map_err(|e| status(&e))?;
        Ok(t.into())
    }

    async fn fsinfo(&self, root_fileid: fileid3) -> R<fsinfo3> {
        let attrs = match self.getattr(root_fileid).await {
            Ok(v) => post_op_attr::attributes(v),
            Err(_) => post_op_attr::Void,
        };
        Ok(fsinfo3 {
            obj_attributes: attrs,
            rtmax: 1 << 20,
            // nfsserve's default preferred read is 124 KiB; clients use the
            // preferred sizes, and 1 MiB requests keep the streaming reads
            // of the view busy
            rtpref: 1 << 20,
            rtmult: 4096,
            wtmax: 1 << 20,
            wtpref: 1 << 20,
            wtmult: 4096,
            dtpref: 1 << 20,
            maxfilesize: self.vfs.config().max_file_size(),
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            properties: nfsserve::nfs::FSF_SYMLINK
                | nfsserve::nfs::FSF_HOMOGENEOUS
                | nfsserve::nfs::FSF_CANSETTIME,
        })
    }

    /// Handles are the map's verifier and the file id: both outlive the
    /// process (nfsserve's default ties them to the start time).
    fn id_to_fh(&self, id: fileid3) -> nfs_fh3 {
        let mut data = Vec::with_capacity(16);
        data.extend_from_slice(&self.ids.verifier().to_le_bytes());
        data.extend_from_slice(&id.to_le_bytes());
        nfs_fh3 { data }
    }

    fn fh_to_id(&self, fh: &nfs_fh3) -> R<fileid3> {
        let (Some(v), Some(id)) = (fh.data.get(0..8), fh.data.get(8..16)) else {
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        };
        if fh.data.len() != 16 {
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(v);
        if u64::from_le_bytes(b) != self.ids.verifier() {
            return Err(nfsstat3::NFS3ERR_STALE);
        }
        b.copy_from_slice(id);
        let id = u64::from_le_bytes(b);
        if !self.ids.known(id) {
            return Err(nfsstat3::NFS3ERR_STALE);
        }
        Ok(id)
    }
}
