//! cairn-nfs: the NFSv3 front. Thin glue: nfs3_server 0.11 speaks the wire
//! protocols (NFSv3 with COMMIT, MOUNT and a mini portmapper on one TCP
//! port), fs.rs forwards each call to cairn-vfs. What this crate adds is what NFS needs
//! and FUSE does not: file handles that survive restarts (ids.rs), WRITEs
//! durable when answered and committed after an idle time (open.rs), their
//! recovery after a crash (recover.rs), and the client networks allowed
//! in (allow.rs).

// No panicking index or unwrap on a path a client, the kernel or the store
// reaches (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod allow;
mod callers;
mod error;
mod fs;
mod handle;
mod ids;
mod listing;
mod open;
mod perm;
mod recover;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_vfs::Vfs;
use nfs3_server::tcp::{NFSTcp as _, NFSTcpListener};

pub use allow::{Allow, Network};
pub use error::{status, status_of_errno};

/// AUTH_SYS id squashing of the ids clients set (SETATTR, CREATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squash {
    None,
    /// uid/gid 0 become the anonymous ids (the default).
    Root,
    /// Every id becomes the anonymous ids.
    All,
}

#[derive(Debug, Clone)]
pub struct NfsOptions {
    pub address: SocketAddr,
    /// The export's name: clients mount `/<name>`.
    pub export: String,
    /// Only these buckets are top directories (empty: all).
    pub buckets: Vec<String>,
    pub squash: Squash,
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// Client networks allowed to connect (empty: any).
    pub allow: Vec<Network>,
    /// Where the id map lives (`ids.redb`).
    pub state_dir: PathBuf,
    /// A file with no WRITE for this long is committed to its object.
    pub commit_idle: Duration,
    /// Staged bytes above which files commit without waiting.
    pub commit_high_water: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NfsError {
    #[error(transparent)]
    Ids(#[from] ids::IdError),
    #[error("NFS listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("NFS state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running export; `stop` commits what is staged.
pub struct NfsServer {
    local: SocketAddr,
    open: Arc<open::OpenFiles>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl NfsServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops serving and commits every staged file.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.open.close_all().await;
    }
}

/// Opens the id map, commits writes a crash left staged, and serves `vfs`
/// (its spool must be a persistent directory of this export's own).
pub async fn serve(vfs: Arc<Vfs>, opts: NfsOptions) -> Result<NfsServer, NfsError> {
    std::fs::create_dir_all(&opts.state_dir).map_err(|source| NfsError::State {
        path: opts.state_dir.clone(),
        source,
    })?;
    let ids = Arc::new(ids::IdMap::open(
        &cairn_api::SafePath::root(&opts.state_dir).join(cairn_api::seg!("ids.redb")),
    )?);
    recover::recover(&vfs, &ids).await;
    let open = open::OpenFiles::new(
        vfs.clone(),
        ids.clone(),
        opts.commit_idle,
        opts.commit_high_water,
    );
    let fs = fs::CairnNfs::new(vfs, ids.clone(), open.clone(), opts.clone());
    let mut tasks = vec![open.start_reaper()];
    fs.vfs.keep_dir_times();
    // With an allow list the public port is ours: peers are checked and
    // spliced to nfs3_server on a loopback port (it accepts sockets itself
    // and shows the filesystem no peer address).
    let inner_addr = if opts.allow.is_empty() {
        opts.address
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    };
    // the handle generation is the map's verifier, not the start time:
    // handles survive restarts
    let mut listener =
        NFSTcpListener::bind_with_generation(&inner_addr.to_string(), fs, ids.verifier())
            .await
            .map_err(|source| NfsError::Bind {
                addr: inner_addr,
                source,
            })?;
    // the write verifier is new at each start, unlike the generation: a
    // client whose UNSTABLE writes a restart lost sees it change at COMMIT
    // and sends them again (vendor/nfs3_server/CAIRN.md)
    listener.set_write_verifier(rand::random());
    listener.with_export_name(&opts.export);
    let inner_local = SocketAddr::new(listener.get_listen_ip(), listener.get_listen_port());
    tasks.push(tokio::spawn(serve_forever(Arc::new(listener))));
    let local = if opts.allow.is_empty() {
        inner_local
    } else {
        let (local, task) = allow::front(opts.address, inner_local, Allow::new(opts.allow))
            .await
            .map_err(|source| NfsError::Bind {
                addr: opts.address,
                source,
            })?;
        tasks.push(task);
        local
    };
    tracing::info!(address = %local, export = %format!("/{}", opts.export), "NFSv3 export");
    Ok(NfsServer { local, open, tasks })
}

/// Runs nfs3_server's accept loop again whenever it ends. It panics when a
/// peer resets its connection before the loop reads the peer's address
/// (nfs3_server 0.11.1 tcp.rs `expect("failed to get peer address")`; any
/// client can do it) and returns on an accept error (EMFILE); either would
/// leave the export deaf until a restart. A panic concerns one connection,
/// so the loop restarts at once; after an accept error it waits a little
/// rather than spin. The loop runs in a JoinSet so that aborting this task
/// (stop) aborts it too.
async fn serve_forever(listener: Arc<NFSTcpListener<fs::CairnNfs>>) {
    loop {
        let mut run = tokio::task::JoinSet::new();
        let l = listener.clone();
        run.spawn(async move { l.handle_forever().await });
        match run.join_next().await {
            Some(Ok(Ok(()))) | None => return,
            Some(Ok(Err(e))) => {
                tracing::error!(error = %e, "NFS listener failed; serving again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "NFS listener panicked; serving again"),
        }
    }
}
