use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use clap::Parser as _;

use super::*;
use crate::{Cli, Command};

fn rw(p: &Path) -> Rule {
    Rule {
        path: p.canonicalize().unwrap(),
        grant: Grant::ReadWrite,
    }
}

/// The rules every command gets after its own: TLS roots named in the
/// environment, then the system's.
fn common() -> Vec<Rule> {
    let mut out = Vec::new();
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty())
            && Path::new(&v).exists()
        {
            out.push(Rule {
                path: real(Path::new(&v)),
                grant: Grant::ReadOnly,
            });
        }
    }
    out.extend(system_rules());
    out
}

fn plan_of(args: &[&str]) -> Plan {
    let cli = Cli::try_parse_from(args).unwrap();
    match &cli.command {
        Command::Server(a) => Plan::server(a).unwrap(),
        Command::Gateway { backend } => Plan::gateway(backend),
        _ => panic!("not a serving command"),
    }
}

#[test]
fn server_rules_are_the_drives_folder_key_folder_spool_and_nfs_state() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir(t.join("keys")).unwrap();
    let drives = format!("{}/srv/d{{1...4}}", t.display());
    let plan = plan_of(&[
        "cairn",
        "server",
        &drives,
        "--kms-key-file",
        &format!("{}/keys/k.json", t.display()),
        "--mount",
        &format!("{}/mnt", t.display()),
        "--mount-spool",
        &format!("{}/spool", t.display()),
        "--nfs",
        "127.0.0.1:2049",
        "--nfs-state",
        &format!("{}/nfs-state", t.display()),
    ]);
    assert!(plan.mount && !plan.off);
    let rules = plan.resolve();
    // made before the restriction: the drives, the spool, the NFS state
    for d in 1..=4 {
        assert!(t.join(format!("srv/d{d}")).is_dir());
    }
    let mut want = vec![
        rw(&t.join("srv")),
        Rule {
            path: t.join("keys").canonicalize().unwrap(),
            grant: Grant::KeyFolder,
        },
        rw(&t.join("spool")),
        rw(&t.join("nfs-state")),
    ];
    want.extend(common());
    assert_eq!(rules, want);
    // neither the mount point nor the temp folder itself is granted
    assert!(!rules.iter().any(|r| r.path == t.join("mnt")));
    assert!(!rules.iter().any(|r| r.path == t.canonicalize().unwrap()));
}

#[test]
fn default_nfs_state_on_the_first_drive_needs_no_rule_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let d1 = t.join("a/d1");
    let d2 = t.join("b/d2");
    let plan = plan_of(&[
        "cairn",
        "server",
        d1.to_str().unwrap(),
        d2.to_str().unwrap(),
        "--nfs",
        "127.0.0.1:2049",
    ]);
    let rules = plan.resolve();
    let mut want = vec![rw(&t.join("a")), rw(&t.join("b"))];
    want.extend(common());
    assert_eq!(rules, want);
    // nothing was made on the drive before the store formats it
    assert_eq!(std::fs::read_dir(&d1).unwrap().count(), 0);
}

#[test]
fn a_drive_reached_through_a_symlink_grants_the_real_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("disks/d1")).unwrap();
    std::fs::create_dir(t.join("links")).unwrap();
    std::os::unix::fs::symlink(t.join("disks/d1"), t.join("links/d1")).unwrap();
    let plan = plan_of(&["cairn", "server", t.join("links/d1").to_str().unwrap()]);
    let mut want = vec![rw(&t.join("disks"))];
    want.extend(common());
    assert_eq!(plan.resolve(), want);
}

#[test]
fn a_drive_just_below_the_root_is_granted_alone() {
    assert_eq!(drive_grant(Path::new("/data1")), PathBuf::from("/data1"));
    assert_eq!(drive_grant(Path::new("/mnt/disk1")), PathBuf::from("/mnt"));
}

#[test]
fn nas_gateway_rules_are_the_share_only() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    // the NFS state lives in the share: no rule of its own
    let plan = plan_of(&[
        "cairn",
        "gateway",
        "nas",
        share.to_str().unwrap(),
        "--nfs",
        "127.0.0.1:2049",
    ]);
    let mut want = vec![rw(&share)];
    want.extend(common());
    assert_eq!(plan.resolve(), want);
    // a missing share is not made (the gateway refuses to start on it)
    let gone = tmp.path().join("gone");
    let plan = plan_of(&["cairn", "gateway", "nas", gone.to_str().unwrap()]);
    assert_eq!(plan.resolve(), common());
    assert!(!gone.exists());
}

#[test]
fn no_sandbox_flag_turns_it_off() {
    let plan = plan_of(&["cairn", "server", "/nonexistent/d1", "--no-sandbox"]);
    assert!(plan.off);
    let plan = plan_of(&["cairn", "gateway", "nas", "/nonexistent", "--no-sandbox"]);
    assert!(plan.off);
    assert_eq!(State::Off.to_string(), "off (--no-sandbox)");
}

/// The rules enforced for real, on a thread of its own (Landlock binds
/// only the calling thread): files in the granted folder are read and
/// written, the folder beside it and the system folders' files are not
/// written, and a file outside is not even read.
#[test]
fn a_confined_thread_opens_nothing_outside_its_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_owned();
    std::fs::create_dir(t.join("outside")).unwrap();
    std::fs::write(t.join("outside/secret"), b"secret").unwrap();
    let share = t.join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("inside"), b"inside").unwrap();
    std::os::unix::fs::symlink(t.join("outside/secret"), share.join("link")).unwrap();
    let plan = plan_of(&["cairn", "gateway", "nas", share.to_str().unwrap()]);
    let rules = plan.resolve();
    let secret = t.join("outside/secret");
    std::thread::spawn(move || {
        let state = restrict(&rules).unwrap();
        if state == State::Unavailable {
            eprintln!("no Landlock in this kernel: nothing to check");
            return;
        }
        assert!(matches!(state, State::Enforced { full: true, .. }), "{state}");
        assert_eq!(std::fs::read(share.join("inside")).unwrap(), b"inside");
        std::fs::write(share.join("new"), b"x").unwrap();
        std::fs::create_dir(share.join("dir")).unwrap();
        std::fs::rename(share.join("new"), share.join("dir/new")).unwrap();
        std::fs::remove_dir_all(share.join("dir")).unwrap();
        let denied = |r: std::io::Result<Vec<u8>>| {
            matches!(r, Err(e) if e.kind() == ErrorKind::PermissionDenied)
        };
        assert!(denied(std::fs::read(t.join("outside/secret"))));
        // a symlink is judged by where it leads
        assert!(denied(std::fs::read(share.join("link"))));
        assert!(denied(std::fs::read_dir(&t).map(|_| Vec::new())));
        assert!(denied(std::fs::write(t.join("outside/new"), b"x").map(|()| Vec::new())));
        // system folders are read, never written (the tests run as root)
        assert!(std::fs::read("/proc/self/status").is_ok());
        assert!(std::fs::read_dir("/etc").is_ok());
        assert!(denied(
            std::fs::OpenOptions::new()
                .append(true)
                .open("/etc/hostname")
                .map(|_| Vec::new())
        ));
    })
    .join()
    .unwrap();
    // this thread was never confined
    assert_eq!(std::fs::read(secret).unwrap(), b"secret");
}

#[test]
fn the_audit_log_folder_is_granted_for_appending_only() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("logs")).unwrap();
    let log = t.join("logs/audit.log");
    let d = t.join("srv/d1");
    let plan = plan_of(&[
        "cairn",
        "server",
        d.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
    ]);
    let rules = plan.resolve();
    let want = Rule {
        path: t.join("logs").canonicalize().unwrap(),
        grant: Grant::LogFolder,
    };
    assert!(rules.contains(&want), "{rules:?}");
    // stdout needs no rule
    let plan = plan_of(&["cairn", "server", d.to_str().unwrap(), "--audit-log", "-"]);
    assert!(!plan.resolve().iter().any(|r| r.grant == Grant::LogFolder));
}
