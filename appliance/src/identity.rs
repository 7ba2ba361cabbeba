//! Which identity the file fronts act as (`--mount-identity`,
//! `--nfs-identity`): the layer they get is wrapped in
//! [`cairn_iam::IdentityLayer`], so every call they make is authorized as
//! that IAM user's S3 request would be. Without the flag a front acts as
//! the root user, as before.

use std::sync::Arc;

use anyhow::Context as _;
use cairn_api::ObjectLayer;
use cairn_iam::{Iam, IdentityLayer};

/// `layer` as front `front` (`mount`, `nfs`) uses it: as IAM user `user`
/// when one is set (it must exist now), else as the root user.
pub(crate) fn act_as(
    layer: Arc<dyn ObjectLayer>,
    iam: &Arc<Iam>,
    user: Option<&str>,
    front: &str,
) -> anyhow::Result<Arc<dyn ObjectLayer>> {
    let Some(user) = user else {
        tracing::info!(front, "acts as the root user (no --{front}-identity)");
        return Ok(layer);
    };
    let wrapped = IdentityLayer::new(layer, iam.clone(), user).with_context(|| {
        format!(
            "--{front}-identity {user}: there is no IAM user {user:?} \
             (create it first, e.g. `aws iam create-user --user-name {user}`)"
        )
    })?;
    tracing::info!(
        front,
        user,
        "acts as IAM user {user}: its policies decide every call"
    );
    Ok(Arc::new(wrapped))
}
