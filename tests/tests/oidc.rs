//! OpenID Connect against a real provider (npm oauth2-mock-server, see
//! tests/src/oidc.rs): the server's setup flags and its fetching of the
//! provider's keys.

use std::time::Duration;

use anyhow::Result;
use cairn_tests::oidc::OidcProvider;
use cairn_tests::{Server, StartOpts};

fn oidc_opts(config_url: &str) -> StartOpts {
    StartOpts {
        extra_args: vec![
            "--oidc-config-url".into(),
            config_url.into(),
            "--oidc-client-id".into(),
            "cairn".into(),
        ],
        ..StartOpts::drives(1)
    }
}

async fn wait_log(s: &Server, what: &str) -> bool {
    for _ in 0..100 {
        if s.full_log().contains(what) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The server fetches the provider's keys at start; with the provider
/// down it starts all the same and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_starts_with_its_provider_up_or_down() -> Result<()> {
    let idp = OidcProvider::start().await?;
    let s = Server::start(oidc_opts(&idp.config_url())).await?;
    assert!(
        wait_log(&s, "OpenID provider's keys fetched").await,
        "{}",
        s.log()
    );
    assert!(s.full_log().contains(&idp.issuer()), "{}", s.log());
    // a provider nobody runs: ready anyway, the failure logged
    let port = cairn_tests::free_port()?;
    let down = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
    let s2 = Server::start(oidc_opts(&down)).await?;
    assert!(
        wait_log(&s2, "OpenID provider not reachable yet").await,
        "{}",
        s2.log()
    );
    // a client id without a provider is a setup error
    let bad = Server::start(StartOpts {
        extra_args: vec!["--oidc-client-id".into(), "x".into()],
        ..StartOpts::drives(1)
    })
    .await;
    assert!(bad.is_err());
    // the provider's own tokens and key rotation work as the tests expect
    let kid = idp.current_kid().await?;
    let t = idp.mint(r#"{"sub": "alice", "aud": "cairn"}"#, 600).await?;
    assert_eq!(t.split('.').count(), 3);
    idp.rotate().await?;
    assert_ne!(idp.current_kid().await?, kid);
    Ok(())
}
