//! JWT authentication end to end: tokens minted here, verified by the engine.

use shardcast::protocol::{CloseReason, ErrorText};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use shardcast::auth::jwt::{JwtAlgorithm, JwtVerifier};
use shardcast::hooks::JwtAuthenticator;

use crate::support::{self, TestServer};

const SECRET: &[u8] = b"test-secret";

fn server(verifier: JwtVerifier) -> TestServer {
    TestServer::start(support::builder(1).authenticator(JwtAuthenticator::new(verifier)))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn outcome(server: &TestServer, token: &str) -> Result<serde_json::Value, u16> {
    let mut client = server.connect().await;
    client.emit("authenticate", json!({ "token": token })).await;
    let first = client.next_json().await;
    if first["event"] == "connected" {
        return Ok(first);
    }
    assert_eq!(
        first["data"]["message"],
        ErrorText::AuthenticationFailed.text(),
        "{first}"
    );
    match client.next_within(support::WAIT).await {
        support::client::Next::Close(code, _) => Err(code),
        other => panic!("expected close, got {other:?}"),
    }
}

fn hs256(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn hs256_sub_becomes_user_id_and_bad_tokens_get_4003() {
    let server = server(JwtVerifier::from_secret(JwtAlgorithm::Hs256, SECRET).unwrap());
    let ok = outcome(
        &server,
        &hs256(json!({ "sub": "alice", "exp": now() + 60 })),
    )
    .await
    .unwrap();
    assert_eq!(ok["data"]["userId"], "alice");
    let no_sub = outcome(&server, &hs256(json!({ "role": "x" })))
        .await
        .unwrap();
    assert!(no_sub["data"].get("userId").is_none());

    let expired = hs256(json!({ "sub": "a", "exp": now() - 10 }));
    let not_yet = hs256(json!({ "sub": "a", "nbf": now() + 3600 }));
    let wrong_sig = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "a" }),
        &EncodingKey::from_secret(b"other"),
    )
    .unwrap();
    let other_alg = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &json!({ "sub": "a" }),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(br#"{"sub":"a"}"#)
    );
    for (name, token) in [
        ("expired", expired),
        ("not yet valid", not_yet),
        ("wrong signature", wrong_sig),
        ("other algorithm", other_alg),
        ("alg none", none),
        ("garbage", "garbage".into()),
    ] {
        assert_eq!(
            outcome(&server, &token).await.err(),
            Some(CloseReason::AuthFailed.code()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn rs256_and_es256_with_pem_public_keys() {
    for (alg, jwt_alg, private, public) in [
        (
            Algorithm::RS256,
            JwtAlgorithm::Rs256,
            "rs256_private.pem",
            "rs256_public.pem",
        ),
        (
            Algorithm::ES256,
            JwtAlgorithm::Es256,
            "es256_private.pem",
            "es256_public.pem",
        ),
    ] {
        let verifier = JwtVerifier::from_public_key_pem(jwt_alg, &fixture(public)).unwrap();
        let server = server(verifier);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture(private)).unwrap(),
            _ => EncodingKey::from_ec_pem(&fixture(private)).unwrap(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(alg),
            &json!({ "sub": "pem-user", "exp": now() + 60 }),
            &key,
        )
        .unwrap();
        let ok = outcome(&server, &token).await.unwrap();
        assert_eq!(ok["data"]["userId"], "pem-user");
        let hs = hs256(json!({ "sub": "x" }));
        assert_eq!(
            outcome(&server, &hs).await.err(),
            Some(CloseReason::AuthFailed.code()),
            "{jwt_alg} refuses HS256"
        );
    }
}
