//! Packaging: `cairn install` writes the files a system installation
//! wants (the systemd unit, its example environment file, a sysusers
//! entry, shell completions, man pages, and the binary) under a prefix;
//! `cairn completions SHELL` and `cairn manpage` print one of them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;

/// The systemd unit; its `ExecStart` names this binary, replaced by
/// `PREFIX/bin/cairn` at install.
const UNIT: &str = include_str!("../../packaging/cairn.service");
/// The binary path the unit file in the repository names.
const UNIT_BINARY: &str = "/usr/local/bin/cairn";
/// The unit's example environment file.
const ENV_EXAMPLE: &str = include_str!("../../packaging/cairn.env");
/// systemd-sysusers entry for the unit's `cairn` user.
const SYSUSERS: &str = include_str!("../../packaging/cairn.sysusers");

#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// The installation prefix: files go to PREFIX/bin, PREFIX/lib/systemd,
    /// PREFIX/share/... and the unit runs PREFIX/bin/cairn.
    #[arg(long, default_value = "/usr/local")]
    pub prefix: PathBuf,
    /// Staging root for packages: files are written under DESTDIR/PREFIX
    /// while what they name stays under PREFIX.
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
    /// Do not copy this binary to PREFIX/bin/cairn.
    #[arg(long)]
    pub no_binary: bool,
}

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManpageArgs {
    /// A subcommand's page (e.g. `server`, `gateway nas`) instead of
    /// cairn's own.
    pub subcommand: Vec<String>,
}

/// Where each installed file goes, relative to the prefix.
const BASH: &str = "share/bash-completion/completions/cairn";
const ZSH: &str = "share/zsh/site-functions/_cairn";
const FISH: &str = "share/fish/vendor_completions.d/cairn.fish";
const MAN1: &str = "share/man/man1";
const UNIT_PATH: &str = "lib/systemd/system/cairn.service";
const SYSUSERS_PATH: &str = "lib/sysusers.d/cairn.conf";
const ENV_PATH: &str = "share/cairn/cairn.env";

pub fn install(args: &InstallArgs) -> anyhow::Result<()> {
    if !args.prefix.is_absolute() {
        bail!(
            "--prefix {} must be an absolute path (the unit names the binary by it)",
            args.prefix.display()
        );
    }
    let root = match &args.destdir {
        Some(d) => d.join(args.prefix.strip_prefix("/").unwrap_or(&args.prefix)),
        None => args.prefix.clone(),
    };
    let binary = args.prefix.join("bin/cairn");
    let unit = UNIT.replace(UNIT_BINARY, &binary.to_string_lossy());
    let mut written = Vec::new();
    let mut put = |rel: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = root.join(rel);
        write_file(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    put(UNIT_PATH, unit.as_bytes())?;
    put(SYSUSERS_PATH, SYSUSERS.as_bytes())?;
    put(ENV_PATH, ENV_EXAMPLE.as_bytes())?;
    for (shell, rel) in [
        (clap_complete::Shell::Bash, BASH),
        (clap_complete::Shell::Zsh, ZSH),
        (clap_complete::Shell::Fish, FISH),
    ] {
        put(rel, &completion(shell))?;
    }
    let man_dir = root.join(MAN1);
    std::fs::create_dir_all(&man_dir).with_context(|| format!("creating {}", man_dir.display()))?;
    clap_mangen::generate_to(crate::Cli::command(), &man_dir)
        .with_context(|| format!("writing man pages to {}", man_dir.display()))?;
    written.push(man_dir);
    if !args.no_binary {
        let to = root.join("bin/cairn");
        let me = std::env::current_exe().context("finding this binary")?;
        let same = match (me.canonicalize(), to.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            copy_binary(&me, &to)?;
        }
        written.push(to);
    }
    let mut out = std::io::stdout().lock();
    for p in &written {
        writeln!(out, "{}", p.display())?;
    }
    writeln!(
        out,
        "next: systemd-sysusers; install -m 600 {} /etc/cairn/cairn.env and edit it; \
         systemctl daemon-reload && systemctl enable --now cairn",
        args.prefix.join(ENV_PATH).display()
    )?;
    Ok(())
}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(&completion(args.shell))
        .context("writing the completions")
}

pub fn manpage(args: &ManpageArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    for name in &args.subcommand {
        cmd = cmd
            .find_subcommand(name)
            .with_context(|| format!("no subcommand {name:?}"))?
            .clone();
    }
    clap_mangen::Man::new(cmd)
        .render(&mut std::io::stdout().lock())
        .context("writing the man page")
}

fn completion(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), "cairn", &mut out);
    out
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Copies the binary next to its target and renames it into place, so a
/// running copy there is replaced, not overwritten.
fn copy_binary(from: &Path, to: &Path) -> anyhow::Result<()> {
    let dir = to.parent().context("the binary's folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(".cairn.install.tmp");
    std::fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))
}
