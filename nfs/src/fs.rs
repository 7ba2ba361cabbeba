//! The nfs3_server filesystem: file ids from the persistent map (ids.rs)
//! resolved to view inodes, each call forwarded to cairn-vfs, errors
//! through error.rs. Listings are in listing.rs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_vfs::{Attr, FileKind, NewOwner, ROOT_INO, SetAttr, Vfs, VfsError, dev_parts, make_dev};
use nfs3_server::nfs3_types::nfs3::{
    FSF3_CANSETTIME, FSF3_HOMOGENEOUS, FSF3_SYMLINK, FSINFO3resok, Nfs3Option, createverf3, fattr3,
    filename3, ftype3, mknoddata3, nfspath3, nfsstat3, nfstime3, post_op_attr, sattr3, set_atime,
    set_mtime, specdata3, stable_how,
};
use nfs3_server::nfs3_types::rpc::auth_unix;
use nfs3_server::vfs::{NfsFileSystem, NfsReadFileSystem, ReadDirPlusIterator, VFSCapabilities};
use parking_lot::Mutex;

use crate::callers::{Caller, Callers};
use crate::error::status;
use crate::handle::Fh;
use crate::ids::{IdMap, ROOT_ID};
use crate::listing::Cursors;
use crate::open::OpenFiles;
use crate::perm::{EXEC, READ, WRITE, Who};
use crate::{NfsOptions, Squash};

type R<T> = Result<T, nfsstat3>;

/// FSINFO's rtmax and rtpref (see `fsinfo`).
const READ_SIZE: u32 = 512 << 10;
/// Modes of files made without one (EXCLUSIVE CREATE) and of directories
/// (nfs3_server passes MKDIR no attributes). The export's defaults are for
/// objects without attributes, made over S3.
const NEW_FILE_PERM: u32 = 0o644;
const NEW_DIR_PERM: u32 = 0o755;

pub struct CairnNfs {
    pub(crate) vfs: Arc<Vfs>,
    pub(crate) ids: Arc<IdMap>,
    open: Arc<OpenFiles>,
    opts: NfsOptions,
    /// File id -> view inode, for ids resolved in this process.
    inos: Mutex<HashMap<u64, u64>>,
    pub(crate) dirs: Cursors,
    /// Who sent the call each task serves (AUTH_SYS).
    callers: Callers,
}

fn name_of<'a>(n: &'a filename3<'_>) -> R<&'a str> {
    std::str::from_utf8(&n.0).map_err(|_| nfsstat3::NFS3ERR_INVAL)
}

/// An XDR optional as a Rust one.
fn opt<
    T: Copy + nfs3_server::nfs3_types::xdr_codec::Pack + nfs3_server::nfs3_types::xdr_codec::Unpack,
>(
    o: Nfs3Option<T>,
) -> Option<T> {
    match o {
        Nfs3Option::Some(v) => Some(v),
        Nfs3Option::None => None,
    }
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

pub(crate) fn fattr(id: u64, a: &Attr) -> fattr3 {
    fattr3 {
        type_: match a.kind {
            FileKind::File => ftype3::NF3REG,
            FileKind::Dir => ftype3::NF3DIR,
            FileKind::Symlink => ftype3::NF3LNK,
            FileKind::Fifo => ftype3::NF3FIFO,
            FileKind::Socket => ftype3::NF3SOCK,
            FileKind::CharDev => ftype3::NF3CHR,
            FileKind::BlockDev => ftype3::NF3BLK,
        },
        mode: a.perm & 0o7777,
        nlink: a.nlink(),
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        used: a.size,
        rdev: {
            let (specdata1, specdata2) = dev_parts(a.rdev);
            specdata3 {
                specdata1,
                specdata2,
            }
        },
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
            callers: Callers::new(),
        }
    }

    /// Whether a top-level name is exported (all buckets, or the named).
    pub(crate) fn bucket_allowed(&self, name: &str) -> bool {
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

    /// Owner of something made without an owner in its attributes: the
    /// caller as `who` sees it (AUTH_SYS ids squashed; the anonymous ids
    /// for a call without AUTH_SYS, which are also the export's owner of
    /// objects without attributes). Ids asked for in the attributes count
    /// only where a chown would be allowed (root; a group the caller is in).
    fn new_owner(&self, s: &sattr3) -> (u32, u32) {
        let who = self.who();
        let uid = opt(s.uid)
            .map(|u| self.squash_uid(u))
            .filter(|_| who.is_root())
            .unwrap_or(who.uid);
        let gid = opt(s.gid)
            .map(|g| self.squash_gid(g))
            .filter(|g| who.is_root() || who.in_group(*g))
            .unwrap_or(who.gid);
        (uid, gid)
    }

    /// Who this call runs as (perm.rs): the caller's AUTH_SYS ids,
    /// squashed; the export's anonymous ids for a call without AUTH_SYS.
    fn who(&self) -> Who {
        match self.callers.current() {
            Some(c) => Who {
                uid: self.squash_uid(c.uid),
                gid: self.squash_gid(c.gid),
                gids: c.gids.iter().map(|g| self.squash_gid(*g)).collect(),
            },
            None => Who {
                uid: self.opts.anon_uid,
                gid: self.opts.anon_gid,
                gids: Vec::new(),
            },
        }
    }

    /// `id`'s attributes when the caller has `want` on it, else ACCES.
    async fn check(&self, id: u64, want: u32) -> R<Attr> {
        let a = self.attr(id).await?;
        if self.who().may(&a, want) {
            Ok(a)
        } else {
            Err(nfsstat3::NFS3ERR_ACCES)
        }
    }

    /// Removing, renaming or replacing `name` in directory `dirid`: write
    /// and search on it, and the sticky bit's rule for an entry that is
    /// there (a missing one is the operation's own NOENT, or nothing to
    /// replace).
    async fn check_unlink(&self, dirid: u64, dir_ino: u64, name: &str) -> R<()> {
        let d = self.check(dirid, WRITE | EXEC).await?;
        if d.perm & 0o1000 != 0 {
            let e = match self.vfs.lookup(dir_ino, name).await {
                Ok(e) => e,
                Err(VfsError::NotFound) => return Ok(()),
                Err(e) => return Err(status(&e)),
            };
            if !self.who().may_unlink(&d, &e) {
                return Err(nfsstat3::NFS3ERR_ACCES);
            }
        }
        Ok(())
    }

    /// SETATTR's rules: mode and times only by the owner (times set to
    /// "now" also by a writer), the owner only by root, the group by root
    /// or by the owner to a group the owner is in, the size by a writer.
    fn check_setattr(&self, a: &Attr, s: &sattr3) -> R<()> {
        let who = self.who();
        let owner = who.is_root() || who.owns(a);
        let perm_err = Err(nfsstat3::NFS3ERR_PERM);
        if opt(s.mode).is_some() && !owner {
            return perm_err;
        }
        if opt(s.uid).is_some_and(|u| self.squash_uid(u) != a.uid) && !who.is_root() {
            return perm_err;
        }
        if opt(s.gid).is_some_and(|g| {
            let g = self.squash_gid(g);
            g != a.gid && !(who.is_root() || (who.owns(a) && who.in_group(g)))
        }) {
            return perm_err;
        }
        let client_time = matches!(s.mtime, set_mtime::SET_TO_CLIENT_TIME(_))
            || matches!(s.atime, set_atime::SET_TO_CLIENT_TIME(_));
        if client_time && !owner {
            return perm_err;
        }
        let server_time = matches!(s.mtime, set_mtime::SET_TO_SERVER_TIME)
            || matches!(s.atime, set_atime::SET_TO_SERVER_TIME);
        if (opt(s.size).is_some() || server_time) && !owner && !who.may_io(a, WRITE) {
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        Ok(())
    }

    /// The view inode of a file id, walking the persistent path when this
    /// process has not seen the id; an id whose entry is gone is STALE.
    pub(crate) async fn ino(&self, id: u64) -> R<u64> {
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

    pub(crate) fn remember(&self, id: u64, ino: u64) {
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

    pub(crate) fn id_err(e: crate::ids::IdError) -> nfsstat3 {
        tracing::error!(error = %e, "file id map");
        nfsstat3::NFS3ERR_IO
    }

    fn set_attr(&self, s: &sattr3) -> SetAttr {
        SetAttr {
            perm: opt(s.mode).map(|m| m & 0o7777),
            uid: opt(s.uid).map(|u| self.squash_uid(u)),
            gid: opt(s.gid).map(|g| self.squash_gid(g)),
            size: opt(s.size),
            mtime: match s.mtime {
                set_mtime::DONT_CHANGE => None,
                set_mtime::SET_TO_SERVER_TIME => Some(SystemTime::now()),
                set_mtime::SET_TO_CLIENT_TIME(t) => Some(from_time3(t)),
            },
            atime_set: !matches!(s.atime, set_atime::DONT_CHANGE),
        }
    }
}

/// A file id's status when its handle cannot be opened.
fn open_status(e: VfsError) -> nfsstat3 {
    match e {
        VfsError::NotFound => nfsstat3::NFS3ERR_STALE,
        e => status(&e),
    }
}

impl NfsReadFileSystem for CairnNfs {
    type Handle = Fh;

    fn root_dir(&self) -> Fh {
        Fh::new(ROOT_ID)
    }

    /// Every call is served (client networks are checked on connect,
    /// allow.rs); the credential is kept for the call's operations.
    fn authorize(&self, auth: Option<&auth_unix>) -> bool {
        self.callers.record(auth.map(|a| Caller {
            uid: a.uid,
            gid: a.gid,
            gids: a.gids.clone(),
        }));
        true
    }

    /// ACCESS from the file's mode and the caller (perm.rs), after
    /// nfs3_server has taken the write bits away on a read-only export.
    async fn access(&self, id: &Fh, requested: u32) -> u32 {
        match self.attr(id.id()).await {
            Ok(a) => self.who().access(&a, requested),
            Err(_) => 0,
        }
    }

    async fn lookup(&self, dirid: &Fh, filename: &filename3<'_>) -> R<Fh> {
        let dirid = dirid.id();
        let name = name_of(filename)?;
        let dir = self.check(dirid, EXEC).await?.ino;
        if name == "." {
            return Ok(Fh::new(dirid));
        }
        if name == ".." {
            let parent = self.ids.parent_name(dirid).map_or(ROOT_ID, |(p, _)| p);
            return Ok(Fh::new(parent));
        }
        self.check_top(dirid, name)?;
        let a = self.vfs.lookup(dir, name).await.map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok(Fh::new(id))
    }

    async fn getattr(&self, id: &Fh) -> R<fattr3> {
        Ok(fattr(id.id(), &self.attr(id.id()).await?))
    }

    async fn read(&self, id: &Fh, offset: u64, count: u32) -> R<(Vec<u8>, bool)> {
        let id = id.id();
        let a = self.attr(id).await?;
        if a.kind == FileKind::Dir {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        if !self.who().may_io(&a, READ) {
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        if offset >= a.size {
            return Ok((Vec::new(), true));
        }
        let lease = self
            .open
            .lease(id, a.ino, false)
            .await
            .map_err(open_status)?;
        let got = self.vfs.read(lease.fh, offset, count).await;
        self.open.done(lease);
        // nfs3_server takes a `Vec`: a read of one whole chunk moves into
        // it (bytes' `Vec::from` memmoves a unique buffer onto itself);
        // a read across chunks is joined
        let data = Vec::from(got.map_err(|e| status(&e))?.into_bytes());
        let eof = offset + data.len() as u64 >= a.size;
        Ok((data, eof))
    }

    async fn readdirplus(&self, dirid: &Fh, cookie: u64) -> R<impl ReadDirPlusIterator<Fh>> {
        self.check(dirid.id(), READ).await?;
        self.list(dirid.id(), cookie).await
    }

    async fn readlink(&self, id: &Fh) -> R<nfspath3<'_>> {
        let a = self.attr(id.id()).await?;
        let t = self.vfs.readlink(a.ino).await.map_err(|e| status(&e))?;
        Ok(nfspath3::from(t))
    }

    async fn fsinfo(&self, root: &Fh) -> R<FSINFO3resok> {
        let obj_attributes = match self.getattr(root).await {
            Ok(v) => post_op_attr::Some(v),
            Err(_) => post_op_attr::None,
        };
        Ok(FSINFO3resok {
            obj_attributes,
            // 512 KiB: libnfs splits a 1 MiB read into two READs in
            // flight (a serial client otherwise leaves the server idle
            // while it takes each reply), and each is one shard block of
            // a 2+2 set, which the store and the view hand on without a
            // copy (BENCHMARKS.md "NFS export")
            rtmax: READ_SIZE,
            rtpref: READ_SIZE,
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
            properties: FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
        })
    }
}

impl NfsFileSystem for CairnNfs {
    fn capabilities(&self) -> VFSCapabilities {
        if self.vfs.config().read_only {
            VFSCapabilities::ReadOnly
        } else {
            VFSCapabilities::ReadWrite
        }
    }

    async fn setattr(&self, id: &Fh, setattr: sattr3) -> R<fattr3> {
        self.writable()?;
        let id = id.id();
        let a = self.attr(id).await?;
        self.check_setattr(&a, &setattr)?;
        let ino = a.ino;
        let set = self.set_attr(&setattr);
        let a = self.vfs.setattr(ino, set).await.map_err(|e| status(&e))?;
        if self.open.is_open(id) {
            // a truncate of an open file changed its staging file
            self.durable(id, ino).await?;
        }
        Ok(fattr(id, &a))
    }

    /// A FILE_SYNC or DATA_SYNC WRITE is durable in its fsynced staging
    /// file before the reply. An UNSTABLE one (libnfs, nfs-rs and kernel
    /// clients write so, then COMMIT) is answered once the bytes are in the
    /// staging file, and COMMIT makes them durable: the reply echoes the
    /// stability asked for, with the write verifier of this process (new
    /// at each start), so a client whose unstable bytes a crash lost sees
    /// the verifier change at COMMIT and writes them again. One fsync per
    /// COMMIT instead of one per WRITE: 1 MiB fdatasyncs took 4.5-11 ms
    /// each on this machine's disk.
    async fn write(
        &self,
        id: &Fh,
        offset: u64,
        data: &[u8],
        stable: stable_how,
    ) -> R<(fattr3, stable_how)> {
        self.writable()?;
        let id = id.id();
        let a = self.attr(id).await?;
        if !self.who().may_io(&a, WRITE) {
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        let ino = a.ino;
        let lease = self.open.lease(id, ino, true).await.map_err(open_status)?;
        let r = async {
            self.vfs.write(lease.fh, offset, data).await?;
            if stable != stable_how::UNSTABLE {
                self.open.make_durable(&lease).await?;
            }
            self.vfs.getattr(ino).await
        }
        .await;
        self.open.done(lease);
        let a = r.map_err(|e| status(&e))?;
        Ok((fattr(id, &a), stable))
    }

    async fn create(&self, dirid: &Fh, filename: &filename3<'_>, attr: sattr3) -> R<(Fh, fattr3)> {
        self.writable()?;
        let dirid = dirid.id();
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let dir = self.check(dirid, WRITE | EXEC).await?.ino;
        // an UNCHECKED CREATE over an existing file truncates it
        if let Ok(a) = self.vfs.lookup(dir, name).await
            && !self.who().may_io(&a, WRITE)
        {
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        if let Some(old) = self.ids.find(dirid, name) {
            self.open.close(old).await.map_err(|e| status(&e))?;
        }
        let perm = opt(attr.mode).map_or(NEW_FILE_PERM, |m| m & 0o7777);
        let (uid, gid) = self.new_owner(&attr);
        let (a, fh) = self
            .vfs
            .create(dir, name, perm, uid, gid, false)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        self.adopt_created(id, fh).await?;
        Ok((Fh::new(id), fattr(id, &a)))
    }

    async fn create_exclusive(
        &self,
        dirid: &Fh,
        filename: &filename3<'_>,
        _verf: createverf3,
    ) -> R<Fh> {
        self.writable()?;
        let dirid = dirid.id();
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let dir = self.check(dirid, WRITE | EXEC).await?.ino;
        let (uid, gid) = self.new_owner(&sattr3::default());
        let perm = NEW_FILE_PERM;
        let (a, fh) = self
            .vfs
            .create(dir, name, perm, uid, gid, true)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        self.adopt_created(id, fh).await?;
        Ok(Fh::new(id))
    }

    async fn mkdir(&self, dirid: &Fh, dirname: &filename3<'_>) -> R<(Fh, fattr3)> {
        self.writable()?;
        let dirid = dirid.id();
        let name = name_of(dirname)?;
        if dirid == ROOT_ID && !self.opts.buckets.is_empty() {
            // a bucket export names its buckets; no new ones appear in it
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        let dir = self.check(dirid, WRITE | EXEC).await?.ino;
        let (uid, gid) = self.new_owner(&sattr3::default());
        let perm = NEW_DIR_PERM;
        let a = self
            .vfs
            .mkdir(dir, name, perm, uid, gid)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok((Fh::new(id), fattr(id, &a)))
    }

    /// REMOVE and RMDIR both arrive here (nfs3_server routes RMDIR to it).
    async fn remove(&self, dirid: &Fh, filename: &filename3<'_>) -> R<()> {
        self.writable()?;
        let dirid = dirid.id();
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let dir = self.ino(dirid).await?;
        self.check_unlink(dirid, dir, name).await?;
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

    async fn rename<'a>(
        &self,
        from_dirid: &Fh,
        from_filename: &filename3<'a>,
        to_dirid: &Fh,
        to_filename: &filename3<'a>,
    ) -> R<()> {
        self.writable()?;
        let (from_dirid, to_dirid) = (from_dirid.id(), to_dirid.id());
        let from = name_of(from_filename)?;
        let to = name_of(to_filename)?;
        self.check_top(from_dirid, from)?;
        self.check_top(to_dirid, to)?;
        let fdir = self.ino(from_dirid).await?;
        let tdir = self.ino(to_dirid).await?;
        self.check_unlink(from_dirid, fdir, from).await?;
        self.check_unlink(to_dirid, tdir, to).await?;
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

    async fn symlink<'a>(
        &self,
        dirid: &Fh,
        linkname: &filename3<'a>,
        symlink: &nfspath3<'a>,
        attr: &sattr3,
    ) -> R<(Fh, fattr3)> {
        self.writable()?;
        let dirid = dirid.id();
        let name = name_of(linkname)?;
        let target = std::str::from_utf8(&symlink.0).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        let dir = self.check(dirid, WRITE | EXEC).await?.ino;
        let (uid, gid) = self.new_owner(attr);
        let a = self
            .vfs
            .symlink(dir, name, target, uid, gid)
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok((Fh::new(id), fattr(id, &a)))
    }

    /// MKNOD: a FIFO or socket by anyone who may write the directory, a
    /// device only by root (as mknod(2) needs CAP_MKNOD): PERM otherwise.
    async fn mknod(
        &self,
        dirid: &Fh,
        filename: &filename3<'_>,
        what: &mknoddata3,
    ) -> R<(Fh, fattr3)> {
        self.writable()?;
        let dirid = dirid.id();
        let name = name_of(filename)?;
        self.check_top(dirid, name)?;
        let (type_bits, attrs, spec) = match what {
            mknoddata3::NF3FIFO(s) => (libc::S_IFIFO, s, None),
            mknoddata3::NF3SOCK(s) => (libc::S_IFSOCK, s, None),
            mknoddata3::NF3CHR(d) => (libc::S_IFCHR, &d.dev_attributes, Some(&d.spec)),
            mknoddata3::NF3BLK(d) => (libc::S_IFBLK, &d.dev_attributes, Some(&d.spec)),
            mknoddata3::default => return Err(nfsstat3::NFS3ERR_BADTYPE),
        };
        let dir = self.check(dirid, WRITE | EXEC).await?.ino;
        if spec.is_some() && !self.who().is_root() {
            return Err(nfsstat3::NFS3ERR_PERM);
        }
        let rdev = spec.map_or(0, |d| make_dev(d.specdata1, d.specdata2));
        let perm = opt(attrs.mode).map_or(NEW_FILE_PERM, |m| m & 0o7777);
        let (uid, gid) = self.new_owner(attrs);
        let a = self
            .vfs
            .mknod(
                dir,
                name,
                type_bits | perm,
                rdev,
                NewOwner { uid, gid, perm },
            )
            .await
            .map_err(|e| status(&e))?;
        let id = self.new_id(dirid, name)?;
        self.remember(id, a.ino);
        Ok((Fh::new(id), fattr(id, &a)))
    }

    /// Makes the file's UNSTABLE writes durable: an open file's staging
    /// file is fsynced and recorded for recovery; a file being committed
    /// to its object (idle, REMOVE) is waited for, as that commit is what
    /// makes its bytes durable; a file not open has nothing unstable left.
    async fn commit(&self, id: &Fh, _offset: u64, _count: u32) -> R<()> {
        let id = id.id();
        let ino = self.ino(id).await?;
        tracing::debug!(id, "NFS COMMIT");
        if self.open.is_open_or_wait(id).await {
            self.durable(id, ino).await?;
        }
        Ok(())
    }
}

impl CairnNfs {
    /// Syncs `id`'s staging file through a (writable) lease.
    async fn durable(&self, id: u64, ino: u64) -> R<()> {
        let lease = self.open.lease(id, ino, true).await.map_err(open_status)?;
        let r = self.open.make_durable(&lease).await;
        self.open.done(lease);
        r.map_err(|e| status(&e))
    }

    /// Takes a CREATE's view handle as `id`'s and makes the new (empty)
    /// staging file durable before the reply.
    async fn adopt_created(&self, id: u64, fh: u64) -> R<()> {
        let lease = self.open.adopt(id, fh, true);
        let r = self.open.make_durable(&lease).await;
        self.open.done(lease);
        r.map_err(|e| status(&e))
    }
}
