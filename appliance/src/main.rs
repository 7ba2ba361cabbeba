//! cairn: the storage appliance binary.
// No panicking index or unwrap outside tests: arguments, server answers
// and files must not be able to take the process down.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod admin;
mod audit;
mod bench;
mod cluster;
mod console;
mod drives;
mod exposure;
mod federation;
mod filecfg;
mod gateway;
mod iam;
mod iamcli;
mod identity;
mod install;
mod limits;
mod logging;
mod mount;
mod nfs;
mod notify;
mod oidc;
mod plane;
mod replicate;
mod sandbox;
#[cfg(feature = "federation")]
mod sealer;
mod server;
mod tls;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Cairn: an S3-compatible, erasure-coded, bitrot-protected object store.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about = None, after_help = logging::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: text, or json (one object per line). What is logged is
    /// chosen by CAIRN_LOG (EnvFilter syntax, default info; e.g.
    /// CAIRN_LOG=debug, or CAIRN_LOG=info,cairn::access=off without the
    /// access log). See `cairn --help`.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "CAIRN_LOG_FORMAT"
    )]
    log_format: logging::LogFormat,
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
    /// Install the systemd unit, the example environment file, shell
    /// completions and man pages (and this binary) under a prefix.
    Install(install::InstallArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(install::CompletionsArgs),
    /// Print the man page (roff) of cairn or of one subcommand.
    Manpage(install::ManpageArgs),
}

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
    logging::init(cli.log_format);
    // Packaging commands need no runtime.
    let packaged = match &cli.command {
        Command::Install(a) => Some(install::install(a)),
        Command::Completions(a) => Some(install::completions(a)),
        Command::Manpage(a) => Some(install::manpage(a)),
        _ => None,
    };
    if let Some(res) = packaged {
        return match res {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cairn: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // The serving commands check their credentials (a refused start makes
    // nothing on disk), then confine themselves before any other thread
    // starts (Landlock binds the calling thread and its later children).
    let creds = match &cli.command {
        Command::Server(args) => serving(&args.address, || {
            // a drive list the store would refuse is refused before the
            // sandbox makes drive folders
            server::check_drives(args)?;
            sandbox::Plan::server(args)
        })
        .map(Some),
        Command::Gateway { backend } => serving(&backend.front().address, || {
            Ok(sandbox::Plan::gateway(backend))
        })
        .map(Some),
        Command::Admin(_)
        | Command::Bench { .. }
        | Command::Install(_)
        | Command::Completions(_)
        | Command::Manpage(_) => Ok(None),
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
            Command::Install(_) | Command::Completions(_) | Command::Manpage(_) => Ok(()),
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
