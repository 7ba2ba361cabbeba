//! cairn-fuse: the FUSE front. Thin glue: every kernel request becomes a
//! task on the server's tokio runtime that calls cairn-vfs and replies;
//! the fuser threads never wait on the store.

// No panicking index or unwrap on a path a client, the kernel or the store
// reaches (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod fs;

use std::path::PathBuf;
use std::sync::Arc;

use cairn_vfs::{Invalidate, Vfs};

pub use fs::CairnFs;

#[derive(Debug, Clone)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    /// Let users other than the mounting one in (`allow_other`).
    pub allow_other: bool,
    pub read_only: bool,
    /// Threads reading requests from the kernel.
    pub threads: usize,
    /// Kernel readahead of the mount in KiB (the FUSE default is 128;
    /// sequential reads need a few MiB). Set through sysfs after the
    /// mount, which needs root; `None` leaves the kernel's value.
    pub read_ahead_kb: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mounting FUSE at {path}: {source}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unmounting FUSE at {path}: {source}")]
    Unmount {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A mounted filesystem; `unmount` (or drop) takes it away.
pub struct Mount {
    session: Option<fuser::BackgroundSession>,
    path: PathBuf,
}

/// Mounts `vfs` at `opts.mountpoint`. Requests run on `rt`.
pub fn mount(
    vfs: Arc<Vfs>,
    rt: tokio::runtime::Handle,
    opts: &MountOptions,
) -> Result<Mount, MountError> {
    let mut options = vec![
        fuser::MountOption::FSName("cairn".into()),
        fuser::MountOption::Subtype("cairn".into()),
        // the kernel checks modes and owners against the attributes we report
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
    ];
    if opts.read_only {
        options.push(fuser::MountOption::RO);
    }
    let mut cfg = fuser::Config::default();
    cfg.mount_options = options;
    cfg.acl = if opts.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    cfg.n_threads = Some(opts.threads.max(1));
    let fs = CairnFs::new(vfs.clone(), rt.clone());
    let session =
        fuser::spawn_mount(fs, &opts.mountpoint, &cfg).map_err(|source| MountError::Mount {
            path: opts.mountpoint.clone(),
            source,
        })?;
    tracing::info!(path = %opts.mountpoint.display(), "FUSE mounted");
    if let Some(kb) = opts.read_ahead_kb
        && let Err(e) = set_read_ahead(&opts.mountpoint, kb)
    {
        tracing::warn!(error = %e, kb, "could not set the mount's readahead");
    }
    forward_invalidations(&vfs, &rt, session.notifier());
    {
        let _g = rt.enter();
        vfs.keep_dir_times();
    }
    Ok(Mount {
        session: Some(session),
        path: opts.mountpoint.clone(),
    })
}

/// Changes made through other fronts reach the kernel's caches: the view
/// names what to drop, a thread of ours tells the kernel (a notification
/// is a write to /dev/fuse that may wait on the kernel, so it stays off the
/// runtime and off the request threads).
fn forward_invalidations(vfs: &Arc<Vfs>, rt: &tokio::runtime::Handle, notifier: fuser::Notifier) {
    let (tx, rx) = std::sync::mpsc::channel::<Invalidate>();
    let _g = rt.enter();
    if !vfs.watch_changes(move |inv| {
        let _ = tx.send(inv);
    }) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cairn-fuse-inval".into())
        .spawn(move || {
            for inv in rx {
                // ENOENT: the kernel no longer knows the inode or entry
                let _ = match inv {
                    Invalidate::Inode(ino) => notifier.inval_inode(fuser::INodeNo(ino), 0, 0),
                    Invalidate::Entry { parent, name } => {
                        notifier.inval_entry(fuser::INodeNo(parent), std::ffi::OsStr::new(&name))
                    }
                };
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no invalidation thread: other fronts' changes show after the TTL");
    }
}

impl Mount {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Unmounts and waits for the request threads to end.
    pub fn unmount(mut self) -> Result<(), MountError> {
        match self.session.take() {
            Some(s) => s.umount_and_join().map_err(|source| MountError::Unmount {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

/// Sets the readahead of the mount's backing device info
/// (`/sys/class/bdi/MAJ:MIN/read_ahead_kb`): the kernel caps it at 128 KiB
/// for FUSE at init; larger windows let sequential reads arrive as 1 MiB
/// requests, several in flight. The device number comes from
/// /proc/self/mountinfo (a stat of the mountpoint would be a FUSE request).
fn set_read_ahead(mountpoint: &std::path::Path, kb: u32) -> std::io::Result<()> {
    let want = std::fs::canonicalize(mountpoint)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    // fields: id parent MAJ:MIN root mountpoint ...; the last match is the top mount
    let dev = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let mp = f.get(4)?.replace("\\040", " ");
            (std::path::Path::new(&mp) == want).then(|| f.get(2).map(|d| d.to_string()))?
        })
        .next_back()
        .ok_or_else(|| std::io::Error::other("mount not in /proc/self/mountinfo"))?;
    std::fs::write(
        format!("/sys/class/bdi/{dev}/read_ahead_kb"),
        kb.to_string(),
    )?;
    tracing::debug!(dev, kb, "FUSE readahead set");
    Ok(())
}
