//! `--oidc-*`: the OpenID Connect provider whose tokens STS
//! AssumeRoleWithWebIdentity exchanges for credentials
//! (cairn_s3::oidc). Its documents are fetched in the background at
//! start: a provider that is down does not keep the server from starting.

use std::sync::Arc;

use anyhow::Context as _;
use cairn_s3::oidc::{OidcConfig, OidcProvider};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct OidcArgs {
    /// The OpenID provider's discovery document
    /// (`https://idp.example/.well-known/openid-configuration`): enables
    /// STS AssumeRoleWithWebIdentity with its tokens.
    #[arg(long, env = "CAIRN_OIDC_CONFIG_URL")]
    pub oidc_config_url: Option<String>,
    /// A client id a token's `aud` must name (repeatable, or
    /// comma-separated).
    #[arg(long, env = "CAIRN_OIDC_CLIENT_ID", value_delimiter = ',')]
    pub oidc_client_id: Vec<String>,
    /// The claim naming Cairn policies (comma-separated names, or an
    /// array of names).
    #[arg(long, env = "CAIRN_OIDC_CLAIM_NAME", default_value = "policy")]
    pub oidc_claim_name: String,
    /// The claim naming Cairn groups whose policies the session gets.
    #[arg(long, env = "CAIRN_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
}

impl OidcArgs {
    /// The provider, if one is configured (its first fetch started).
    pub fn provider(&self) -> anyhow::Result<Option<Arc<OidcProvider>>> {
        let Some(url) = &self.oidc_config_url else {
            anyhow::ensure!(
                self.oidc_client_id.is_empty(),
                "--oidc-client-id needs --oidc-config-url"
            );
            return Ok(None);
        };
        let p = OidcProvider::new(OidcConfig {
            config_url: url.clone(),
            client_ids: self.oidc_client_id.clone(),
            claim_name: self.oidc_claim_name.clone(),
            groups_claim: self.oidc_groups_claim.clone(),
        })
        .context("--oidc-config-url")?;
        let p = Arc::new(p);
        let warm = p.clone();
        tokio::spawn(async move { warm.warm().await });
        tracing::info!(config_url = %url, "STS AssumeRoleWithWebIdentity trusts this OpenID provider");
        Ok(Some(p))
    }
}
