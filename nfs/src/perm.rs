//! POSIX permission checks for the caller of each NFS call, as a kernel
//! NFS server makes them: the AUTH_SYS ids after squashing (a call without
//! AUTH_SYS is the export's anonymous ids) against the mode, owner and
//! group of the file or directory. uid 0 (only when root is not squashed)
//! may do anything but execute a file no one may execute. As in Linux's
//! nfsd, the owner of a file may READ and WRITE it whatever its mode (a
//! client checks the mode at open; the writes that follow must not fail
//! because the file was made read-only meanwhile).

use cairn_vfs::{Attr, FileKind};

/// Permission bits, as in a mode's `rwx` triplets.
pub const READ: u32 = 4;
pub const WRITE: u32 = 2;
pub const EXEC: u32 = 1;

/// ACCESS3 bits (RFC 1813, ACCESS).
const ACCESS3_READ: u32 = 0x1;
const ACCESS3_LOOKUP: u32 = 0x2;
const ACCESS3_MODIFY: u32 = 0x4;
const ACCESS3_EXTEND: u32 = 0x8;
const ACCESS3_DELETE: u32 = 0x10;
const ACCESS3_EXECUTE: u32 = 0x20;

/// The sticky bit: in such a directory only an entry's owner, the
/// directory's owner or root may remove or rename the entry.
const STICKY: u32 = 0o1000;

/// Who a call runs as, squashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub gids: Vec<u32>,
}

impl Who {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.gids.contains(&gid)
    }

    pub fn owns(&self, a: &Attr) -> bool {
        self.uid == a.uid
    }

    /// The `rwx` bits this caller has on `a`.
    fn bits(&self, a: &Attr) -> u32 {
        if self.is_root() {
            // root: everything, but execute only where someone may
            let x = a.kind == FileKind::Dir || a.perm & 0o111 != 0;
            return READ | WRITE | if x { EXEC } else { 0 };
        }
        let shift = if self.owns(a) {
            6
        } else if self.in_group(a.gid) {
            3
        } else {
            0
        };
        (a.perm >> shift) & 7
    }

    /// Whether the caller has every bit of `want` on `a`.
    pub fn may(&self, a: &Attr, want: u32) -> bool {
        self.bits(a) & want == want
    }

    /// `may` for READ and WRITE of a file's bytes: its owner always may.
    pub fn may_io(&self, a: &Attr, want: u32) -> bool {
        self.owns(a) || self.may(a, want)
    }

    /// Whether the caller may remove or rename `entry` out of `dir`
    /// (write and search on `dir` checked separately): the sticky bit.
    pub fn may_unlink(&self, dir: &Attr, entry: &Attr) -> bool {
        dir.perm & STICKY == 0 || self.is_root() || self.owns(dir) || self.owns(entry)
    }

    /// The ACCESS3 bits of `requested` the caller has on `a`.
    pub fn access(&self, a: &Attr, requested: u32) -> u32 {
        let bits = self.bits(a);
        let mut granted = 0;
        if bits & READ != 0 || (a.kind == FileKind::File && self.owns(a)) {
            granted |= ACCESS3_READ;
        }
        if bits & WRITE != 0 || (a.kind == FileKind::File && self.owns(a)) {
            granted |= ACCESS3_MODIFY | ACCESS3_EXTEND;
            if a.kind == FileKind::Dir {
                granted |= ACCESS3_DELETE;
            }
        }
        if bits & EXEC != 0 {
            granted |= if a.kind == FileKind::Dir {
                ACCESS3_LOOKUP
            } else {
                ACCESS3_EXECUTE
            };
        }
        requested & granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn attr(kind: FileKind, perm: u32, uid: u32, gid: u32) -> Attr {
        Attr {
            ino: 2,
            kind,
            size: 0,
            perm,
            uid,
            gid,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            rdev: 0,
        }
    }

    fn who(uid: u32, gid: u32, gids: &[u32]) -> Who {
        Who {
            uid,
            gid,
            gids: gids.to_vec(),
        }
    }

    #[test]
    fn owner_group_other_and_root() {
        let f = attr(FileKind::File, 0o640, 1000, 100);
        let owner = who(1000, 1000, &[]);
        let member = who(2000, 2000, &[100]);
        let other = who(3000, 3000, &[]);
        let root = who(0, 0, &[]);
        assert!(owner.may(&f, READ | WRITE));
        assert!(member.may(&f, READ) && !member.may(&f, WRITE));
        assert!(!other.may(&f, READ));
        assert!(root.may(&f, READ | WRITE) && !root.may(&f, EXEC));
        // the owner's own bits decide for the owner, even when narrower
        let g = attr(FileKind::File, 0o077, 1000, 100);
        assert!(!owner.may(&g, READ));
        assert!(owner.may_io(&g, READ | WRITE), "owner override for I/O");
        assert!(!other.may_io(&f, READ));
    }

    #[test]
    fn sticky_directories_protect_other_users_entries() {
        let tmp = attr(FileKind::Dir, 0o1777, 0, 0);
        let theirs = attr(FileKind::File, 0o644, 1000, 1000);
        assert!(who(1000, 1000, &[]).may_unlink(&tmp, &theirs));
        assert!(!who(2000, 2000, &[]).may_unlink(&tmp, &theirs));
        assert!(who(0, 0, &[]).may_unlink(&tmp, &theirs));
        let open = attr(FileKind::Dir, 0o777, 0, 0);
        assert!(who(2000, 2000, &[]).may_unlink(&open, &theirs));
    }

    #[test]
    fn access_bits_follow_the_mode() {
        let d = attr(FileKind::Dir, 0o755, 1000, 1000);
        let all = 0x3f;
        assert_eq!(
            who(1000, 1000, &[]).access(&d, all),
            0x1 | 0x2 | 0x4 | 0x8 | 0x10
        );
        assert_eq!(who(2000, 2000, &[]).access(&d, all), 0x1 | 0x2);
        let f = attr(FileKind::File, 0o754, 1000, 1000);
        assert_eq!(who(1000, 1000, &[]).access(&f, all), 0x1 | 0x4 | 0x8 | 0x20);
        assert_eq!(who(2000, 1000, &[]).access(&f, all), 0x1 | 0x20);
        assert_eq!(who(3000, 3000, &[]).access(&f, all), 0x1);
        assert_eq!(
            who(3000, 3000, &[]).access(&f, 0x4),
            0,
            "only what was asked"
        );
    }
}
