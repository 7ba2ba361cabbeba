//! Multipart uploads staged on the share:
//! `.cairn.gateway/multipart/<upload id>/upload.json` (bucket, key,
//! metadata), `part.N.json` (the part's info and data file name) and
//! `part.N.<uuid>` (its bytes). A re-uploaded part gets a new data file and
//! its record is replaced by rename, so a part never mixes two uploads.
//! Complete joins the chosen parts into a temp file (copy_file_range, in
//! the kernel) and renames it into place like a PUT.

use std::path::Path;

use cairn_api::path::{PathError, SafePath};
use cairn_api::seg;

use cairn_api::{ChecksumAlgorithm, PartInfo};
use time::OffsetDateTime;

use super::meta::HeaderRecord;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct UploadRecord {
    pub bucket: String,
    pub key: String,
    /// Unix time in nanoseconds.
    pub initiated: i128,
    pub meta: HeaderRecord,
    pub checksum: Option<ChecksumAlgorithm>,
    /// The upload's checksum type is FULL_OBJECT (else COMPOSITE).
    #[serde(default)]
    pub checksum_full_object: bool,
}

impl UploadRecord {
    pub fn initiated(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.initiated)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: i128,
    pub checksum: Option<cairn_api::Checksum>,
    /// Name of the data file in the upload folder.
    pub file: String,
}

impl PartRecord {
    pub fn info(&self) -> PartInfo {
        PartInfo {
            part_number: self.part_number,
            etag: self.etag.clone(),
            size: self.size,
            last_modified: OffsetDateTime::from_unix_timestamp_nanos(self.last_modified)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            checksum: self.checksum.clone(),
        }
    }
}

pub(crate) fn record_path(upload: &SafePath) -> SafePath {
    upload.join(seg!("upload.json"))
}

pub(crate) fn part_record_path(upload: &SafePath, n: u32) -> Result<SafePath, PathError> {
    upload.join_str(&format!("part.{n}.json"))
}

/// Writes a JSON record by temp file + rename, so readers see it whole.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, serde_json::to_vec(v).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<T> {
    let b = std::fs::read(path)?;
    serde_json::from_slice(&b).map_err(std::io::Error::other)
}

/// Every part record of an upload, by number.
pub(crate) fn parts(upload: &SafePath) -> std::io::Result<Vec<PartRecord>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(upload)? {
        let name = ent?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("part.") && name.ends_with(".json") {
            match read_json::<PartRecord>(&upload.join_str(name)?) {
                Ok(p) => out.push(p),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.sort_by_key(|p| p.part_number);
    Ok(out)
}
