//! File attributes and their home in object user metadata, in the format
//! s3fs-fuse reads and writes: `x-amz-meta-mode` is the decimal `st_mode`
//! including the file type bits, `-uid`/`-gid` decimal ids, `-mtime` and
//! `-ctime` unix seconds (with `.nnnnnnnnn` when there are nanoseconds, as
//! s3fs 1.9x writes them). A symlink is an object with mode `S_IFLNK|0777`
//! whose body is the target. A directory marker `dir/` carries `S_IFDIR`.
//! A special file (FIFO, socket, character or block device) is an empty
//! object whose mode carries its type, as s3fs's mknod makes it; a
//! device's number is `x-amz-meta-rdev`, the decimal `st_rdev` (s3fs-fuse
//! keeps none; the key is the one its C ancestor used).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::special::NewOwner;
use cairn_api::ObjectInfo;

pub const S_IFMT: u32 = libc::S_IFMT;
pub const S_IFREG: u32 = libc::S_IFREG;
pub const S_IFDIR: u32 = libc::S_IFDIR;
pub const S_IFLNK: u32 = libc::S_IFLNK;
pub const S_IFIFO: u32 = libc::S_IFIFO;
pub const S_IFCHR: u32 = libc::S_IFCHR;
pub const S_IFBLK: u32 = libc::S_IFBLK;
pub const S_IFSOCK: u32 = libc::S_IFSOCK;

/// User metadata names (the `x-amz-meta-` prefix is the S3 front's).
pub const META_MODE: &str = "mode";
pub const META_UID: &str = "uid";
pub const META_GID: &str = "gid";
pub const META_MTIME: &str = "mtime";
pub const META_CTIME: &str = "ctime";
pub const META_RDEV: &str = "rdev";

/// Content type s3fs gives directory markers.
pub const DIR_CONTENT_TYPE: &str = "application/x-directory";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

impl FileKind {
    /// The kind of a special file (`mknod`'s type bits), None for others.
    pub fn special(mode: u32) -> Option<FileKind> {
        match mode & S_IFMT {
            S_IFIFO => Some(FileKind::Fifo),
            S_IFSOCK => Some(FileKind::Socket),
            S_IFCHR => Some(FileKind::CharDev),
            S_IFBLK => Some(FileKind::BlockDev),
            _ => None,
        }
    }

    /// A FIFO, socket or device: an empty object nobody reads or writes
    /// through the view (the kernel handles their opens itself).
    pub fn is_special(self) -> bool {
        matches!(
            self,
            FileKind::Fifo | FileKind::Socket | FileKind::CharDev | FileKind::BlockDev
        )
    }
}

/// What `stat` shows. `perm` holds only the permission bits (07777).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: FileKind,
    pub size: u64,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    /// Device number of a character or block device (`st_rdev`), else 0.
    pub rdev: u32,
}

impl Attr {
    /// A new entry of `kind` holding `size` bytes, made at `now` with
    /// `owner`'s ids and permission bits; device 0 (set after, for one).
    pub fn new_entry(
        ino: u64,
        kind: FileKind,
        size: u64,
        owner: NewOwner,
        now: SystemTime,
    ) -> Attr {
        Attr {
            ino,
            kind,
            size,
            perm: owner.perm,
            uid: owner.uid,
            gid: owner.gid,
            mtime: now,
            ctime: now,
            rdev: 0,
        }
    }

    /// `st_mode` with the type bits.
    pub fn mode(&self) -> u32 {
        type_bits(self.kind) | (self.perm & 0o7777)
    }

    pub fn nlink(&self) -> u32 {
        if self.kind == FileKind::Dir { 2 } else { 1 }
    }

    /// 512-byte blocks, as `du` expects.
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(512)
    }

    /// The user metadata that stores these attributes.
    pub fn to_metadata(&self, user: &mut BTreeMap<String, String>) {
        user.insert(META_MODE.into(), self.mode().to_string());
        user.insert(META_UID.into(), self.uid.to_string());
        user.insert(META_GID.into(), self.gid.to_string());
        user.insert(META_MTIME.into(), format_time(self.mtime));
        user.insert(META_CTIME.into(), format_time(self.ctime));
        if matches!(self.kind, FileKind::CharDev | FileKind::BlockDev) {
            user.insert(META_RDEV.into(), self.rdev.to_string());
        } else {
            user.remove(META_RDEV);
        }
    }
}

pub fn type_bits(kind: FileKind) -> u32 {
    match kind {
        FileKind::File => S_IFREG,
        FileKind::Dir => S_IFDIR,
        FileKind::Symlink => S_IFLNK,
        FileKind::Fifo => S_IFIFO,
        FileKind::Socket => S_IFSOCK,
        FileKind::CharDev => S_IFCHR,
        FileKind::BlockDev => S_IFBLK,
    }
}

/// A device number as Linux encodes it in 32 bits (`new_encode_dev`, what
/// FUSE passes and `stat` shows for majors below 4096) from its parts.
pub fn make_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The major and minor numbers of a `make_dev` device number.
pub fn dev_parts(rdev: u32) -> (u32, u32) {
    (
        (rdev >> 8) & 0xfff,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    )
}

/// Defaults for objects that carry no attributes (written over S3).
#[derive(Debug, Clone, Copy)]
pub struct AttrDefaults {
    pub uid: u32,
    pub gid: u32,
    pub file_perm: u32,
    pub dir_perm: u32,
}

impl Default for AttrDefaults {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            file_perm: 0o644,
            dir_perm: 0o755,
        }
    }
}

/// `sec` or `sec.nnnnnnnnn`, as s3fs writes a timespec.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    }
}

/// Parses `sec[.frac]`; negative or garbled values are ignored (None).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let secs: u64 = sec.parse().ok()?;
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            digits.parse::<u32>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

pub fn to_system_time(t: time::OffsetDateTime) -> SystemTime {
    let nanos = t.unix_timestamp_nanos();
    if nanos <= 0 {
        return UNIX_EPOCH;
    }
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Attributes of an object (a file, a symlink, or a `dir/` marker when
/// `is_dir`), from its user metadata, falling back to `defaults`.
pub fn from_object(ino: u64, info: &ObjectInfo, is_dir: bool, defaults: &AttrDefaults) -> Attr {
    let user = &info.user_metadata;
    let mode = user
        .get(META_MODE)
        .and_then(|m| m.trim().parse::<u32>().ok());
    let kind = if is_dir {
        FileKind::Dir
    } else {
        match mode.map(|m| (m & S_IFMT, FileKind::special(m))) {
            Some((S_IFLNK, _)) => FileKind::Symlink,
            Some((_, Some(special))) => special,
            // A plain object is a file even if its mode says directory:
            // only a key ending in `/` (or a prefix) is a directory here.
            _ => FileKind::File,
        }
    };
    let perm = mode.map(|m| m & 0o7777).unwrap_or(match kind {
        FileKind::Dir => defaults.dir_perm,
        FileKind::Symlink => 0o777,
        _ => defaults.file_perm,
    });
    let parse_id = |name: &str, d: u32| {
        user.get(name)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(d)
    };
    let modified = to_system_time(info.last_modified);
    let mtime = user
        .get(META_MTIME)
        .and_then(|v| parse_time(v))
        .unwrap_or(modified);
    let ctime = user
        .get(META_CTIME)
        .and_then(|v| parse_time(v))
        .unwrap_or(mtime);
    let rdev = match kind {
        FileKind::CharDev | FileKind::BlockDev => parse_id(META_RDEV, 0),
        _ => 0,
    };
    Attr {
        ino,
        kind,
        // a special file has no bytes, whatever its object holds
        size: if is_dir || kind.is_special() {
            0
        } else {
            info.size
        },
        perm,
        uid: parse_id(META_UID, defaults.uid),
        gid: parse_id(META_GID, defaults.gid),
        mtime,
        ctime,
        rdev,
    }
}

/// Attributes of a directory that exists only as a prefix (no marker).
pub fn implicit_dir(ino: u64, defaults: &AttrDefaults, when: SystemTime) -> Attr {
    Attr {
        ino,
        kind: FileKind::Dir,
        size: 0,
        perm: defaults.dir_perm,
        uid: defaults.uid,
        gid: defaults.gid,
        mtime: when,
        ctime: when,
        rdev: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 0);
        assert_eq!(format_time(t), "1700000000");
        assert_eq!(parse_time("1700000000"), Some(t));
        let t2 = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(format_time(t2), "1700000000.000000005");
        assert_eq!(parse_time("1700000000.000000005"), Some(t2));
        assert_eq!(
            parse_time("1700000000.5"),
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_time("-5"), None);
        assert_eq!(parse_time("abc"), None);
        assert_eq!(parse_time("1.x"), None);
    }

    #[test]
    fn device_numbers() {
        for (maj, min) in [(1, 3), (8, 17), (4095, 0xfffff), (0, 0), (259, 300)] {
            assert_eq!(dev_parts(make_dev(maj, min)), (maj, min));
            // glibc's makedev for majors below 4096
            let glibc = libc::makedev(maj, min);
            assert_eq!(u64::from(make_dev(maj, min)), glibc, "{maj}:{min}");
        }
    }

    #[test]
    fn special_files_from_metadata() {
        let info = |mode: u32, rdev: Option<&str>| {
            let mut user: BTreeMap<String, String> =
                [("mode".to_string(), mode.to_string())].into();
            if let Some(r) = rdev {
                user.insert("rdev".into(), r.into());
            }
            ObjectInfo {
                bucket: "b".into(),
                key: "k".into(),
                size: 0,
                etag: String::new(),
                last_modified: time::OffsetDateTime::UNIX_EPOCH,
                headers: Default::default(),
                user_metadata: user,
                storage_class: Default::default(),
                checksum: None,
                version_id: None,
                parts_count: None,
                encryption: None,
                attrs: Default::default(),
            }
        };
        let d = AttrDefaults::default();
        let fifo = from_object(2, &info(S_IFIFO | 0o640, None), false, &d);
        assert_eq!(
            (fifo.kind, fifo.perm, fifo.rdev),
            (FileKind::Fifo, 0o640, 0)
        );
        let sock = from_object(3, &info(S_IFSOCK | 0o755, None), false, &d);
        assert_eq!(sock.kind, FileKind::Socket);
        let chr = from_object(4, &info(S_IFCHR | 0o600, Some("259")), false, &d);
        assert_eq!((chr.kind, chr.rdev), (FileKind::CharDev, 259));
        let blk = from_object(5, &info(S_IFBLK | 0o600, Some("2049")), false, &d);
        assert_eq!(
            (blk.kind, blk.rdev, blk.mode()),
            (FileKind::BlockDev, 2049, S_IFBLK | 0o600)
        );
        // the number goes with a device's metadata only
        let mut m = BTreeMap::new();
        blk.to_metadata(&mut m);
        assert_eq!(m.get("rdev").map(String::as_str), Some("2049"));
        fifo.to_metadata(&mut m);
        assert_eq!(m.get("rdev"), None);
        // a garbled number is 0, not an error
        let bad = from_object(6, &info(S_IFCHR | 0o600, Some("x")), false, &d);
        assert_eq!(bad.rdev, 0);
    }

    #[test]
    fn s3fs_mode_round_trip() {
        let a = Attr {
            ino: 5,
            kind: FileKind::Symlink,
            size: 3,
            perm: 0o777,
            uid: 1000,
            gid: 100,
            mtime: UNIX_EPOCH + Duration::from_secs(42),
            ctime: UNIX_EPOCH + Duration::from_secs(43),
            rdev: 0,
        };
        let mut m = BTreeMap::new();
        a.to_metadata(&mut m);
        // s3fs: decimal st_mode with the type bits (0120777 = 41471).
        assert_eq!(m["mode"], "41471");
        assert_eq!(m["mtime"], "42");
        let info = ObjectInfo {
            bucket: "b".into(),
            key: "k".into(),
            size: 3,
            etag: String::new(),
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
            headers: Default::default(),
            user_metadata: m,
            storage_class: Default::default(),
            checksum: None,
            version_id: None,
            parts_count: None,
            encryption: None,
            attrs: Default::default(),
        };
        assert_eq!(from_object(5, &info, false, &AttrDefaults::default()), a);
        // s3fs regular file 0100644 = 33188
        let mut info2 = info.clone();
        info2.user_metadata = [("mode".to_string(), "33188".to_string())].into();
        let b = from_object(6, &info2, false, &AttrDefaults::default());
        assert_eq!((b.kind, b.perm, b.mode()), (FileKind::File, 0o644, 33188));
    }
}
