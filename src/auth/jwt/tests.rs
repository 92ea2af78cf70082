//! Unit tests of the JWT verifier, the minting and the configuration checks.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const SECRET: &[u8] = b"test-secret-for-unit-tests-only";
const RS_PRIVATE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rs256_private.pem"
));
const RS_PUBLIC: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rs256_public.pem"
));
const ES_PRIVATE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/es256_private.pem"
));
const ES_PUBLIC: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/es256_public.pem"
));
const P384_PUBLIC: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/es384_public.pem"
));

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn hs(alg: JwtAlgorithm, secret: &[u8], claims: &Value) -> String {
    sign(
        alg.to_jsonwebtoken(),
        &EncodingKey::from_secret(secret),
        claims,
    )
}

fn hs256_verifier() -> JwtVerifier {
    JwtVerifier::from_secret(JwtAlgorithm::Hs256, SECRET).unwrap()
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

/// A token with a hand-written header and payload and the given signature part.
fn raw_token(header: &Value, payload: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(header), b64(payload))
}

#[test]
fn valid_hmac_tokens_verify_for_each_hs_algorithm() {
    for alg in [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Hs384,
        JwtAlgorithm::Hs512,
    ] {
        let verifier = JwtVerifier::from_secret(alg, SECRET).unwrap();
        let token = hs(alg, SECRET, &json!({"sub": "u1", "exp": now() + 60}));
        let verified = verifier.verify(&token).unwrap();
        assert_eq!(verified.user_id.as_deref(), Some("u1"), "{alg}");
    }
}

#[test]
fn rs256_token_verifies_with_pem_fixture() {
    let key = EncodingKey::from_rsa_pem(RS_PRIVATE).unwrap();
    let token = sign(Algorithm::RS256, &key, &json!({"sub": "rsa-user"}));
    let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap();
    assert_eq!(
        verifier.verify(&token).unwrap().user_id.as_deref(),
        Some("rsa-user")
    );
}

#[test]
fn es256_token_verifies_with_pem_fixture() {
    let key = EncodingKey::from_ec_pem(ES_PRIVATE).unwrap();
    let token = sign(Algorithm::ES256, &key, &json!({"sub": "ec-user"}));
    let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Es256, ES_PUBLIC).unwrap();
    assert_eq!(
        verifier.verify(&token).unwrap().user_id.as_deref(),
        Some("ec-user")
    );
}

#[test]
fn expired_token_is_refused_without_leeway() {
    let token = hs(
        JwtAlgorithm::Hs256,
        SECRET,
        &json!({"sub": "u", "exp": now() - 2}),
    );
    assert_eq!(hs256_verifier().verify(&token), Err(JwtError::Expired));
}

#[test]
fn token_without_exp_is_accepted() {
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "u"}));
    assert!(hs256_verifier().verify(&token).is_ok());
}

#[test]
fn token_not_yet_valid_is_refused() {
    let token = hs(
        JwtAlgorithm::Hs256,
        SECRET,
        &json!({"sub": "u", "nbf": now() + 60}),
    );
    assert_eq!(hs256_verifier().verify(&token), Err(JwtError::NotYetValid));
    let past = hs(
        JwtAlgorithm::Hs256,
        SECRET,
        &json!({"sub": "u", "nbf": now() - 1}),
    );
    assert!(hs256_verifier().verify(&past).is_ok());
}

#[test]
fn non_numeric_exp_is_refused() {
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"exp": "tomorrow"}));
    let err = hs256_verifier().verify(&token).unwrap_err();
    assert!(matches!(err, JwtError::InvalidClaim { ref claim, .. } if claim == "exp"));
}

#[test]
fn tampered_payload_has_bad_signature() {
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "alice"}));
    let sig = token.rsplit('.').next().unwrap();
    let forged = raw_token(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"sub": "admin"}),
        sig,
    );
    assert_eq!(
        hs256_verifier().verify(&forged),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn forged_expired_token_reports_bad_signature_first() {
    let token = hs(JwtAlgorithm::Hs256, b"other", &json!({"exp": now() - 100}));
    assert_eq!(hs256_verifier().verify(&token), Err(JwtError::BadSignature));
}

#[test]
fn wrong_secret_is_refused() {
    let token = hs(JwtAlgorithm::Hs256, b"not-the-secret", &json!({"sub": "u"}));
    assert_eq!(hs256_verifier().verify(&token), Err(JwtError::BadSignature));
}

#[test]
fn alg_none_token_is_refused() {
    let header = json!({"alg": "none", "typ": "JWT"});
    let payload = json!({"sub": "admin"});
    let sig = hs(JwtAlgorithm::Hs256, SECRET, &payload);
    let sig = sig.rsplit('.').next().unwrap();
    for signature in ["", sig] {
        let token = raw_token(&header, &payload, signature);
        let err = hs256_verifier().verify(&token).unwrap_err();
        assert!(matches!(err, JwtError::WrongAlgorithm { .. }), "{err}");
        assert!(err.to_string().contains("\"none\""), "{err}");
    }
    let upper = raw_token(&json!({"alg": "None"}), &payload, "");
    assert!(matches!(
        hs256_verifier().verify(&upper),
        Err(JwtError::WrongAlgorithm { .. })
    ));
}

#[test]
fn other_hmac_algorithm_is_refused() {
    let token = hs(JwtAlgorithm::Hs512, SECRET, &json!({"sub": "u"}));
    let err = hs256_verifier().verify(&token).unwrap_err();
    assert_eq!(
        err,
        JwtError::WrongAlgorithm {
            expected: JwtAlgorithm::Hs256,
            found: "\"HS512\"".to_owned()
        }
    );
}

#[test]
fn hs256_token_is_refused_by_rs256_verifier() {
    let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap();
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "u"}));
    assert!(matches!(
        verifier.verify(&token),
        Err(JwtError::WrongAlgorithm { .. })
    ));
}

#[test]
fn key_confusion_hs256_signed_with_public_pem_is_refused() {
    let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap();
    let token = hs(JwtAlgorithm::Hs256, RS_PUBLIC, &json!({"sub": "admin"}));
    assert!(matches!(
        verifier.verify(&token),
        Err(JwtError::WrongAlgorithm { .. })
    ));
}

#[test]
fn rs256_token_is_refused_by_es256_verifier() {
    let key = EncodingKey::from_rsa_pem(RS_PRIVATE).unwrap();
    let token = sign(Algorithm::RS256, &key, &json!({"sub": "u"}));
    let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Es256, ES_PUBLIC).unwrap();
    assert!(matches!(
        verifier.verify(&token),
        Err(JwtError::WrongAlgorithm { .. })
    ));
}

#[test]
fn crit_header_is_refused() {
    let payload = json!({"sub": "u"});
    let header = json!({"alg": "HS256", "crit": ["exp"], "exp": 1});
    let token = raw_token(&header, &payload, "");
    assert!(matches!(
        hs256_verifier().verify(&token),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn garbage_strings_are_refused_without_panic() {
    let long = "a".repeat(100_000);
    let dots = ".".repeat(10_000);
    let garbage = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "a.b",
        "a.b.c.d",
        "Bearer x",
        "\0\0\0",
        "eyJ.eyJ.eyJ",
        "ééé.ààà.üüü",
        "🦀.🦀.🦀",
        "%%%.%%%.%%%",
        "e30.e30.",
        "W10.e30.",
        "bnVsbA.e30.",
        "eyJhbGciOjF9.e30.",
        "eyJhbGciOiJIUzI1NiJ9.W10.",
        "eyJhbGciOiJIUzI1NiJ9.bnVsbA.",
        "eyJhbGciOiJIUzI1NiJ9.e30.!!!",
        &long,
        &dots,
    ];
    let verifiers = [
        hs256_verifier(),
        JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap(),
        JwtVerifier::from_public_key_pem(JwtAlgorithm::Es256, ES_PUBLIC).unwrap(),
    ];
    for verifier in &verifiers {
        for token in garbage {
            assert!(verifier.verify(token).is_err(), "{token:.40}");
        }
    }
}

#[test]
fn mutated_tokens_never_panic_and_never_verify() {
    let verifier = hs256_verifier();
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "u", "n": 1}));
    let alphabet = b"AZaz09-_.=+/ \xff";
    for i in 0..token.len() {
        for &b in alphabet {
            let mut bytes = token.clone().into_bytes();
            if bytes[i] == b {
                continue;
            }
            bytes[i] = b;
            let mutated = String::from_utf8_lossy(&bytes);
            // A change in the last base64 character may only touch padding bits.
            if verifier.verify(&mutated).is_ok() {
                assert_eq!(i, token.len() - 1, "{mutated}");
            }
        }
    }
}

#[test]
fn absent_sub_gives_no_user_id() {
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"role": "viewer"}));
    let verified = hs256_verifier().verify(&token).unwrap();
    assert_eq!(verified.user_id, None);
    assert_eq!(verified.metadata.get("role"), Some(&json!("viewer")));
}

#[test]
fn sub_that_is_not_a_non_empty_string_is_refused() {
    for sub in [json!(""), json!(42), json!(null)] {
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": sub}));
        let err = hs256_verifier().verify(&token).unwrap_err();
        assert!(matches!(err, JwtError::InvalidClaim { ref claim, .. } if claim == "sub"));
    }
    // The JWT library's own claim check trips over a non-scalar `sub` first.
    let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": ["a"]}));
    assert!(matches!(
        hs256_verifier().verify(&token),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn metadata_holds_every_claim_but_sub() {
    let exp = now() + 300;
    let claims = json!({
        "sub": "u7", "exp": exp, "aud": "dashboard", "iss": "auth.example",
        "role": "admin", "tenant": {"id": 3, "tags": ["a", "b"]}, "beta": true,
    });
    let token = hs(JwtAlgorithm::Hs256, SECRET, &claims);
    let verified = hs256_verifier().verify(&token).unwrap();
    let mut expected = claims.as_object().unwrap().clone();
    expected.remove("sub");
    assert_eq!(verified.user_id.as_deref(), Some("u7"));
    assert_eq!(verified.metadata, expected);
}

#[test]
fn mint_then_verify_round_trips() {
    let extra: Claims = [
        ("role".to_owned(), json!("admin")),
        ("lvl".to_owned(), json!(3)),
    ]
    .into_iter()
    .collect();
    for alg in [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Hs384,
        JwtAlgorithm::Hs512,
    ] {
        let ttl = Some(Duration::from_secs(60));
        let token = mint_token(alg, SECRET, "bob", ttl, extra.clone()).unwrap();
        let verified = JwtVerifier::from_secret(alg, SECRET)
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(verified.user_id.as_deref(), Some("bob"));
        assert_eq!(verified.metadata["role"], json!("admin"));
        assert_eq!(verified.metadata["lvl"], json!(3));
        let exp = verified.metadata["exp"].as_i64().unwrap();
        assert!((exp - now() - 60).abs() <= 2, "exp {exp}");
        assert!(verified.metadata.contains_key("iat"));
    }
}

#[test]
fn mint_without_ttl_has_no_exp_and_extra_exp_wins() {
    let token = mint_token(JwtAlgorithm::Hs256, SECRET, "bob", None, Claims::new()).unwrap();
    let verified = hs256_verifier().verify(&token).unwrap();
    assert!(!verified.metadata.contains_key("exp"));
    let past: Claims = [("exp".to_owned(), json!(now() - 10))]
        .into_iter()
        .collect();
    let ttl = Some(Duration::from_secs(3600));
    let token = mint_token(JwtAlgorithm::Hs256, SECRET, "bob", ttl, past).unwrap();
    assert_eq!(hs256_verifier().verify(&token), Err(JwtError::Expired));
}

#[test]
fn mint_refuses_bad_inputs() {
    let sub_claim: Claims = [("sub".to_owned(), json!("x"))].into_iter().collect();
    let cases = [
        (JwtAlgorithm::Rs256, SECRET, "u", Claims::new()),
        (JwtAlgorithm::Hs256, &b""[..], "u", Claims::new()),
        (JwtAlgorithm::Hs256, SECRET, "", Claims::new()),
        (JwtAlgorithm::Hs256, SECRET, "u", sub_claim),
    ];
    for (alg, secret, sub, extra) in cases {
        let err = mint_token(alg, secret, sub, None, extra).unwrap_err();
        assert!(matches!(err, JwtError::Mint(_)), "{err}");
    }
}

#[test]
fn parse_claim_parses_json_values_and_falls_back_to_strings() {
    let cases = [
        ("n=42", "n", json!(42)),
        ("f=1.5", "f", json!(1.5)),
        ("ok=true", "ok", json!(true)),
        ("z=null", "z", json!(null)),
        ("o={\"a\":[1,2]}", "o", json!({"a": [1, 2]})),
        ("q=\"42\"", "q", json!("42")),
        ("role=admin", "role", json!("admin")),
        ("empty=", "empty", json!("")),
        ("eq=a=b", "eq", json!("a=b")),
        ("broken={oops", "broken", json!("{oops")),
        ("sp= 7 ", "sp", json!(7)),
    ];
    for (arg, key, value) in cases {
        assert_eq!(parse_claim(arg).unwrap(), (key.to_owned(), value), "{arg}");
    }
    for bad in ["novalue", "=1", ""] {
        assert!(matches!(
            parse_claim(bad),
            Err(JwtError::InvalidClaimArg { .. })
        ));
    }
}

#[test]
fn algorithm_parses_case_insensitively_and_displays_jose_name() {
    for alg in JwtAlgorithm::ALL {
        assert_eq!(alg.as_str().parse::<JwtAlgorithm>(), Ok(alg));
        assert_eq!(alg.as_str().to_lowercase().parse::<JwtAlgorithm>(), Ok(alg));
        assert_eq!(alg.to_string(), alg.as_str());
    }
    assert_eq!(
        "none".parse::<JwtAlgorithm>(),
        Err(JwtConfigError::UnknownAlgorithm("none".to_owned()))
    );
    assert_eq!(JwtAlgorithm::default(), JwtAlgorithm::Hs256);
}

#[test]
fn secret_configuration_mismatches_are_refused() {
    use JwtConfigError as E;
    let from_secret = |alg, secret: &[u8]| JwtVerifier::from_secret(alg, secret).unwrap_err();
    assert_eq!(from_secret(JwtAlgorithm::Hs256, b""), E::EmptySecret);
    assert_eq!(
        from_secret(JwtAlgorithm::Rs256, SECRET),
        E::SecretForPublicKeyAlgorithm(JwtAlgorithm::Rs256)
    );
    assert_eq!(
        from_secret(JwtAlgorithm::Es256, SECRET),
        E::SecretForPublicKeyAlgorithm(JwtAlgorithm::Es256)
    );
    assert_eq!(from_secret(JwtAlgorithm::Hs256, RS_PUBLIC), E::PemAsSecret);
}

#[test]
fn pem_configuration_mismatches_are_refused() {
    use JwtConfigError as E;
    let from_pem = |alg, pem: &[u8]| JwtVerifier::from_public_key_pem(alg, pem).unwrap_err();
    assert_eq!(
        from_pem(JwtAlgorithm::Hs256, RS_PUBLIC),
        E::PublicKeyForHmacAlgorithm(JwtAlgorithm::Hs256)
    );
    assert_eq!(
        from_pem(JwtAlgorithm::Rs256, RS_PRIVATE),
        E::PrivateKeyGiven
    );
    assert_eq!(
        from_pem(JwtAlgorithm::Es256, ES_PRIVATE),
        E::PrivateKeyGiven
    );
    let invalid = [
        (JwtAlgorithm::Rs256, ES_PUBLIC),
        (JwtAlgorithm::Es256, RS_PUBLIC),
        (JwtAlgorithm::Es256, P384_PUBLIC),
        (JwtAlgorithm::Rs256, &b""[..]),
        (JwtAlgorithm::Rs256, &b"not a pem"[..]),
        (
            JwtAlgorithm::Es256,
            &b"-----BEGIN PUBLIC KEY-----\ngarbage\n"[..],
        ),
    ];
    for (alg, pem) in invalid {
        let err = from_pem(alg, pem);
        assert!(matches!(err, E::InvalidPublicKey { .. }), "{alg}: {err}");
    }
}

#[test]
fn config_errors_name_the_flags_to_change() {
    let err = JwtVerifier::from_secret(JwtAlgorithm::Rs256, SECRET).unwrap_err();
    assert!(err.to_string().contains("--jwt-public-key"), "{err}");
    let err = JwtVerifier::from_public_key_pem(JwtAlgorithm::Hs256, RS_PUBLIC).unwrap_err();
    assert!(err.to_string().contains("--jwt-secret"), "{err}");
}
