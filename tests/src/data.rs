//! Test data: deterministic pseudo-random bytes, files and folder trees.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use md5::{Digest, Md5};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// `len` pseudo-random bytes from `seed` (same seed, same bytes).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// A source of `len` pseudo-random bytes produced on demand (never held
/// in memory as a whole), with a running MD5 of what it produced.
pub struct Generator {
    rng: StdRng,
    remaining: u64,
    md5: Md5,
}

impl Generator {
    pub fn new(len: u64, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            remaining: len,
            md5: Md5::new(),
        }
    }

    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Fills up to `buf.len()` bytes; returns how many (0 at the end).
    pub fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = (buf.len() as u64).min(self.remaining) as usize;
        self.rng.fill_bytes(&mut buf[..n]);
        self.md5.update(&buf[..n]);
        self.remaining -= n as u64;
        n
    }

    /// MD5 (hex) of everything produced so far.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5.clone().finalize())
    }
}

/// Writes `len` pseudo-random bytes to `path`, streaming; returns the MD5 hex.
pub fn write_random_file(path: &Path, len: u64, seed: u64) -> Result<String> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
    );
    let mut g = Generator::new(len, seed);
    let mut buf = vec![0u8; MIB];
    loop {
        let n = g.fill(&mut buf);
        if n == 0 {
            break;
        }
        f.write_all(&buf[..n])?;
    }
    f.flush()?;
    Ok(g.md5_hex())
}

/// Makes a folder tree with nested folders, an empty file, small and
/// multi-MiB files, and names with spaces and non-ASCII characters.
/// Returns the relative paths of the files.
pub fn write_tree(root: &Path, seed: u64) -> Result<Vec<PathBuf>> {
    let files: &[(&str, usize)] = &[
        ("empty.txt", 0),
        ("one.bin", 1),
        ("small.txt", 1000),
        ("a/b/c/deep.bin", 20 * KIB),
        ("a/sibling.dat", 200 * KIB),
        ("a/b/with space.txt", 3 * KIB),
        ("unicodé/ファイル.txt", 5 * KIB),
        ("big/seven-mib.bin", 7 * MIB + 3),
        ("big/eighteen-mib.bin", 18 * MIB),
        ("x/y/z/1.txt", 10),
        ("x/y/z/2.txt", 20),
        ("x/y/3.txt", 30),
    ];
    let mut out = Vec::new();
    for (i, (rel, len)) in files.iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent"))?;
        std::fs::write(&p, random_bytes(*len, seed + i as u64))?;
        out.push(PathBuf::from(rel));
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("read_dir {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(root, &p, out)?;
        } else {
            out.insert(p.strip_prefix(root)?.to_path_buf(), p);
        }
    }
    Ok(())
}

/// Relative file paths under `root`, sorted.
pub fn list_tree(root: &Path) -> Result<Vec<PathBuf>> {
    let mut m = BTreeMap::new();
    walk(root, root, &mut m)?;
    Ok(m.into_keys().collect())
}

/// Files under the `dirs` (full paths) whose bytes contain `needle`:
/// the "no plaintext on the drives" check of the encryption tests.
pub fn files_holding(dirs: &[PathBuf], needle: &[u8]) -> Result<Vec<PathBuf>> {
    let mut hits = Vec::new();
    for d in dirs {
        for rel in list_tree(d)? {
            let f = d.join(rel);
            let bytes = std::fs::read(&f).with_context(|| format!("read {}", f.display()))?;
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(f);
            }
        }
    }
    Ok(hits)
}

/// Fails unless both trees hold the same files with the same bytes.
pub fn assert_trees_equal(a: &Path, b: &Path) -> Result<()> {
    let mut ma = BTreeMap::new();
    let mut mb = BTreeMap::new();
    walk(a, a, &mut ma)?;
    walk(b, b, &mut mb)?;
    let ka: Vec<_> = ma.keys().collect();
    let kb: Vec<_> = mb.keys().collect();
    if ka != kb {
        bail!(
            "trees differ in files:\n{} has {ka:?}\n{} has {kb:?}",
            a.display(),
            b.display()
        );
    }
    for (rel, pa) in &ma {
        assert_files_equal(pa, &mb[rel])?;
    }
    Ok(())
}

/// Fails unless both files hold the same bytes (compared in chunks).
pub fn assert_files_equal(a: &Path, b: &Path) -> Result<()> {
    use std::io::Read;
    let mut fa = std::fs::File::open(a).with_context(|| format!("open {}", a.display()))?;
    let mut fb = std::fs::File::open(b).with_context(|| format!("open {}", b.display()))?;
    let la = fa.metadata()?.len();
    let lb = fb.metadata()?.len();
    if la != lb {
        bail!(
            "{} is {la} bytes but {} is {lb} bytes",
            a.display(),
            b.display()
        );
    }
    let mut ba = vec![0u8; MIB];
    let mut bb = vec![0u8; MIB];
    let mut off = 0u64;
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(());
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            let i = ba[..n]
                .iter()
                .zip(&bb[..n])
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            bail!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                off + i as u64
            );
        }
        off += n as u64;
    }
}

/// Compares two byte slices with a short, useful message.
pub fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Result<()> {
    if got.len() != want.len() {
        bail!(
            "{what}: got {} bytes (md5 {}), want {} bytes (md5 {})",
            got.len(),
            md5_hex(got),
            want.len(),
            md5_hex(want)
        );
    }
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        bail!(
            "{what}: {} bytes as expected but content differs from byte {i}",
            got.len()
        );
    }
    Ok(())
}

/// Copies the folder `from` (files and subfolders) to `to`.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), dst)?;
        }
    }
    Ok(())
}
