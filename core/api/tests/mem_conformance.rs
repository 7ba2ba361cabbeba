//! The reference model must pass its own conformance suite.

#[tokio::test]
async fn memlayer_passes_conformance() {
    let layer = cairn_api::mem::MemLayer::new();
    cairn_api::conformance::run_all(&layer).await;
}
