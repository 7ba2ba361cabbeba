//! Token checks and the STS exchange against a key set made here (the
//! end-to-end test, tests/tests/oidc.rs, runs a real provider).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cairn_iam::sts::SessionParent;
use cairn_iam::{Action, Context, Iam, IamConfig, Identity, Question, Target};
use serde_json::json;

use super::testkit::{CLIENT, ISSUER, TestKey, claims, config, jwks, now};
use super::web::{StsError, WebIdentityParams, assume_role_with_web_identity};
use super::{OidcError, OidcProvider};

async fn provider(keys: &[&TestKey]) -> OidcProvider {
    OidcProvider::with_keys(config(), ISSUER, &jwks(keys)).await
}

#[tokio::test]
async fn a_good_token_is_accepted() {
    let k = TestKey::new("k1");
    let p = provider(&[&k]).await;
    let t = k.sign(&claims("alice", json!({"policy": "readonly"})));
    let id = p.verify(&t).await.unwrap();
    assert_eq!(id.issuer, ISSUER);
    assert_eq!(id.subject, "alice");
    assert_eq!(id.audience, CLIENT);
    assert_eq!(p.map(&id).policies, ["readonly"]);
    // aud as an array naming the client among others
    let t = k.sign(&claims("bob", json!({"aud": ["x", CLIENT]})));
    assert_eq!(p.verify(&t).await.unwrap().audience, CLIENT);
    // a token without kid is tried against the keys of its algorithm
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = None;
    let no_kid = resign_header(&k, &claims("carol", json!({})), h);
    assert_eq!(p.verify(&no_kid).await.unwrap().subject, "carol");
}

/// A token with header `h` signed by `k` (through jsonwebtoken's encoder).
fn resign_header(k: &TestKey, c: &serde_json::Value, h: jsonwebtoken::Header) -> String {
    let t = k.sign(c);
    // re-sign: take the signature over the new header by signing again
    // with the same key (EdDSA is deterministic per message)
    let mut parts = t.split('.');
    let (_, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap());
    let msg = format!("{header}.{payload}");
    format!("{msg}.{}", k.raw_sign(msg.as_bytes()))
}

fn invalid(r: Result<super::WebIdentity, OidcError>) -> String {
    match r {
        Err(OidcError::InvalidToken(m)) => m,
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let k = TestKey::new("k1");
    let p = provider(&[&k]).await;
    // another audience, another issuer, no sub
    let m = invalid(
        p.verify(&k.sign(&claims("a", json!({"aud": "other"}))))
            .await,
    );
    assert!(m.contains("audience"), "{m}");
    let m = invalid(
        p.verify(&k.sign(&claims("a", json!({"iss": "https://evil.example"}))))
            .await,
    );
    assert!(m.contains("issuer"), "{m}");
    let mut c = claims("a", json!({}));
    c.as_object_mut().unwrap().remove("sub");
    let m = invalid(p.verify(&k.sign(&c)).await);
    assert!(m.contains("sub"), "{m}");
    // expired beyond the leeway; not valid yet
    let t = k.sign(&claims("a", json!({"exp": now() - 120})));
    assert_eq!(p.verify(&t).await, Err(OidcError::Expired));
    let t = k.sign(&claims("a", json!({"nbf": now() + 600})));
    assert!(invalid(p.verify(&t).await).contains("nbf"));
    // no exp at all
    let mut c = claims("a", json!({}));
    c.as_object_mut().unwrap().remove("exp");
    assert!(invalid(p.verify(&k.sign(&c)).await).contains("exp"));
    // signed by a key of the same id that is not the provider's
    let impostor = TestKey::new("k1");
    let t = impostor.sign(&claims("a", json!({})));
    assert!(invalid(p.verify(&t).await).contains("signature"));
    // an expired token with a forged signature is not "expired"
    let t = impostor.sign(&claims("a", json!({"exp": now() - 120})));
    assert!(invalid(p.verify(&t).await).contains("signature"));
    // a key id the set lacks (the refetch is throttled here)
    let other = TestKey::new("k2");
    let m = invalid(p.verify(&other.sign(&claims("a", json!({})))).await);
    assert!(m.contains("k2"), "{m}");
    // the payload changed after signing
    let t = k.sign(&claims("a", json!({"policy": "readonly"})));
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims("a", json!({"policy": "consoleAdmin"}))).unwrap());
    parts[1] = &forged;
    assert!(invalid(p.verify(&parts.join(".")).await).contains("signature"));
    // garbage, and tokens over the size limit
    for bad in ["", "abc", "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30."] {
        invalid(p.verify(bad).await);
    }
    let huge = format!(
        "{}.{}.x",
        "a".repeat(10),
        "b".repeat(super::MAX_TOKEN_BYTES)
    );
    assert!(invalid(p.verify(&huge).await).contains("bytes"));
}

#[tokio::test]
async fn unsigned_and_symmetric_algorithms_are_refused() {
    let k = TestKey::new("k1");
    let p = provider(&[&k]).await;
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("a", json!({}))).unwrap());
    // alg none
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#)
    );
    invalid(p.verify(&none).await);
    // HS256 keyed with the public key's bytes (the classic confusion)
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some("k1".into());
    let x = k.jwk()["x"].as_str().unwrap().to_owned();
    let t = jsonwebtoken::encode(
        &h,
        &claims("a", json!({})),
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(invalid(p.verify(&t).await).contains("HS256"));
}

#[tokio::test]
async fn an_unreachable_provider_is_a_communication_error() {
    let mut cfg = config();
    // a port nothing listens on (the discard port on loopback)
    cfg.config_url = "http://127.0.0.1:9/.well-known/openid-configuration".into();
    let p = OidcProvider::new(cfg).unwrap();
    let k = TestKey::new("k1");
    let r = p.verify(&k.sign(&claims("a", json!({})))).await;
    assert!(matches!(r, Err(OidcError::Communication(_))), "{r:?}");
    // asked again at once: throttled, still a communication error
    let r = p.verify(&k.sign(&claims("a", json!({})))).await;
    assert!(matches!(r, Err(OidcError::Communication(_))), "{r:?}");
    // the setup is checked
    let mut bad = config();
    bad.config_url = "file:///etc/passwd".into();
    assert!(OidcProvider::new(bad).is_err());
    let mut bad = config();
    bad.client_ids.clear();
    assert!(OidcProvider::new(bad).is_err());
}

async fn iam() -> Iam {
    let iam = Iam::load(IamConfig {
        root_access_key: "root".into(),
        root_secret_key: "rootsecret".into(),
        account: "123456789012".into(),
        deployment_id: "dep".into(),
        store: Arc::new(cairn_api::MemConfig::new()),
    })
    .await
    .unwrap();
    iam.change(|st| {
        st.create_group("eng", 1)?;
        st.set_attached(&Target::Group("eng".into()), "readwrite", true)?;
        let trust = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": ISSUER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"jwt:sub": "alice"}}
        }]});
        st.create_role("web", &trust.to_string(), Some(7200), 1)?;
        st.set_attached(&Target::Role("web".into()), "diagnostics", true)?;
        // trusts the account's own principals (AssumeRole), with a broad
        // Action: no web identity is one of them
        let account = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:root", ""]},
            "Action": "sts:*"
        }]});
        st.create_role("internal", &account.to_string(), None, 1)?;
        st.set_attached(&Target::Role("internal".into()), "readwrite", true)?;
        Ok(())
    })
    .await
    .unwrap();
    iam
}

fn params(token: &str) -> WebIdentityParams<'_> {
    WebIdentityParams {
        token: Some(token),
        ..Default::default()
    }
}

/// Whether the session of `g` may do `action` on `resource`.
fn may(iam: &Iam, g: &super::web::WebIdentityGrant, action: &str, resource: &str) -> bool {
    let c = iam
        .caller(
            &g.credentials.access_key,
            Some(&g.credentials.session_token),
            now(),
        )
        .unwrap();
    iam.authorize(&Question {
        caller: Some(&c),
        action: Action::from_name(action).unwrap(),
        resource,
        context: &Context::new(),
        bucket_policy: None,
    })
}

#[tokio::test]
async fn claims_map_to_policies_and_groups() {
    let iam = iam().await;
    let k = TestKey::new("k1");
    let p = provider(&[&k]).await;
    let t = k.sign(&claims(
        "alice",
        json!({"policy": "readonly", "email": "a@x"}),
    ));
    let g = assume_role_with_web_identity(&iam, &p, &params(&t), now())
        .await
        .unwrap();
    assert_eq!(
        (g.subject.as_str(), g.provider.as_str(), g.audience.as_str()),
        ("alice", ISSUER, CLIENT)
    );
    assert!(g.credentials.expires - now() >= 3599);
    assert_eq!(
        g.assumed_role_arn,
        "arn:aws:sts::123456789012:assumed-role/web-identity/alice"
    );
    let c = iam
        .caller(
            &g.credentials.access_key,
            Some(&g.credentials.session_token),
            now(),
        )
        .unwrap();
    let Identity::Session(s) = &c.identity else {
        panic!()
    };
    assert!(
        matches!(&s.parent, SessionParent::WebIdentity { policies, .. } if policies == &["readonly"])
    );
    assert_eq!(s.jwt["email"], ["a@x"]);
    assert!(may(&iam, &g, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!may(&iam, &g, "s3:PutObject", "arn:aws:s3:::b/k"));
    // a group claim gives the Cairn group's policies
    let t = k.sign(&claims("bob", json!({"groups": ["eng", "nosuch"]})));
    let g = assume_role_with_web_identity(&iam, &p, &params(&t), now())
        .await
        .unwrap();
    assert!(may(&iam, &g, "s3:PutObject", "arn:aws:s3:::b/k"));
    // a session policy narrows it
    let narrow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]})
    .to_string();
    let g = assume_role_with_web_identity(
        &iam,
        &p,
        &WebIdentityParams {
            policy: Some(&narrow),
            duration_seconds: Some("900"),
            ..params(&t)
        },
        now(),
    )
    .await
    .unwrap();
    assert!(may(&iam, &g, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!may(&iam, &g, "s3:PutObject", "arn:aws:s3:::b/k"));
    assert!(g.credentials.expires - now() <= 900);
    // nothing mapped: refused
    for extra in [json!({}), json!({"policy": "nosuch", "groups": "nogroup"})] {
        let t = k.sign(&claims("eve", extra));
        let e = assume_role_with_web_identity(&iam, &p, &params(&t), now())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "AccessDenied");
        assert_eq!(e.status().as_u16(), 403);
    }
}

#[tokio::test]
async fn a_role_needs_its_trust_policy() {
    let iam = iam().await;
    let k = TestKey::new("k1");
    let p = provider(&[&k]).await;
    let arn = "arn:aws:iam::123456789012:role/web";
    let with_role = |t| WebIdentityParams {
        role_arn: Some(arn),
        role_session_name: Some("s1"),
        ..params(t)
    };
    // alice is trusted (jwt:sub condition): the role's policies, not the claim's
    let t = k.sign(&claims("alice", json!({"policy": "readwrite"})));
    let g = assume_role_with_web_identity(&iam, &p, &with_role(&t), now())
        .await
        .unwrap();
    assert_eq!(
        g.assumed_role_arn,
        "arn:aws:sts::123456789012:assumed-role/web/s1"
    );
    assert!(g.assumed_role_id.ends_with(":s1"));
    assert!(
        may(&iam, &g, "admin:ServerInfo", "*")
            || !may(&iam, &g, "s3:PutObject", "arn:aws:s3:::b/k")
    );
    assert!(!may(&iam, &g, "s3:PutObject", "arn:aws:s3:::b/k"));
    // bob is not
    let t = k.sign(&claims("bob", json!({"policy": "readwrite"})));
    let e = assume_role_with_web_identity(&iam, &p, &with_role(&t), now())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "AccessDenied");
    // a role trusting the account's principals is not for web identities
    let e = assume_role_with_web_identity(
        &iam,
        &p,
        &WebIdentityParams {
            role_arn: Some("arn:aws:iam::123456789012:role/internal"),
            ..with_role(&t)
        },
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "AccessDenied");
    // over the role's maximum session
    let t = k.sign(&claims("alice", json!({})));
    let e = assume_role_with_web_identity(
        &iam,
        &p,
        &WebIdentityParams {
            duration_seconds: Some("7201"),
            ..with_role(&t)
        },
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "ValidationError");
    // a RoleArn of another account is not a role here: the claims count
    let t = k.sign(&claims("bob", json!({"policy": "readonly"})));
    let g = assume_role_with_web_identity(
        &iam,
        &p,
        &WebIdentityParams {
            role_arn: Some("arn:aws:iam::999999999999:role/web"),
            ..params(&t)
        },
        now(),
    )
    .await
    .unwrap();
    assert!(g.assumed_role_arn.contains("web-identity/bob"));
}

#[tokio::test]
async fn parameters_are_checked_before_the_provider_is_asked() {
    let iam = iam().await;
    let k = TestKey::new("k1");
    let p = provider(&[&k]).await;
    let t = k.sign(&claims("alice", json!({"policy": "readonly"})));
    let code = |r: Result<_, StsError>| r.unwrap_err().code();
    let run = |w: WebIdentityParams<'static>| {
        let (iam, p) = (&iam, &p);
        async move { assume_role_with_web_identity(iam, p, &w, now()).await }
    };
    assert_eq!(
        code(run(WebIdentityParams::default()).await),
        "MissingParameter"
    );
    let t: &'static str = Box::leak(t.into_boxed_str());
    for d in ["899", "43201", "x", "-1"] {
        let w = WebIdentityParams {
            duration_seconds: Some(d),
            ..params(t)
        };
        assert_eq!(code(run(w).await), "ValidationError", "{d}");
    }
    for n in ["a", "bad name", "x/y"] {
        let w = WebIdentityParams {
            role_session_name: Some(n),
            ..params(t)
        };
        assert_eq!(code(run(w).await), "ValidationError", "{n}");
    }
    for pol in [
        "{",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Nope","Resource":"*"}]}"#,
    ] {
        let w = WebIdentityParams {
            policy: Some(pol),
            ..params(t)
        };
        assert_eq!(code(run(w).await), "MalformedPolicyDocument", "{pol}");
    }
    let expired = k.sign(&claims("alice", json!({"exp": now() - 300})));
    let expired: &'static str = Box::leak(expired.into_boxed_str());
    assert_eq!(code(run(params(expired)).await), "ExpiredTokenException");
    assert_eq!(
        code(run(params("abc.def.ghi")).await),
        "InvalidIdentityToken"
    );
}
