//! The `fuser::Filesystem` implementation: argument conversion, one task
//! per request, errno replies.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_vfs::{Attr, FileKind, NewOwner, OpenMode, SetAttr, Vfs, VfsError, XattrMode};
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo,
    InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

pub struct CairnFs {
    vfs: Arc<Vfs>,
    rt: tokio::runtime::Handle,
}

impl CairnFs {
    pub fn new(vfs: Arc<Vfs>, rt: tokio::runtime::Handle) -> Self {
        Self { vfs, rt }
    }

    /// Runs `f` on the runtime; the reply is sent from the task.
    fn spawn<F, Fut>(&self, f: F)
    where
        F: FnOnce(Arc<Vfs>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let vfs = self.vfs.clone();
        self.rt.spawn(f(vfs));
    }
}

fn errno(e: &VfsError) -> Errno {
    if e.errno() == libc::EIO {
        tracing::warn!(error = %e, "FUSE request failed");
    } else {
        tracing::debug!(error = %e, "FUSE request refused");
    }
    Errno::from_i32(e.errno())
}

/// `size` 0 asks for the length; a buffer too small is ERANGE.
fn xattr_reply(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

/// Entries asked of the view per readdir / readdirplus request: more
/// than a request's buffer holds (a 4 KiB page holds at most ~170 plain
/// entries, ~30 with attributes; newer kernels send bigger buffers, which
/// then take a few more requests), far fewer than a listing page.
const READDIR_MAX: usize = 1024;
const READDIRPLUS_MAX: usize = 256;

fn name_str(name: &OsStr) -> Result<String, Errno> {
    name.to_str().map(str::to_owned).ok_or(Errno::EINVAL)
}

fn kind(k: FileKind) -> FileType {
    match k {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDev => FileType::CharDevice,
        FileKind::BlockDev => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks(),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.mtime,
        kind: kind(a.kind),
        perm: (a.perm & 0o7777) as u16,
        nlink: a.nlink(),
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 4096,
        flags: 0,
    }
}

/// Attributes for an entry listed without them, sent with a zero TTL
/// (never trusted: the kernel asks again).
fn placeholder_attr(ino: u64, k: FileKind) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: kind(k),
        perm: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn entry(vfs: &Vfs, reply: ReplyEntry, r: Result<Attr, VfsError>) {
    match r {
        Ok(a) => reply.entry(&vfs.attr_ttl(), &file_attr(&a), Generation(0)),
        Err(e) => reply.error(errno(&e)),
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), VfsError>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

impl fuser::Filesystem for CairnFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // O_TRUNC arrives with open (one commit), not as a separate
        // truncate that would write an empty object first.
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC) {
            tracing::debug!(?missing, "kernel lacks atomic O_TRUNC");
        }
        // readdirplus when the kernel sees lookups following a readdir (ls -l)
        if let Err(missing) = config
            .add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO)
        {
            tracing::debug!(?missing, "kernel lacks readdirplus");
        }
        // 1 MiB write requests (FUSE_BIG_WRITES is on in fuser; max_pages
        // follows max_write); the readahead window is raised after the
        // mount (the kernel refuses more than its 128 KiB here)
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        // more readahead requests in flight
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |vfs| async move {
            let r = vfs.lookup(parent.0, &name).await;
            entry(&vfs, reply, r);
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.spawn(move |vfs| async move {
            match vfs.getattr(ino.0).await {
                Ok(a) => reply.attr(&vfs.attr_ttl(), &file_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            perm: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            mtime: mtime.map(time),
            atime_set: atime.is_some(),
        };
        self.spawn(move |vfs| async move {
            match vfs.setattr(ino.0, set).await {
                Ok(a) => reply.attr(&vfs.attr_ttl(), &file_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn(move |vfs| async move {
            match vfs.readlink(ino.0).await {
                Ok(t) => reply.data(&t),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    /// Regular files through `create`; FIFOs, sockets (a `bind` on the
    /// mount) and devices as empty objects carrying their type (cairn-vfs
    /// special.rs). The kernel opens them itself.
    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        let regular = mode & libc::S_IFMT == libc::S_IFREG || mode & libc::S_IFMT == 0;
        self.spawn(move |vfs| async move {
            let r = if regular {
                async {
                    let (a, fh) = vfs.create(parent.0, &name, mode, uid, gid, true).await?;
                    vfs.release(fh).await?;
                    Ok(a)
                }
                .await
            } else {
                let owner = NewOwner {
                    uid,
                    gid,
                    perm: mode & 0o7777,
                };
                vfs.mknod(parent.0, &name, mode, rdev, owner).await
            };
            entry(&vfs, reply, r);
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn(move |vfs| async move {
            let r = vfs.mkdir(parent.0, &name, mode, uid, gid).await;
            entry(&vfs, reply, r);
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |vfs| async move {
            empty(reply, vfs.unlink(parent.0, &name).await);
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |vfs| async move {
            empty(reply, vfs.rmdir(parent.0, &name).await);
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let (name, target) = match (name_str(link_name), target.to_str()) {
            (Ok(n), Some(t)) => (n, t.to_owned()),
            _ => return reply.error(Errno::EINVAL),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn(move |vfs| async move {
            let r = vfs.symlink(parent.0, &name, &target, uid, gid).await;
            entry(&vfs, reply, r);
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(Errno::EINVAL);
        }
        let (name, newname) = match (name_str(name), name_str(newname)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return reply.error(Errno::EINVAL),
        };
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.spawn(move |vfs| async move {
            empty(
                reply,
                vfs.rename(parent.0, &name, newparent.0, &newname, no_replace)
                    .await,
            );
        });
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // objects have one name each: no hard links
        reply.error(Errno::EPERM);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mode = OpenMode {
            write: flags.acc_mode() != OpenAccMode::O_RDONLY,
            truncate: flags.0 & libc::O_TRUNC != 0,
        };
        self.spawn(move |vfs| async move {
            match vfs.open(ino.0, mode).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn(move |vfs| async move {
            match vfs.read(fh.0, offset, size).await {
                Ok(d) => {
                    // the parts as they are, in one writev (no joining copy)
                    let iov: Vec<std::io::IoSlice<'_>> =
                        d.parts().iter().map(|p| std::io::IoSlice::new(p)).collect();
                    reply.data_vectored(&iov)
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = bytes::Bytes::copy_from_slice(data);
        self.spawn(move |vfs| async move {
            match vfs.write_bytes(fh.0, offset, data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |vfs| async move {
            empty(reply, vfs.flush(fh.0).await);
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |vfs| async move {
            empty(reply, vfs.release(fh.0).await);
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |vfs| async move {
            empty(reply, vfs.fsync(fh.0).await);
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.spawn(move |vfs| async move {
            match vfs.opendir(ino.0).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.spawn(move |vfs| async move {
            match vfs.readdir_at_most(fh.0, offset, READDIR_MAX).await {
                Ok(entries) => {
                    for e in entries {
                        if reply.add(INodeNo(e.ino), e.next_offset, kind(e.kind), &e.name) {
                            break;
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    /// Entries with their attributes: `ls -l` of a big directory needs
    /// no lookup per entry. Entries listed without attributes (prefix
    /// directories) go with a zero TTL, so the kernel looks them up.
    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.spawn(move |vfs| async move {
            match vfs.readdir_at_most(fh.0, offset, READDIRPLUS_MAX).await {
                Ok(entries) => {
                    let ttl = vfs.attr_ttl();
                    for e in entries {
                        let full = match vfs.entry_attr(&e).await {
                            Some(a) => reply.add(
                                INodeNo(e.ino),
                                e.next_offset,
                                &e.name,
                                &ttl,
                                &file_attr(&a),
                                Generation(0),
                            ),
                            None => reply.add(
                                INodeNo(e.ino),
                                e.next_offset,
                                &e.name,
                                &Duration::ZERO,
                                &placeholder_attr(e.ino, e.kind),
                                Generation(0),
                            ),
                        };
                        if full {
                            break;
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.vfs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // directory changes are committed as they happen; files closed
        // with write-back are made durable here
        self.spawn(move |vfs| async move {
            empty(reply, vfs.sync().await);
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        // Only the user namespace exists: other names are ENOTSUP (as
        // setxattr answers), answered here without a task on the runtime.
        // `ls -l` asks every file for security.selinux and
        // system.posix_acl_access unless the device answers ENOTSUP, which
        // coreutils remembers per device (ENODATA cost it 2 requests per
        // file); kernel writes ask for security.capability.
        if !name.starts_with("user.") {
            return reply.error(Errno::ENOTSUP);
        }
        self.spawn(move |vfs| async move {
            match vfs.getxattr(ino.0, &name).await {
                Ok(v) => xattr_reply(reply, size, &v),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    /// No ioctls: ENOTTY, what a regular file answers (Python's open asks
    /// TCGETS of every file; fuser's default logs a warning per call).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.spawn(move |vfs| async move {
            match vfs.listxattr(ino.0).await {
                Ok(names) => {
                    // each name NUL-terminated, as listxattr(2) returns them
                    let mut buf = Vec::new();
                    for n in names {
                        buf.extend_from_slice(n.as_bytes());
                        buf.push(0);
                    }
                    xattr_reply(reply, size, &buf);
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let mode = match flags {
            0 => XattrMode::Any,
            libc::XATTR_CREATE => XattrMode::Create,
            libc::XATTR_REPLACE => XattrMode::Replace,
            _ => return reply.error(Errno::EINVAL),
        };
        let value = value.to_vec();
        self.spawn(move |vfs| async move {
            match vfs.setxattr(ino.0, &name, &value, mode).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |vfs| async move {
            match vfs.removexattr(ino.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.spawn(move |vfs| async move {
            let s = vfs.statfs().await;
            reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
            );
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        let exclusive = flags & libc::O_EXCL != 0;
        self.spawn(move |vfs| async move {
            match vfs.create(parent.0, &name, mode, uid, gid, exclusive).await {
                Ok((a, fh)) => reply.created(
                    &vfs.attr_ttl(),
                    &file_attr(&a),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }
}
