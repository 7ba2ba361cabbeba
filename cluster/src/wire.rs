//! The storage RPC on the wire: one `POST /_cairn/internode/v1/drive/<op>`
//! per `DriveIo` call, its fields in headers (paths percent-encoded,
//! relative to the drive's root), whole bodies for records, streamed ones
//! for shard files, and an error as the `std::io::Error` it was (its OS
//! error number when it had one: the store tells a full drive, a missing
//! file and a missing folder apart by them).

use std::io;

use cairn_core::driveio::{DirEntry, FileKind, Space, Stat};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// Where the storage RPC is served.
pub const PREFIX: &str = "/_cairn/internode";
pub const DRIVE_PATH: &str = "/_cairn/internode/v1/drive/";
/// A node's greeting: its drive arguments' digest, compared.
pub const HELLO_PATH: &str = "/_cairn/internode/v1/hello";
/// Asks of a node's lockers (`locker::LockCall`, JSON), signed as `LOCK_OP`.
pub const LOCK_PATH: &str = "/_cairn/internode/v1/lock";
pub const LOCK_OP: &str = "lock";
/// Another node's changes (`relay::WireChange` list, JSON), signed as
/// `CHANGES_OP`.
pub const CHANGES_PATH: &str = "/_cairn/internode/v1/changes";
pub const CHANGES_OP: &str = "changes";
/// A node's version and uptime (`PeerInfo`, JSON), signed as `INFO_OP`.
pub const INFO_PATH: &str = "/_cairn/internode/v1/info";
pub const INFO_OP: &str = "info";

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub version: String,
    pub uptime_secs: u64,
}

pub const H_AUTH: &str = "x-cairn-node-auth";
pub const H_DRIVE: &str = "x-cairn-drive";
pub const H_PATH: &str = "x-cairn-path";
pub const H_PATH2: &str = "x-cairn-path2";
pub const H_OFFSET: &str = "x-cairn-offset";
pub const H_LEN: &str = "x-cairn-len";
pub const H_DURABLE: &str = "x-cairn-durable";
pub const H_BODY_SHA256: &str = "x-cairn-body-sha256";

/// The calls, one per `DriveIo` method the remote side runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    ReadPrefix,
    ReadRecord,
    WriteAtomic,
    /// `write_atomic` of a fenced record; the fence travels as the offset.
    WriteRecord,
    WriteAt,
    Open,
    Create,
    MakeRoot,
    CreateDir,
    CreateDirAll,
    RemoveFile,
    RemoveDir,
    RemoveDirAll,
    Rename,
    ReadDir,
    Stat,
    Lstat,
    SyncDir,
    SyncFs,
    Space,
    Walk,
}

const OPS: [(Op, &str); 22] = [
    (Op::Read, "read"),
    (Op::ReadPrefix, "read-prefix"),
    (Op::ReadRecord, "read-record"),
    (Op::WriteAtomic, "write-atomic"),
    (Op::WriteRecord, "write-record"),
    (Op::WriteAt, "write-at"),
    (Op::Open, "open"),
    (Op::Create, "create"),
    (Op::MakeRoot, "make-root"),
    (Op::CreateDir, "create-dir"),
    (Op::CreateDirAll, "create-dir-all"),
    (Op::RemoveFile, "remove-file"),
    (Op::RemoveDir, "remove-dir"),
    (Op::RemoveDirAll, "remove-dir-all"),
    (Op::Rename, "rename"),
    (Op::ReadDir, "read-dir"),
    (Op::Stat, "stat"),
    (Op::Lstat, "lstat"),
    (Op::SyncDir, "sync-dir"),
    (Op::SyncFs, "sync-fs"),
    (Op::Space, "space"),
    (Op::Walk, "walk"),
];

impl Op {
    pub fn name(self) -> &'static str {
        OPS.iter()
            .find(|(o, _)| *o == self)
            .map(|(_, n)| *n)
            .unwrap_or("unknown")
    }

    pub fn parse(name: &str) -> Option<Op> {
        OPS.iter().find(|(_, n)| *n == name).map(|(o, _)| *o)
    }
}

/// Characters a path header keeps as they are.
const PATH_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'"')
    .add(b'#')
    .add(b'?')
    .add(b'\\')
    .add(0x7f);

pub fn encode_path(rel: &str) -> String {
    utf8_percent_encode(rel, PATH_SET).to_string()
}

pub fn decode_path(header: &str) -> Option<String> {
    percent_decode_str(header)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// An error answer's body.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireError {
    /// `raw_os_error` of the error, when it had one.
    pub errno: Option<i32>,
    /// `io::ErrorKind` as a name, for errors without a number.
    pub kind: String,
    pub message: String,
}

impl WireError {
    pub fn of(e: &io::Error) -> Self {
        Self {
            errno: e.raw_os_error(),
            kind: format!("{:?}", e.kind()),
            message: e.to_string(),
        }
    }

    pub fn into_io(self) -> io::Error {
        if let Some(n) = self.errno {
            return io::Error::from_raw_os_error(n);
        }
        let kind = match self.kind.as_str() {
            "NotFound" => io::ErrorKind::NotFound,
            "AlreadyExists" => io::ErrorKind::AlreadyExists,
            "PermissionDenied" => io::ErrorKind::PermissionDenied,
            "InvalidInput" => io::ErrorKind::InvalidInput,
            "InvalidData" => io::ErrorKind::InvalidData,
            "UnexpectedEof" => io::ErrorKind::UnexpectedEof,
            "NotADirectory" => io::ErrorKind::NotADirectory,
            "IsADirectory" => io::ErrorKind::IsADirectory,
            "DirectoryNotEmpty" => io::ErrorKind::DirectoryNotEmpty,
            "StorageFull" => io::ErrorKind::StorageFull,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self.message)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireStat {
    pub kind: u8,
    pub len: u64,
    /// Nanoseconds since the epoch.
    pub modified: Option<u128>,
    pub dev: u64,
}

fn kind_code(k: FileKind) -> u8 {
    match k {
        FileKind::File => 0,
        FileKind::Dir => 1,
        FileKind::Other => 2,
    }
}

fn kind_of(c: u8) -> FileKind {
    match c {
        0 => FileKind::File,
        1 => FileKind::Dir,
        _ => FileKind::Other,
    }
}

impl From<&Stat> for WireStat {
    fn from(s: &Stat) -> Self {
        Self {
            kind: kind_code(s.kind),
            len: s.len,
            modified: s
                .modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos()),
            dev: s.dev,
        }
    }
}

impl From<WireStat> for Stat {
    fn from(w: WireStat) -> Self {
        Stat {
            kind: kind_of(w.kind),
            len: w.len,
            modified: w.modified.and_then(|n| {
                let d = std::time::Duration::from_nanos(u64::try_from(n).ok()?);
                std::time::UNIX_EPOCH.checked_add(d)
            }),
            dev: w.dev,
        }
    }
}

/// A folder entry: names that are not UTF-8 are not sent (no key, data
/// dir or record of the store has one).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireEntry {
    pub name: String,
    pub kind: u8,
}

impl WireEntry {
    pub fn of(e: &DirEntry) -> Option<Self> {
        Some(Self {
            name: e.name.to_str()?.to_owned(),
            kind: kind_code(e.kind),
        })
    }

    pub fn into_entry(self) -> DirEntry {
        DirEntry {
            name: self.name.into(),
            kind: kind_of(self.kind),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireSpace {
    pub total: u64,
    pub free: u64,
}

impl From<Space> for WireSpace {
    fn from(s: Space) -> Self {
        Self {
            total: s.total,
            free: s.free,
        }
    }
}

/// A walk's query (JSON body) and its items (JSON lines).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireWalk {
    pub prefix: String,
    pub start_after: Option<String>,
    pub delimiter: Option<String>,
    pub candidates: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum WireItem {
    Object(String),
    Prefix(String),
}
