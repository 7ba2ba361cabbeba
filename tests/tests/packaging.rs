//! Packaging: `cairn completions`, `cairn manpage` and `cairn install
//! --prefix DIR` (the systemd unit, its environment file, completions,
//! man pages, the binary), checked with the tools that read them: bash,
//! groff, man and systemd-analyze (scripts/test installs them).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use cairn_tests::cmd::{run, run_stdout};
use cairn_tests::{cairn_bin, require_tool};

/// The subcommands every completion script must offer.
const SUBCOMMANDS: [&str; 7] = [
    "server",
    "gateway",
    "admin",
    "bench",
    "install",
    "completions",
    "manpage",
];

fn cairn(args: &[&str]) -> Result<String> {
    run_stdout(Command::new(cairn_bin()?).args(args))
}

#[test]
fn completions_for_bash_zsh_fish() -> Result<()> {
    for shell in ["bash", "zsh", "fish"] {
        let script = cairn(&["completions", shell])?;
        for sub in SUBCOMMANDS {
            ensure!(script.contains(sub), "{shell} completions lack {sub}");
        }
        ensure!(
            script.contains("log-format"),
            "{shell} completions lack --log-format"
        );
    }
    ensure!(cairn(&["completions", "zsh"])?.starts_with("#compdef cairn"));
    ensure!(cairn(&["completions", "fish"])?.contains("complete -c cairn"));
    // The bash script parses, and defines the completion function it
    // registers.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cairn.bash");
    std::fs::write(&path, cairn(&["completions", "bash"])?)?;
    run(Command::new(require_tool("bash")?).arg("-n").arg(&path))?;
    let out = run_stdout(
        Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p cairn", path.display())),
    )?;
    ensure!(out.contains("cairn"), "complete -p cairn: {out}");
    Ok(())
}

/// Renders a man page with groff, failing on any warning.
fn render(page: &Path) -> Result<String> {
    let out = run(Command::new(require_tool("groff")?)
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(page))?;
    ensure!(
        out.stderr.is_empty(),
        "groff warns about {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    run_stdout(
        Command::new(require_tool("man")?)
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
    )
}

#[test]
fn manpage_renders() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let top = dir.path().join("cairn.1");
    std::fs::write(&top, cairn(&["manpage"])?)?;
    let text = render(&top)?;
    for want in [
        "NAME",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "server",
        "gateway",
        "CAIRN_LOG",
    ] {
        ensure!(text.contains(want), "no {want:?} in the man page:\n{text}");
    }
    let server = dir.path().join("cairn-server.1");
    std::fs::write(&server, cairn(&["manpage", "server"])?)?;
    let text = render(&server)?;
    for want in ["cairn-server", "--address", "--log-format", "CAIRN_ADDRESS"] {
        ensure!(
            text.contains(want),
            "no {want:?} in cairn-server(1):\n{text}"
        );
    }
    let nas = cairn(&["manpage", "gateway", "nas"])?;
    ensure!(nas.contains("cairn-gateway-nas"), "{nas}");
    ensure!(
        Command::new(cairn_bin()?)
            .args(["manpage", "nope"])
            .output()?
            .status
            .code()
            == Some(1)
    );
    Ok(())
}

#[test]
fn install_writes_unit_env_completions_manpages_and_binary() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("usr");
    let prefix_s = prefix.to_str().context("utf-8 temp path")?;
    let out = cairn(&["install", "--prefix", prefix_s])?;
    let files = [
        "bin/cairn",
        "lib/systemd/system/cairn.service",
        "lib/sysusers.d/cairn.conf",
        "share/cairn/cairn.env",
        "share/bash-completion/completions/cairn",
        "share/zsh/site-functions/_cairn",
        "share/fish/vendor_completions.d/cairn.fish",
        "share/man/man1/cairn.1",
        "share/man/man1/cairn-server.1",
        "share/man/man1/cairn-gateway-nas.1",
    ];
    for f in files {
        let p = prefix.join(f);
        ensure!(
            p.is_file(),
            "{} not written; install said:\n{out}",
            p.display()
        );
    }
    // The installed binary is this one and runs.
    let version = run_stdout(Command::new(prefix.join("bin/cairn")).arg("--version"))?;
    ensure!(version.starts_with("cairn "), "{version}");

    // The unit runs the installed binary, hardened, with the environment
    // file; systemd-analyze finds nothing to say (its Documentation= man
    // pages are the installed ones).
    let unit_path = prefix.join("lib/systemd/system/cairn.service");
    let unit = std::fs::read_to_string(&unit_path)?;
    let exec = format!("ExecStart={prefix_s}/bin/cairn server $CAIRN_DRIVES");
    for want in [
        exec.as_str(),
        "EnvironmentFile=/etc/cairn/cairn.env",
        "User=cairn",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "LimitNOFILE=",
        "Restart=on-failure",
    ] {
        ensure!(unit.contains(want), "the unit lacks {want}:\n{unit}");
    }
    let verify = run(Command::new(require_tool("systemd-analyze")?)
        .arg("verify")
        .arg(&unit_path)
        .env("MANPATH", prefix.join("share/man"))
        .env("SYSTEMD_LOG_COLOR", "0"))?;
    let said = String::from_utf8_lossy(&verify.stderr);
    ensure!(said.trim().is_empty(), "systemd-analyze verify: {said}");

    // The environment file names variables the server reads, and sets no
    // password (the service refuses to start until one is set).
    let env = std::fs::read_to_string(prefix.join("share/cairn/cairn.env"))?;
    for want in [
        "CAIRN_ROOT_USER=",
        "CAIRN_ROOT_PASSWORD=\n",
        "CAIRN_DRIVES=",
        "CAIRN_ADDRESS=",
    ] {
        ensure!(env.contains(want), "the env file lacks {want:?}");
    }
    let help = cairn(&["server", "--help"])?;
    for line in env.lines() {
        let var = line.trim_start_matches('#');
        let Some((name, _)) = var.split_once('=') else {
            continue;
        };
        if !name.starts_with("CAIRN_")
            || [
                "CAIRN_ROOT_USER",
                "CAIRN_ROOT_PASSWORD",
                "CAIRN_DRIVES",
                "CAIRN_LOG",
            ]
            .contains(&name)
        {
            continue;
        }
        ensure!(
            help.contains(&format!("env: {name}=")) || help.contains(&format!("env: {name}]")),
            "the env file names {name}, which `cairn server` does not read"
        );
    }
    let man = render(&prefix.join("share/man/man1/cairn-server.1"))?;
    ensure!(man.contains("--address"), "{man}");
    Ok(())
}
