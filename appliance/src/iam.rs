//! The server's IAM service: users, keys and policies kept by the store
//! (`cairn_api::ConfigStore`), the root user from the environment.

use std::sync::Arc;

use anyhow::Context as _;
use cairn_api::ConfigStore;
use cairn_iam::{Iam, IamConfig};

/// What the IAM service of a server is made from.
pub(crate) struct IamSetup<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    /// The deployment's id (format.json); `""` for a gateway; a
    /// federation's own for its sites (their accounts, ARNs and STS
    /// sessions are then the same on every site).
    pub deployment_id: &'a str,
    pub store: Arc<dyn ConfigStore>,
}

/// The deployment's 12-digit account id, derived from its id so every
/// node of a deployment names the same.
fn account_id(deployment_id: &str) -> String {
    use sha2::Digest as _;
    if deployment_id.is_empty() {
        return cairn_iam::DEFAULT_ACCOUNT.to_owned();
    }
    let h = sha2::Sha256::digest(deployment_id.as_bytes());
    let mut n = 0u64;
    for b in h.iter().take(8) {
        n = (n << 8) | u64::from(*b);
    }
    format!("{:012}", n % 1_000_000_000_000)
}

/// Loads the IAM state of a server.
pub(crate) async fn load(setup: IamSetup<'_>) -> anyhow::Result<Arc<Iam>> {
    let account = account_id(setup.deployment_id);
    let cfg = IamConfig {
        root_access_key: setup.access_key.to_owned(),
        root_secret_key: setup.secret_key.to_owned(),
        account: account.clone(),
        deployment_id: setup.deployment_id.to_owned(),
        store: setup.store,
    };
    let shared = cfg.store.changes().is_some();
    let iam = match Iam::load(cfg.clone()).await {
        Ok(iam) => iam,
        // a federation's etcd that is down: served with the root user
        // alone until it answers (then read, Iam::follow_store)
        Err(e) if shared => {
            tracing::error!(error = %e, "shared IAM state not readable now; read again at its next change");
            Iam::unloaded(cfg)
        }
        Err(e) => return Err(e).context("reading the IAM state"),
    };
    let st = iam.state();
    tracing::info!(
        account,
        users = st.users().count(),
        groups = st.groups().count(),
        policies = st.policies().count(),
        shared,
        "IAM ready"
    );
    let iam = Arc::new(iam);
    iam.follow_store();
    Ok(iam)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits_and_stable() {
        let a = account_id("4f0c1c0e-1d1e-4b8e-9d55-1b7c7e0f9a11");
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a, account_id("4f0c1c0e-1d1e-4b8e-9d55-1b7c7e0f9a11"));
        assert_ne!(a, account_id("another"));
        assert_eq!(account_id(""), cairn_iam::DEFAULT_ACCOUNT);
    }
}
