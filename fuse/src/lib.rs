//! cairn-fuse: the FUSE front. Thin glue: every kernel request becomes a
//! task on the server's tokio runtime that calls cairn-vfs and replies;
//! the fuser threads never wait on the store.

mod fs;

use std::path::PathBuf;
use std::sync::Arc;

use cairn_vfs::Vfs;

pub use fs::CairnFs;

#[derive(Debug, Clone)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    /// Let users other than the mounting one in (`allow_other`).
    pub allow_other: bool,
    pub read_only: bool,
    /// Threads reading requests from the kernel.
    pub threads: usize,
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
    let fs = CairnFs::new(vfs, rt);
    let session =
        fuser::spawn_mount(fs, &opts.mountpoint, &cfg).map_err(|source| MountError::Mount {
            path: opts.mountpoint.clone(),
            source,
        })?;
    tracing::info!(path = %opts.mountpoint.display(), "FUSE mounted");
    Ok(Mount {
        session: Some(session),
        path: opts.mountpoint.clone(),
    })
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
