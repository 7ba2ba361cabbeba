//! Rename: files with the store's `rename_object`, directories key by key
//! (every key under the old prefix moves; no listing is held whole).

use cairn_api::{ListOptions, ObjectError};
use futures::StreamExt as _;

use crate::Vfs;
use crate::attr::FileKind;
use crate::error::{VfsError, VfsResult};
use crate::inode::Loc;
use crate::names::{bucket, check_name, child_path, key};

/// Keys moved at once while renaming a directory.
const PARALLEL: usize = 8;

impl Vfs {
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        no_replace: bool,
    ) -> VfsResult<()> {
        self.check_writable()?;
        check_name(new_name)?;
        let src = self.lookup(parent, name).await?;
        let (
            Loc::Path {
                bucket: sb,
                path: sp,
            },
            Loc::Path {
                bucket: db,
                path: dp,
            },
        ) = (self.loc(parent)?, self.loc(new_parent)?)
        else {
            return Err(VfsError::NotPermitted("buckets cannot be renamed"));
        };
        if sb != db {
            // across buckets: the caller (mv) falls back to copy + delete
            return Err(VfsError::Io(std::io::Error::from_raw_os_error(libc::EXDEV)));
        }
        let b = bucket(&sb)?;
        let from = child_path(&sp, name);
        let to = child_path(&dp, new_name);
        if from == to {
            return Ok(());
        }
        if src.kind == FileKind::Dir && to.starts_with(&format!("{from}/")) {
            return Err(VfsError::Invalid("cannot move a directory into itself"));
        }
        if src.kind != FileKind::Dir {
            self.check_unlocked(src.ino).await?;
        }
        let existing = self.lookup(new_parent, new_name).await;
        if let Ok(dst) = &existing
            && !no_replace
            && dst.kind != FileKind::Dir
        {
            self.check_unlocked(dst.ino).await?;
        }
        match existing {
            Ok(_) if no_replace => return Err(VfsError::Exists),
            Ok(dst) => match (src.kind == FileKind::Dir, dst.kind == FileKind::Dir) {
                (true, false) => return Err(VfsError::NotDir),
                (false, true) => return Err(VfsError::IsDir),
                (true, true) => {
                    if self.dir_has_children(&b, &to).await? || self.has_pending_children(dst.ino) {
                        return Err(VfsError::NotEmpty);
                    }
                    let k = crate::names::dir_key(&to)?;
                    self.own_write(b.as_str(), &[k.as_str()], self.layer.delete_object(&b, &k))
                        .await?;
                }
                (false, false) => {}
            },
            Err(VfsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        if src.kind == FileKind::Dir {
            self.rename_dir(&b, &from, &to).await?;
        } else {
            // staged bytes go to the old key first, then move with it
            self.commit_ino(src.ino).await?;
            let (fk, tk) = (key(&from)?, key(&to)?);
            let info = self
                .own_write(
                    b.as_str(),
                    &[fk.as_str(), tk.as_str()],
                    self.layer.rename_object(&b, &fk, &tk, true),
                )
                .await?;
            // the moved version (same bytes) is what later writes patch
            self.set_open_base(src.ino, &info).await;
        }
        self.inodes.rename(src.ino, new_parent, new_name);
        self.cache.remove(src.ino);
        // times as a local filesystem gives them (times.rs)
        self.touch_ctime(src.ino).await;
        self.touch_dir(parent);
        if new_parent != parent {
            self.touch_dir(new_parent);
        }
        Ok(())
    }

    async fn rename_dir(&self, b: &cairn_api::BucketName, from: &str, to: &str) -> VfsResult<()> {
        let prefix = format!("{from}/");
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .layer
                .list_objects(
                    b,
                    ListOptions {
                        prefix: prefix.clone(),
                        delimiter: None,
                        start_after: marker.clone(),
                        max_keys: self.cfg.list_page,
                    },
                )
                .await?;
            let moves: Vec<(String, String)> = page
                .objects
                .iter()
                .map(|o| (o.key.clone(), format!("{to}/{}", &o.key[prefix.len()..])))
                .collect();
            let results: Vec<VfsResult<()>> = futures::stream::iter(moves)
                .map(|(s, d)| async move {
                    let (sk, dk) = (key(&s)?, key(&d)?);
                    let moved = self.own_write(
                        b.as_str(),
                        &[sk.as_str(), dk.as_str()],
                        self.layer.rename_object(b, &sk, &dk, true),
                    );
                    match moved.await {
                        Ok(_) | Err(ObjectError::NoSuchKey { .. }) => Ok(()),
                        Err(e) => Err(e.into()),
                    }
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            for r in results {
                r?;
            }
            if !page.is_truncated {
                break;
            }
            marker = page.next_marker;
            if marker.is_none() {
                break;
            }
        }
        Ok(())
    }
}
