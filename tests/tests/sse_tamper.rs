//! Tampering with encrypted objects on disk, end to end: a one-drive
//! server keeps each object as one shard, so a test can rewrite the
//! ciphertext and re-frame it with a valid bitrot hash, which leaves only
//! the encryption to notice. Every tampered read must fail; none may
//! return bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_core::bitrot::{HASH_LEN, hash};
use cairn_core::meta::ObjectMeta;
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, StartOpts, bucket_name, err_code, err_status};

/// A sealed package of the default ciphers (AES-256-GCM and
/// ChaCha20-Poly1305 alike): 64 KiB of data and a 16-byte tag.
const SEALED: usize = 64 * 1024 + 16;

async fn server() -> Result<Server> {
    let mut opts = StartOpts::drives(1);
    opts.env = vec![(
        "CAIRN_KMS_SECRET_KEY".into(),
        format!("cairn-default:{}", B64.encode([0x33u8; 32])),
    )];
    Server::start(opts).await
}

fn object_dir(s: &Server, b: &str, k: &str) -> PathBuf {
    s.drives()[0].join(b).join(k)
}

fn part_file(dir: &Path) -> Result<PathBuf> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            return Ok(p.join("part.1"));
        }
    }
    bail!("no data dir under {}", dir.display())
}

/// The one frame of a one-block, one-shard part: `(hash, data)`.
fn read_shard(p: &Path) -> Result<Vec<u8>> {
    let f = std::fs::read(p).with_context(|| p.display().to_string())?;
    ensure!(
        f.len() > HASH_LEN && hash(&f[HASH_LEN..]) == f[..HASH_LEN],
        "unexpected shard layout in {}",
        p.display()
    );
    Ok(f[HASH_LEN..].to_vec())
}

fn write_shard(p: &Path, data: &[u8]) -> Result<()> {
    let mut out = hash(data).to_vec();
    out.extend_from_slice(data);
    std::fs::write(p, out)?;
    Ok(())
}

/// GETs the object: Ok(bytes) only if the whole body arrived.
async fn fetch(c: &Client, b: &str, k: &str) -> Result<Vec<u8>, String> {
    let r = c
        .get_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .map_err(|e| format!("HTTP {:?} {}", err_status(&e), err_code(&e)))?;
    r.body
        .collect()
        .await
        .map(|b| b.into_bytes().to_vec())
        .map_err(|e| format!("body: {e}"))
}

async fn put(c: &Client, b: &str, k: &str, data: &[u8]) -> Result<()> {
    c.put_object()
        .bucket(b)
        .key(k)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_packages_and_sealed_keys_never_read() -> Result<()> {
    let s = server().await?;
    let c = s.s3();
    let b = bucket_name("tamper");
    c.create_bucket().bucket(&b).send().await?;
    // three whole packages and a partial one; above the inline limit
    let data = random_bytes(3 * 64 * 1024 + 5000, 7);

    type Tamper = fn(&mut Vec<u8>);
    let cases: [(&str, Tamper); 5] = [
        ("a flipped byte in the first package", |d| d[10] ^= 1),
        ("a flipped byte in the third package", |d| {
            d[2 * SEALED + 7] ^= 0x80
        }),
        ("a flipped tag byte of the last package", |d| {
            let n = d.len();
            d[n - 1] ^= 1
        }),
        ("packages 1 and 2 swapped", |d| {
            let (a, rest) = d.split_at_mut(SEALED);
            a.swap_with_slice(&mut rest[..SEALED]);
        }),
        ("packages 2 and 3 swapped", |d| {
            let (a, rest) = d[SEALED..].split_at_mut(SEALED);
            a.swap_with_slice(&mut rest[..SEALED]);
        }),
    ];
    for (i, (what, tamper)) in cases.iter().enumerate() {
        let k = format!("obj{i}");
        put(&c, &b, &k, &data).await?;
        ensure!(
            fetch(&c, &b, &k).await.as_deref() == Ok(&data[..]),
            "{what}: clean read"
        );
        let p = part_file(&object_dir(&s, &b, &k))?;
        let mut shard = read_shard(&p)?;
        tamper(&mut shard);
        write_shard(&p, &shard)?;
        match fetch(&c, &b, &k).await {
            Ok(got) => bail!(
                "{what}: the read returned {} bytes (same as stored: {})",
                got.len(),
                got == data
            ),
            Err(e) => eprintln!("{what}: refused ({e})"),
        }
    }

    // Truncation: drop the last package and claim the shorter size in
    // cairn.meta, keeping every checksum valid. The new last package
    // was not sealed as the last one, so it must not open.
    let k = "truncated";
    put(&c, &b, k, &data).await?;
    let dir = object_dir(&s, &b, k);
    let p = part_file(&dir)?;
    let shard = read_shard(&p)?;
    write_shard(&p, &shard[..3 * SEALED])?;
    let meta_path = dir.join("cairn.meta");
    let mut m = ObjectMeta::decode(&std::fs::read(&meta_path)?, true)?;
    let v = &mut m.versions[0];
    v.size = 3 * 64 * 1024;
    v.parts[0].size = v.size;
    std::fs::write(&meta_path, m.encode()?)?;
    if let Ok(got) = fetch(&c, &b, k).await {
        bail!("truncated object read back {} bytes", got.len());
    }

    // The sealed object key altered: a clear server error, no bytes.
    let k = "sealed-key";
    put(&c, &b, k, &data).await?;
    let meta_path = object_dir(&s, &b, k).join("cairn.meta");
    let mut m = ObjectMeta::decode(&std::fs::read(&meta_path)?, true)?;
    let sse = m.versions[0]
        .sse
        .as_mut()
        .context("object is not encrypted")?;
    let mut raw = B64.decode(&sse.sealed_key)?;
    raw[15] ^= 4;
    sse.sealed_key = B64.encode(raw);
    std::fs::write(&meta_path, m.encode()?)?;
    let r = c.get_object().bucket(&b).key(k).send().await;
    match r {
        Ok(_) => bail!("a GET with an altered sealed key succeeded"),
        Err(e) => ensure!(
            err_status(&e) == Some(500) && err_code(&e) == "InternalError",
            "altered sealed key: HTTP {:?} {}",
            err_status(&e),
            err_code(&e)
        ),
    }
    // the data of the untouched objects is still there
    put(&c, &b, "fine", &data).await?;
    ensure!(fetch(&c, &b, "fine").await.as_deref() == Ok(&data[..]));
    Ok(())
}
