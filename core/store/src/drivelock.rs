//! The exclusive lock a server holds on each of its drives while it runs:
//! `flock` on `.cairn.sys/lock`, which holds the holder's pid. A second
//! server (or a second `ErasureSet::open` in one process: the lock belongs
//! to the open file, not the process) on the same drive is refused. The
//! kernel drops the lock when the file closes, so a killed server never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, Write as _};

use cairn_api::SafePath;
use cairn_api::seg;

pub const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another open file holds the lock; `holder` is the pid it recorded.
    #[error("locked by {}", holder_text(*.holder))]
    Held { holder: Option<u32> },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Who holds a lock, for messages.
pub fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("pid {pid}"),
        None => "a process that recorded no pid".into(),
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DriveLock {
    _file: File,
}

impl DriveLock {
    /// Whether the drive whose system folder is `sys_dir` could be locked
    /// now, making nothing: a missing lock file is free, a held one is
    /// `Held` (the probe's own lock, if taken, is dropped at once).
    pub fn probe(sys_dir: &SafePath) -> Result<(), LockError> {
        let mut file = match OpenOptions::new()
            .read(true)
            .open(sys_dir.join(seg!(LOCK_FILE)))
        {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        match file.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
                holder: read_holder(&mut file),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Takes the lock of the drive whose system folder is `sys_dir`
    /// (created if missing), without waiting.
    pub fn acquire(sys_dir: &SafePath) -> Result<Self, LockError> {
        std::fs::create_dir_all(sys_dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(sys_dir.join(seg!(LOCK_FILE)))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    holder: read_holder(&mut file),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Self { _file: file })
    }
}

/// The pid a lock file holds, if it holds one.
fn read_holder(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.read_to_string(&mut s)
        .ok()
        .and_then(|_| s.trim().parse().ok())
}
