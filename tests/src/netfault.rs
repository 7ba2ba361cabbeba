//! Network partitions between loopback addresses, made with nftables
//! (`nft`, from Debian's `nftables`; netem is missing in this kernel).
//! A [`Partition`] is one nftables table of its own that drops every TCP
//! packet between two groups of addresses on the given ports, both
//! directions; dropping it (or [`Partition::heal`]) deletes the table.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::random_token;

/// Traffic cut between two groups of addresses until dropped.
pub struct Partition {
    table: Option<String>,
}

fn set(items: &[String]) -> String {
    format!("{{ {} }}", items.join(", "))
}

fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("nft (Debian package nftables) is needed for partition tests")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Partition {
    /// Drops TCP between the addresses of `a` and of `b` to or from any of
    /// `ports` (a connection's other end may use any port).
    pub fn new(a: &[String], b: &[String], ports: &[u16]) -> Result<Partition> {
        let table = format!("cairn_test_{}", random_token(8).to_lowercase());
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let (a, b, p) = (set(a), set(b), set(&ports));
        let mut rules = String::new();
        for (from, to) in [(&a, &b), (&b, &a)] {
            for dir in ["dport", "sport"] {
                rules.push_str(&format!(
                    "    ip saddr {from} ip daddr {to} tcp {dir} {p} drop\n"
                ));
            }
        }
        nft(&format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n{rules}  }}\n}}\n"
        ))?;
        Ok(Partition { table: Some(table) })
    }

    /// Lets the traffic through again.
    pub fn heal(&mut self) -> Result<()> {
        if let Some(t) = self.table.take() {
            nft(&format!("delete table inet {t}\n"))?;
        }
        Ok(())
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if let Err(e) = self.heal() {
            eprintln!("could not remove the partition: {e:#}");
        }
    }
}
