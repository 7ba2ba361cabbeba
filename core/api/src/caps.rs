//! What a layer can and cannot do. The erasure set can do everything the
//! boundary offers; a gateway backend declares its gaps here so that the
//! fronts and the conformance suite know, and refuses those requests with
//! `NotImplemented` naming itself rather than answering half.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Names the backend in messages ("the NAS gateway").
    pub backend: &'static str,
    /// A key and keys below it (`a` and `a/b`) may both exist. A NAS share
    /// cannot: `a` is either a file or a folder there.
    pub key_and_prefix_coexist: bool,
    /// Server-side encryption (SSE-S3, SSE-KMS, SSE-C).
    pub encryption: bool,
    /// A folder marker object (`dir/`) may hold bytes.
    pub folder_objects_with_data: bool,
    /// Folder marker objects (`dir/`) exist at all (an object_store path
    /// cannot end in `/`).
    pub folder_objects: bool,
    /// Buckets can be created and deleted (a cloud gateway serves the
    /// remote buckets it was started with).
    pub manages_buckets: bool,
    /// An object's storage class is reported back on HEAD/GET (object_store
    /// sends it to the remote but does not read it back).
    pub reports_storage_class: bool,
    /// ETags are S3's: the MD5 of the bytes for a single PUT, `MD5-N` for a
    /// multipart upload. Azure's are its own opaque ones (`0x8D...`), the
    /// same on PUT, HEAD, GET and in listings.
    pub md5_etags: bool,
    /// Conditional writes (`If-Match`, `If-None-Match: *`) on PUT, and on
    /// CompleteMultipartUpload: checked atomically with the commit.
    pub conditional_puts: bool,
    pub conditional_completes: bool,
    /// `partNumber` reads of multipart objects and their part list
    /// (`object_parts`, GetObjectAttributes): the layer keeps part sizes
    /// and checksums; a single-PUT object's part 1 every layer serves.
    pub part_reads: bool,
}

impl Capabilities {
    /// Everything `ObjectLayer` offers.
    pub const FULL: Capabilities = Capabilities {
        backend: "this store",
        key_and_prefix_coexist: true,
        encryption: true,
        folder_objects_with_data: true,
        folder_objects: true,
        manages_buckets: true,
        reports_storage_class: true,
        md5_etags: true,
        conditional_puts: true,
        conditional_completes: true,
        part_reads: true,
    };
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::FULL
    }
}
