//! The nfs3_client crate as a test client for the procedures libnfs-utils
//! and nfs-rs never send the way a test needs: plain READDIR (both list
//! with READDIRPLUS), WRITE/COMMIT with a chosen stability, MKNOD, and
//! calls as a chosen AUTH_SYS uid.

use anyhow::{Context as _, Result, bail};
use nfs3_client::nfs3_types::nfs3::{
    COMMIT3args, CREATE3args, GETATTR3args, LOOKUP3args, MKDIR3args, MKNOD3args, Nfs3Option,
    Nfs3Result, READ3args, READDIR3args, READDIRPLUS3args, SETATTR3args, WRITE3args, cookieverf3,
    createhow3, diropargs3, fattr3, mknoddata3, nfs_fh3, nfsstat3, sattr3, stable_how, writeverf3,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};

pub type Conn = Nfs3Connection<TokioIo<tokio::net::TcpStream>>;

/// Mounts `/<export>` on 127.0.0.1, MOUNT and NFS both on `port`.
pub async fn mount(port: u16, export: &str) -> Result<Conn> {
    Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", format!("/{export}"))
        .connect_from_privileged_port(false)
        .mount_port(port)
        .nfs3_port(port)
        .mount()
        .await
        .context("mounting with nfs3_client")
}

/// The handle of `path` (`/`-separated, from the export root).
pub async fn lookup(c: &mut Conn, path: &str) -> Result<nfs_fh3> {
    let mut fh = c.root_nfs_fh3();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        let args = LOOKUP3args {
            what: diropargs3 {
                dir: fh,
                name: name.as_bytes().into(),
            },
        };
        fh = match c.lookup(&args).await? {
            Nfs3Result::Ok(ok) => ok.object,
            Nfs3Result::Err((s, _)) => bail!("LOOKUP {name}: {s:?}"),
        };
    }
    Ok(fh)
}

/// Every name in `dir`, listed with plain READDIR replies of at most
/// `count` bytes, each request resuming at the last cookie received.
/// Returns the names and the number of replies.
pub async fn readdir_all(c: &mut Conn, dir: &nfs_fh3, count: u32) -> Result<(Vec<String>, usize)> {
    let mut names = Vec::new();
    // a server that ignores the cookie starts over: stop at the repeat
    let mut seen = std::collections::HashSet::new();
    let (mut cookie, mut verf, mut replies) = (0, cookieverf3::default(), 0);
    loop {
        let args = READDIR3args {
            dir: dir.clone(),
            cookie,
            cookieverf: verf,
            count,
        };
        let ok = match c.readdir(&args).await? {
            Nfs3Result::Ok(ok) => ok,
            Nfs3Result::Err((s, _)) => bail!("READDIR at cookie {cookie}: {s:?}"),
        };
        replies += 1;
        verf = ok.cookieverf;
        for e in ok.reply.entries.0 {
            if !seen.insert(e.cookie) {
                bail!(
                    "READDIR repeated cookie {} after {} names",
                    e.cookie,
                    names.len()
                );
            }
            cookie = e.cookie;
            names.push(String::from_utf8_lossy(e.name.as_ref()).into_owned());
        }
        if ok.reply.eof {
            return Ok((names, replies));
        }
    }
}

/// Creates `name` in `dir` (UNCHECKED: an existing file is kept) and
/// returns its handle.
pub async fn create(c: &mut Conn, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3> {
    let args = CREATE3args {
        where_: diropargs3 {
            dir: dir.clone(),
            name: name.as_bytes().into(),
        },
        how: createhow3::UNCHECKED(sattr3::default()),
    };
    match c.create(&args).await? {
        Nfs3Result::Ok(ok) => match ok.obj {
            Nfs3Option::Some(fh) => Ok(fh),
            Nfs3Option::None => lookup_in(c, dir, name).await,
        },
        Nfs3Result::Err((s, _)) => bail!("CREATE {name}: {s:?}"),
    }
}

async fn lookup_in(c: &mut Conn, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3> {
    let args = LOOKUP3args {
        what: diropargs3 {
            dir: dir.clone(),
            name: name.as_bytes().into(),
        },
    };
    match c.lookup(&args).await? {
        Nfs3Result::Ok(ok) => Ok(ok.object),
        Nfs3Result::Err((s, _)) => bail!("LOOKUP {name}: {s:?}"),
    }
}

/// One WRITE of `data` at `offset` with the stability asked for; returns
/// the stability the server answered with and its write verifier.
pub async fn write(
    c: &mut Conn,
    fh: &nfs_fh3,
    offset: u64,
    data: &[u8],
    stable: stable_how,
) -> Result<(stable_how, writeverf3)> {
    let args = WRITE3args {
        file: fh.clone(),
        offset,
        count: u32::try_from(data.len())?,
        stable,
        data: Opaque::borrowed(data),
    };
    match c.write(&args).await? {
        Nfs3Result::Ok(ok) => {
            anyhow::ensure!(
                ok.count as usize == data.len(),
                "WRITE took {} of {} bytes",
                ok.count,
                data.len()
            );
            Ok((ok.committed, ok.verf))
        }
        Nfs3Result::Err((s, _)) => bail!("WRITE at {offset}: {s:?}"),
    }
}

/// COMMIT of the whole file; returns the server's write verifier.
pub async fn commit(c: &mut Conn, fh: &nfs_fh3) -> Result<writeverf3> {
    let args = COMMIT3args {
        file: fh.clone(),
        offset: 0,
        count: 0,
    };
    match c.commit(&args).await? {
        Nfs3Result::Ok(ok) => Ok(ok.verf),
        Nfs3Result::Err((s, _)) => bail!("COMMIT: {s:?}"),
    }
}

/// SETATTR of the size alone (truncate down or up).
pub async fn set_size(c: &mut Conn, fh: &nfs_fh3, size: u64) -> Result<()> {
    let args = SETATTR3args {
        object: fh.clone(),
        new_attributes: sattr3 {
            size: Nfs3Option::Some(size),
            ..sattr3::default()
        },
        guard: Nfs3Option::None,
    };
    match c.setattr(&args).await? {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => bail!("SETATTR size {size}: {s:?}"),
    }
}

/// One READ of at most `count` bytes at `offset`: the bytes and EOF.
pub async fn read(c: &mut Conn, fh: &nfs_fh3, offset: u64, count: u32) -> Result<(Vec<u8>, bool)> {
    let args = READ3args {
        file: fh.clone(),
        offset,
        count,
    };
    match c.read(&args).await? {
        Nfs3Result::Ok(ok) => Ok((ok.data.as_ref().to_vec(), ok.eof)),
        Nfs3Result::Err((s, _)) => bail!("READ at {offset}: {s:?}"),
    }
}

/// Mounts like `mount`, sending AUTH_SYS with `uid`/`gid` (and no
/// supplementary groups) on every call.
pub async fn mount_as(port: u16, export: &str, uid: u32, gid: u32) -> Result<Conn> {
    use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
    let cred = opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::owned(b"cairn-test".to_vec()),
        uid,
        gid,
        gids: vec![gid],
    });
    Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", format!("/{export}"))
        .connect_from_privileged_port(false)
        .mount_port(port)
        .nfs3_port(port)
        .credential(cred)
        .mount()
        .await
        .with_context(|| format!("mounting with nfs3_client as {uid}:{gid}"))
}

/// MKNOD of `what` as `name` in `dir`: the new file's attributes, or the
/// server's status.
pub async fn mknod(
    c: &mut Conn,
    dir: &nfs_fh3,
    name: &str,
    what: mknoddata3,
) -> Result<std::result::Result<fattr3, nfsstat3>> {
    let args = MKNOD3args {
        where_: diropargs3 {
            dir: dir.clone(),
            name: name.as_bytes().into(),
        },
        what,
    };
    Ok(match c.mknod(&args).await? {
        Nfs3Result::Ok(ok) => match ok.obj_attributes {
            Nfs3Option::Some(a) => Ok(a),
            Nfs3Option::None => bail!("MKNOD {name}: no attributes in the reply"),
        },
        Nfs3Result::Err((s, _)) => Err(s),
    })
}

/// GETATTR.
pub async fn getattr(c: &mut Conn, fh: &nfs_fh3) -> Result<fattr3> {
    match c.getattr(&GETATTR3args { object: fh.clone() }).await? {
        Nfs3Result::Ok(ok) => Ok(ok.obj_attributes),
        Nfs3Result::Err((s, _)) => bail!("GETATTR: {s:?}"),
    }
}

/// Every entry of `dir` with the attributes READDIRPLUS sent for it.
pub async fn readdirplus_all(c: &mut Conn, dir: &nfs_fh3) -> Result<Vec<(String, Option<fattr3>)>> {
    let mut out = Vec::new();
    let (mut cookie, mut verf) = (0, cookieverf3::default());
    loop {
        let args = READDIRPLUS3args {
            dir: dir.clone(),
            cookie,
            cookieverf: verf,
            dircount: 4096,
            maxcount: 32768,
        };
        let ok = match c.readdirplus(&args).await? {
            Nfs3Result::Ok(ok) => ok,
            Nfs3Result::Err((s, _)) => bail!("READDIRPLUS at cookie {cookie}: {s:?}"),
        };
        verf = ok.cookieverf;
        for e in ok.reply.entries.0 {
            cookie = e.cookie;
            let attr = match e.name_attributes {
                Nfs3Option::Some(a) => Some(a),
                Nfs3Option::None => None,
            };
            out.push((String::from_utf8_lossy(e.name.as_ref()).into_owned(), attr));
        }
        if ok.reply.eof {
            return Ok(out);
        }
    }
}

/// MKDIR `name` in `dir` (no attributes): its handle.
pub async fn mkdir(c: &mut Conn, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3> {
    let args = MKDIR3args {
        where_: diropargs3 {
            dir: dir.clone(),
            name: name.as_bytes().into(),
        },
        attributes: sattr3::default(),
    };
    match c.mkdir(&args).await? {
        Nfs3Result::Ok(ok) => match ok.obj {
            Nfs3Option::Some(fh) => Ok(fh),
            Nfs3Option::None => lookup_in(c, dir, name).await,
        },
        Nfs3Result::Err((s, _)) => bail!("MKDIR {name}: {s:?}"),
    }
}

/// SETATTR of `attrs`: the new attributes, or the server's status.
pub async fn setattr(
    c: &mut Conn,
    fh: &nfs_fh3,
    attrs: sattr3,
) -> Result<std::result::Result<fattr3, nfsstat3>> {
    let args = SETATTR3args {
        object: fh.clone(),
        new_attributes: attrs,
        guard: Nfs3Option::None,
    };
    Ok(match c.setattr(&args).await? {
        Nfs3Result::Ok(ok) => match ok.obj_wcc.after {
            Nfs3Option::Some(a) => Ok(a),
            Nfs3Option::None => bail!("SETATTR: no attributes in the reply"),
        },
        Nfs3Result::Err((s, _)) => Err(s),
    })
}
