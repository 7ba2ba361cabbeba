//! cairn: the storage appliance binary.
// No panicking index or unwrap outside tests: arguments, server answers
// and files must not be able to take the process down.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod admin;
mod bench;
mod drives;
mod exposure;
mod gateway;
mod limits;
mod mount;
mod nfs;
mod sandbox;
mod server;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Cairn: an S3-compatible, erasure-coded, bitrot-protected object store.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve S3 over a set of drives (directories).
    Server(Box<server::ServerArgs>),
    /// Serve a store that already holds data (a NAS folder) over S3,
    /// and optionally FUSE and NFS, leaving the data where and as it is.
    Gateway {
        #[command(subcommand)]
        backend: gateway::GatewayCommand,
    },
    /// Administer a running server: drive info, healing, the KMS.
    Admin(admin::AdminArgs),
    /// Measure throughput: S3 load against any endpoint, or micro
    /// benchmarks of erasure coding and hashing.
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCommand,
    },
}

/// The log filter without CAIRN_LOG. nfs3_server logs every accepted
/// connection at info and every refused NFS call (NOENT, EXIST) at error;
/// cairn-nfs logs the failures that matter itself (nfs/src/error.rs), so
/// only the wire layer's own errors are kept.
const DEFAULT_LOG: &str = "info,nfs3_server=off,nfs3_server::rpcwire=error";

/// The start of a serving command: its credentials, then the sandbox.
fn serving(
    address: &std::net::SocketAddr,
    plan: impl FnOnce() -> anyhow::Result<sandbox::Plan>,
) -> anyhow::Result<server::Credentials> {
    let creds = server::credentials(address)?;
    sandbox::confine(&plan()?)?;
    Ok(creds)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish()
        // Whatever CAIRN_LOG says, no secret is written: s3s's dumps of
        // requests, forms and signatures are dropped (the front logs each
        // request itself, redacted).
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !cairn_s3::redact::leaks_secrets(meta)
        }))
        .init();
    // The serving commands check their credentials (a refused start makes
    // nothing on disk), then confine themselves before any other thread
    // starts (Landlock binds the calling thread and its later children).
    let creds = match &cli.command {
        Command::Server(args) => serving(&args.address, || sandbox::Plan::server(args)).map(Some),
        Command::Gateway { backend } => serving(&backend.front().address, || {
            Ok(sandbox::Plan::gateway(backend))
        })
        .map(Some),
        Command::Admin(_) | Command::Bench { .. } => Ok(None),
    };
    let creds = match creds {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cairn: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async {
        let creds = || creds.context("credentials are checked before the start");
        match cli.command {
            Command::Server(args) => server::run(*args, creds()?).await,
            Command::Gateway { backend } => gateway::run(backend, creds()?).await,
            Command::Bench { cmd } => bench::run(cmd).await,
            Command::Admin(args) => admin::run(args).await,
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
