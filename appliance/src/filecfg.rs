//! A gateway's own records (`cairn_api::ConfigStore`: IAM users, keys,
//! policies...) as files in its state folder, `<state>/<dir>/<hex>.json`
//! (`cairn server` keeps them on its drives instead, core/store).
//!
//! - A record's file name is the hex of its name: no name, whatever it
//!   holds (`..`, `/`), becomes more than one path segment.
//! - A write goes to a temporary file that is synced and renamed over the
//!   record, then the folder is synced: a crash leaves the old record or
//!   the new one, never half of one.
//! - Folders are 0700 and files 0600: secret keys are stored as they are
//!   (a gateway has no KMS to seal them with).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cairn_api::config::{record_file_name, record_name};
use cairn_api::{ConfigDir, ConfigStore, ObjectError, ObjectResult};

/// Records under one folder.
#[derive(Debug, Clone)]
pub struct FileConfig {
    root: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ObjectError {
    ObjectError::Internal {
        message: format!("config record: {what} {}: {e}", path.display()),
    }
}

impl FileConfig {
    /// Records under `root` (made when missing, 0700).
    pub fn open(root: PathBuf) -> std::io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)?;
        Ok(FileConfig { root })
    }

    fn dir(&self, dir: ConfigDir) -> PathBuf {
        self.root.join(dir.as_str())
    }

    fn list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>> {
        let path = self.dir(dir);
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &path, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("listing", &path, e))?;
            let Some(name) = entry.file_name().to_str().and_then(record_name) else {
                continue; // a temporary file, or not ours
            };
            match fs::read(entry.path()) {
                Ok(body) => out.push((name, body)),
                Err(e) if e.kind() == ErrorKind::NotFound => {} // deleted meanwhile
                Err(e) => return Err(io_err("reading", &entry.path(), e)),
            }
        }
        out.sort();
        Ok(out)
    }

    fn put(&self, dir: ConfigDir, name: &str, body: Option<&[u8]>) -> ObjectResult<()> {
        let folder = self.dir(dir);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&folder)
            .map_err(|e| io_err("making", &folder, e))?;
        let path = folder.join(record_file_name(name));
        match body {
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_err("removing", &path, e)),
            },
            Some(body) => {
                let tmp = folder.join(format!(".tmp.{:016x}", rand::random::<u64>()));
                let written = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .and_then(|mut f| {
                        f.write_all(body)?;
                        f.sync_all()
                    })
                    .and_then(|()| fs::rename(&tmp, &path));
                if let Err(e) = written {
                    let _ = fs::remove_file(&tmp);
                    return Err(io_err("writing", &path, e));
                }
            }
        }
        File::open(&folder)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("syncing", &folder, e))
    }
}

fn joined<T>(r: Result<ObjectResult<T>, tokio::task::JoinError>) -> ObjectResult<T> {
    r.unwrap_or_else(|e| {
        Err(ObjectError::Internal {
            message: format!("config record task: {e}"),
        })
    })
}

#[async_trait]
impl ConfigStore for FileConfig {
    async fn config_list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>> {
        let me = self.clone();
        joined(tokio::task::spawn_blocking(move || me.list(dir)).await)
    }

    async fn config_put(
        &self,
        dir: ConfigDir,
        name: &str,
        body: Option<Vec<u8>>,
    ) -> ObjectResult<()> {
        let (me, name) = (self.clone(), name.to_owned());
        joined(tokio::task::spawn_blocking(move || me.put(dir, &name, body.as_deref())).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip_and_names_stay_one_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("iam");
        let c = FileConfig::open(root.clone()).unwrap();
        assert!(c.config_list(ConfigDir::IamUsers).await.unwrap().is_empty());
        for name in ["alice", "../../etc/passwd", "a/b"] {
            c.config_put(ConfigDir::IamUsers, name, Some(name.as_bytes().to_vec()))
                .await
                .unwrap();
        }
        c.config_put(ConfigDir::IamKeys, "k", Some(b"secret".to_vec()))
            .await
            .unwrap();
        let users = c.config_list(ConfigDir::IamUsers).await.unwrap();
        let names: Vec<&str> = users.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["../../etc/passwd", "a/b", "alice"]);
        assert!(users.iter().all(|(n, b)| n.as_bytes() == b.as_slice()));
        // every record is one file directly in its folder, private
        let files: Vec<_> = fs::read_dir(root.join("iam/users")).unwrap().collect();
        assert_eq!(files.len(), 3);
        let key = root.join("iam/keys").join(record_file_name("k"));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // reopened: the same records; a delete removes one
        let again = FileConfig::open(root.clone()).unwrap();
        assert_eq!(again.config_list(ConfigDir::IamUsers).await.unwrap(), users);
        again
            .config_put(ConfigDir::IamUsers, "alice", None)
            .await
            .unwrap();
        again
            .config_put(ConfigDir::IamUsers, "never-there", None)
            .await
            .unwrap();
        assert_eq!(
            again.config_list(ConfigDir::IamUsers).await.unwrap().len(),
            2
        );
        // leftovers of a crashed write are not records
        fs::write(root.join("iam/users/.tmp.x"), b"half").unwrap();
        assert_eq!(
            again.config_list(ConfigDir::IamUsers).await.unwrap().len(),
            2
        );
    }
}
