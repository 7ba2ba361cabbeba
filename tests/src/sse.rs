//! Helpers of the server-side encryption tests.

use anyhow::Result;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionRule,
};

/// A bucket-encryption rule: default `alg`, with `key` for SSE-KMS.
pub fn encryption_rule(
    alg: ServerSideEncryption,
    key: Option<&str>,
) -> Result<ServerSideEncryptionRule> {
    Ok(ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(alg)
                .set_kms_master_key_id(key.map(str::to_owned))
                .build()?,
        )
        .build())
}
