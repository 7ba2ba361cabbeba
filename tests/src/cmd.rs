//! Running external commands: fail loudly, with their output.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// Finds `name` in PATH, or fails: a test whose tool is missing must fail,
/// never skip (scripts/test installs the tools).
pub fn require_tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("required tool `{name}` is not installed (not in PATH); scripts/test installs it")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn tail(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(40);
    lines[from..].join("\n")
}

/// Runs the command to completion; returns its output whatever the status.
pub fn run_status(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))
}

/// Runs the command; fails with its status, stdout and stderr unless it
/// exits 0.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = run_status(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(cmd),
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs the command and returns its stdout as a string (fails unless exit 0).
pub fn run_stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
