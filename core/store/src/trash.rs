//! Freed data leaves a drive in two steps: a rename into the drive's
//! trash folder (`.cairn.sys/trash`, same file system: one metadata
//! operation however big the data), inside the operation that freed it,
//! and the removal, on the drive's purger thread afterwards. Removing a
//! 16 GiB object's part files takes seconds; done inside a drive
//! operation it outlasts the drive timeout and the set marks every drive
//! offline (found by the random-write benchmark: `rm` of a big file on
//! the mount gave EIO). Whatever a crash leaves in the trash is removed
//! when the drive is next taken into a set.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};

use cairn_api::SafePath;

use crate::driveio::DriveIo;

/// One drive's trash folder and its purger.
#[derive(Debug)]
pub struct Trash {
    dir: SafePath,
    io: Arc<dyn DriveIo>,
    purger: parking_lot::Mutex<Option<Sender<PathBuf>>>,
}

impl Trash {
    pub fn new(dir: SafePath, io: Arc<dyn DriveIo>) -> Self {
        Self {
            dir,
            io,
            purger: parking_lot::Mutex::new(None),
        }
    }

    /// Moves each path (a file or a folder of this drive) into the trash
    /// and has it removed in the background. A path that cannot be moved
    /// (gone already, or the trash cannot be made) is removed here.
    pub fn discard(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut moved = Vec::new();
        for p in paths {
            let Ok(to) = self.dir.join_str(&uuid::Uuid::new_v4().to_string()) else {
                remove(&*self.io, &p);
                continue;
            };
            let to = to.into_path_buf();
            match self.io.rename(&p, &to) {
                Ok(()) => moved.push(to),
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound && !self.io.exists(&self.dir) =>
                {
                    if self.io.create_dir_all(&self.dir).is_ok() && self.io.rename(&p, &to).is_ok()
                    {
                        moved.push(to);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::debug!(path = %p.display(), error = %e, "moving freed data to the trash; removing it in place");
                    remove(&*self.io, &p);
                }
            }
        }
        if !moved.is_empty() {
            self.send(moved);
        }
    }

    /// Removes what an earlier run left in the trash (in the background).
    pub fn purge_leftovers(&self) {
        let Ok(rd) = self.io.read_dir(&self.dir) else {
            return;
        };
        let left: Vec<PathBuf> = rd
            .iter()
            .filter_map(|e| e.path_in(&self.dir))
            .map(SafePath::into_path_buf)
            .collect();
        if !left.is_empty() {
            self.send(left);
        }
    }

    fn send(&self, paths: Vec<PathBuf>) {
        let mut purger = self.purger.lock();
        let tx = match purger.as_ref() {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = channel::<PathBuf>();
                let io = self.io.clone();
                let started = std::thread::Builder::new()
                    .name("cairn-purge".into())
                    .spawn(move || {
                        while let Ok(p) = rx.recv() {
                            remove(&*io, &p);
                        }
                    });
                if let Err(e) = started {
                    tracing::warn!(error = %e, "no purger thread; removing freed data in place");
                    drop(purger);
                    paths.iter().for_each(|p| remove(&*self.io, p));
                    return;
                }
                *purger = Some(tx.clone());
                tx
            }
        };
        drop(purger);
        for p in paths {
            if let Err(e) = tx.send(p) {
                remove(&*self.io, &e.0);
            }
        }
    }
}

fn remove(io: &dyn DriveIo, p: &Path) {
    match io.remove_any(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %p.display(), error = %e, "removing freed data");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use super::*;

    #[test]
    fn discarded_data_leaves_its_place_at_once_and_the_trash_later() {
        let t = tempfile::tempdir().unwrap();
        let root = SafePath::root(t.path().to_path_buf());
        let trash = Trash::new(
            root.join_str("trash").unwrap(),
            crate::driveio::LocalIo::shared(),
        );
        let obj = t.path().join("obj");
        std::fs::create_dir_all(obj.join("cairn.data.x")).unwrap();
        std::fs::write(obj.join("cairn.data.x/part.1"), vec![7u8; 1 << 20]).unwrap();
        std::fs::write(obj.join("single"), b"x").unwrap();
        trash.discard([
            obj.join("cairn.data.x"),
            obj.join("single"),
            obj.join("never-was"),
        ]);
        assert!(!obj.join("cairn.data.x").exists());
        assert!(!obj.join("single").exists());
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_dir(t.path().join("trash")).unwrap().count() == 0
        });
        assert!(gone, "the purger emptied the trash");
        // leftovers of an earlier run
        std::fs::create_dir_all(t.path().join("trash/old/deep")).unwrap();
        trash.purge_leftovers();
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            !t.path().join("trash/old").exists()
        });
        assert!(gone, "leftovers purged");
    }
}
