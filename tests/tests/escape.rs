//! No request reaches outside its bucket (issue 15). An attacker who may
//! list one bucket sends every listing call with prefixes and paging
//! parameters that name paths (`/`, `//`, `../`, absolute paths, reserved
//! names, NUL): each answers an empty listing or an S3 error, and nothing
//! of another bucket, of the drives' own folders or of the host shows. The
//! same against the NAS gateway, and NFS LOOKUP/CREATE/RENAME with such
//! names from a raw NFS client.
//!
//! Requests go raw (aws-sigv4 signed, no client-side normalisation) so the
//! strings reach the server exactly as written.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use cairn_tests::nfs_server::Nfs;
use cairn_tests::raw::{self, encode_query, xml_tag, xml_tags};
use cairn_tests::{Server, StartOpts, bucket_name};
use nfs3_client::nfs3_types::nfs3::{
    LOOKUP3args, Nfs3Result, RENAME3args, diropargs3, nfs_fh3, nfsstat3,
};

/// Keys of the attacker's bucket.
const OWN: &[&str] = &["a/b", "a/c", "keep", "up"];

/// What the attacker's bucket may show, and the strings that would mean
/// the listing reached outside it.
struct Scene {
    probe: String,
    secret: String,
    /// Absolute folders of this deployment (drives, share).
    abs: Vec<String>,
}

impl Scene {
    /// The hostile values for prefixes and paging parameters.
    fn hostile(&self) -> Vec<String> {
        let s = &self.secret;
        let p = &self.probe;
        let mut v: Vec<String> = [
            "/",
            "//",
            "../",
            "..",
            "..%2F",
            "./",
            ".",
            "/etc/",
            "/etc/passwd",
            "../../../../../../../../",
            ".cairn.sys/",
            ".cairn.gateway/",
            "cairn.meta/",
            "a/cairn.data.x/",
            "a/./",
            "a//",
            "a\0/",
            "\0",
            "a/../",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(format!("../{s}/"));
        v.push(format!("../{s}"));
        v.push(format!("{p}/../{s}/"));
        v.push(format!("/../{s}/"));
        for a in &self.abs {
            v.push(format!("{a}/"));
            v.push(format!("{a}/{s}/"));
        }
        v
    }
}

/// Checks one listing answer: an S3 error (4xx with a code), or a listing
/// whose keys are the bucket's own; with `empty`, no key or common prefix
/// at all.
fn check(what: &str, r: &raw::Response, empty: bool) -> Result<()> {
    let body = r.text();
    // a backend without versions (the NAS gateway) says so
    let unsupported = r.status == 501 && r.code().as_deref() == Some("NotImplemented");
    if r.status >= 500 && !unsupported {
        bail!("{what}: server error {}", r.describe());
    }
    if r.status != 200 {
        ensure!(
            ((400..500).contains(&r.status) || unsupported) && r.code().is_some(),
            "{what}: {} is neither a listing nor an S3 error",
            r.describe()
        );
        return Ok(());
    }
    let own: BTreeSet<&str> = OWN.iter().copied().collect();
    let keys = xml_tags(&body, "Key");
    let prefixes: Vec<String> = xml_tags(&body, "CommonPrefixes")
        .iter()
        .filter_map(|c| xml_tag(c, "Prefix"))
        .collect();
    for k in &keys {
        ensure!(own.contains(k.as_str()), "{what}: listed {k:?}\n{body}");
    }
    for p in &prefixes {
        ensure!(
            OWN.iter().any(|k| k.starts_with(p.as_str())),
            "{what}: listed the common prefix {p:?}\n{body}"
        );
    }
    if empty {
        ensure!(
            keys.is_empty() && prefixes.is_empty(),
            "{what}: expected an empty listing\n{body}"
        );
    }
    ensure!(
        !body.contains("hidden"),
        "{what}: names a hidden object\n{body}"
    );
    Ok(())
}

/// Every listing call and paging parameter with every hostile value.
async fn probe_listings(s: &Server, scene: &Scene) -> Result<()> {
    let c = s.s3();
    let p = &scene.probe;
    let up = c
        .create_multipart_upload()
        .bucket(p)
        .key("up")
        .send()
        .await?
        .upload_id()
        .context("upload id")?
        .to_owned();
    let rc = s.raw();
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let mut asked = 0;
    for v in scene.hostile() {
        let q = encode_query(&v);
        // (query, the answer must be empty)
        let mut cases: Vec<(String, bool)> = Vec::new();
        for d in ["", "&delimiter=%2F", "&delimiter=d"] {
            cases.push((format!("prefix={q}{d}"), true));
            cases.push((format!("list-type=2&prefix={q}{d}"), true));
            cases.push((format!("versions&prefix={q}{d}"), true));
            cases.push((format!("marker={q}{d}"), false));
            cases.push((format!("list-type=2&start-after={q}{d}"), false));
            cases.push((format!("versions&key-marker={q}{d}"), false));
        }
        cases.push((format!("uploads&prefix={q}"), true));
        cases.push((format!("uploads&prefix={q}&delimiter=%2F"), true));
        cases.push((format!("uploads&key-marker={q}"), false));
        cases.push((format!("uploads&key-marker=up&upload-id-marker={q}"), false));
        cases.push((
            format!("versions&key-marker=a%2Fb&version-id-marker={q}"),
            false,
        ));
        cases.push((
            format!("list-type=2&continuation-token={}", encode_query(&b64(&v))),
            false,
        ));
        cases.push((format!("list-type=2&continuation-token={q}"), false));
        for (query, empty) in cases {
            let target = format!("/{p}?{query}");
            let r = rc.send("GET", &target, &[], b"").await?;
            check(&format!("GET {target:?}"), &r, empty)?;
            asked += 1;
        }
        // an upload id is never a path
        let target = format!("/{p}/up?uploadId={q}");
        let r = rc.send("GET", &target, &[], b"").await?;
        ensure!(
            r.status == 404 && r.code().as_deref() == Some("NoSuchUpload"),
            "GET {target:?}: {}",
            r.describe()
        );
        let target = format!("/{p}/up?uploadId={up}&part-number-marker={q}");
        let r = rc.send("GET", &target, &[], b"").await?;
        check(&format!("GET {target:?}"), &r, false)?;
        asked += 2;
    }
    // the listings still work, and show the bucket's own keys
    let all = c.list_objects_v2().bucket(p).send().await?;
    let keys: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    ensure!(keys == ["a/b", "a/c", "keep"], "{keys:?}");
    eprintln!("{asked} hostile listing requests answered");
    Ok(())
}

async fn fill(s: &Server, probe: &str, secret: &str) -> Result<()> {
    let c = s.s3();
    for b in [probe, secret] {
        c.create_bucket().bucket(b).send().await?;
    }
    for k in ["a/b", "a/c", "keep"] {
        c.put_object()
            .bucket(probe)
            .key(k)
            .body(ByteStream::from_static(b"mine"))
            .send()
            .await?;
    }
    for k in ["hidden.txt", "d/hidden"] {
        c.put_object()
            .bucket(secret)
            .key(k)
            .body(ByteStream::from_static(b"not yours"))
            .send()
            .await?;
    }
    Ok(())
}

fn abs(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_never_leave_the_bucket() -> Result<()> {
    let s = Server::start_default().await?;
    let (probe, secret) = (bucket_name("probe"), bucket_name("secret"));
    fill(&s, &probe, &secret).await?;
    // Objects outside the bucket that an escaped walk would list: at the
    // top of every drive and beside the drives (another deployment).
    for (i, d) in s.drives().iter().enumerate() {
        let obj = d.join(&secret).join("hidden.txt");
        cairn_tests::data::copy_tree(&obj, &d.join("leak").join("hidden.txt"))?;
        cairn_tests::data::copy_tree(&obj, &s.dir().join(format!("other{i}")).join("hidden"))?;
    }
    let mut scene = Scene {
        probe,
        secret,
        abs: vec![abs(s.dir())],
    };
    scene.abs.extend(s.drives().iter().map(|d| abs(d)));
    probe_listings(&s, &scene).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_listings_never_leave_the_bucket() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("cairn-nas-").tempdir()?;
    let share = dir.path().join("share");
    std::fs::create_dir(&share)?;
    // a file beside the share, and one in the gateway's hidden folder
    std::fs::write(dir.path().join("hidden-host.txt"), b"host")?;
    let s = Server::start(StartOpts::gateway(["nas".to_string(), abs(&share)])).await?;
    let (probe, secret) = (bucket_name("probe"), bucket_name("secret"));
    fill(&s, &probe, &secret).await?;
    std::fs::write(share.join(".cairn.gateway").join("hidden-sys"), b"sys")?;
    let scene = Scene {
        probe,
        secret,
        abs: vec![abs(dir.path()), abs(&share)],
    };
    probe_listings(&s, &scene).await
}

async fn lookup(
    c: &mut cairn_tests::nfs3::Conn,
    dir: &nfs_fh3,
    name: &[u8],
) -> Result<nfs_fh3, nfsstat3> {
    let args = LOOKUP3args {
        what: diropargs3 {
            dir: dir.clone(),
            name: name.into(),
        },
    };
    match c.lookup(&args).await {
        Ok(Nfs3Result::Ok(ok)) => Ok(ok.object),
        Ok(Nfs3Result::Err((st, _))) => Err(st),
        Err(_) => Err(nfsstat3::NFS3ERR_SERVERFAULT),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfs_names_never_leave_the_export() -> Result<()> {
    use cairn_tests::nfs3;
    let n = Nfs::start(&[]).await?;
    let (probe, secret) = (bucket_name("probe"), bucket_name("secret"));
    fill(&n.server, &probe, &secret).await?;
    let mut c = nfs3::mount(n.port, &n.export).await?;
    let root = c.root_nfs_fh3();
    let dir = nfs3::lookup(&mut c, &probe).await?;
    // `..` is the parent inside the export; at the top it stays there
    let up = lookup(&mut c, &dir, b"..")
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (names, _) = nfs3::readdir_all(&mut c, &up, 65536).await?;
    ensure!(
        names.contains(&probe) && names.contains(&secret),
        "'..' of the bucket: {names:?}"
    );
    let top = lookup(&mut c, &root, b"..")
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (names, _) = nfs3::readdir_all(&mut c, &top, 65536).await?;
    ensure!(names.contains(&probe), "'..' of the export root: {names:?}");
    ensure!(
        !names.iter().any(|n| n.starts_with('.') && n.len() > 2),
        "{names:?}"
    );

    let hostile: Vec<Vec<u8>> = [
        "/".to_string(),
        "/etc".to_string(),
        "/etc/passwd".to_string(),
        "a/b".to_string(),
        format!("../{secret}"),
        format!("../{secret}/hidden.txt"),
        "../../..".to_string(),
        String::new(),
        "x\0y".to_string(),
        "cairn.meta".to_string(),
        "cairn.data.1".to_string(),
        "n".repeat(300),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    for name in &hostile {
        let shown = String::from_utf8_lossy(name);
        if let Ok(fh) = lookup(&mut c, &dir, name).await {
            bail!("LOOKUP {shown:?} in the bucket found {fh:?}");
        }
        let r = nfs3::create(&mut c, &dir, &String::from_utf8_lossy(name)).await;
        ensure!(r.is_err(), "CREATE {shown:?} in the bucket succeeded");
    }
    // RENAME of a real file to each name fails and leaves the file
    let f = nfs3::create(&mut c, &dir, "f").await?;
    let _ = f;
    for name in &hostile {
        let shown = String::from_utf8_lossy(name);
        let args = RENAME3args {
            from: diropargs3 {
                dir: dir.clone(),
                name: b"f".as_slice().into(),
            },
            to: diropargs3 {
                dir: dir.clone(),
                name: name.as_slice().into(),
            },
        };
        match c.rename(&args).await? {
            Nfs3Result::Ok(_) => bail!("RENAME f -> {shown:?} succeeded"),
            Nfs3Result::Err((st, _)) => ensure!(
                st != nfsstat3::NFS3ERR_SERVERFAULT && st != nfsstat3::NFS3ERR_IO,
                "RENAME f -> {shown:?}: {st:?}"
            ),
        }
    }
    // what the other fronts see: the bucket holds its keys and `f`, the
    // other bucket is untouched
    let s3 = n.server.s3();
    let keys = |o: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output| -> Vec<String> {
        o.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    };
    let mine = s3.list_objects_v2().bucket(&probe).send().await?;
    ensure!(
        keys(&mine) == ["a/b", "a/c", "f", "keep"],
        "{:?}",
        keys(&mine)
    );
    let theirs = s3.list_objects_v2().bucket(&secret).send().await?;
    ensure!(
        keys(&theirs) == ["d/hidden", "hidden.txt"],
        "{:?}",
        keys(&theirs)
    );
    Ok(())
}
