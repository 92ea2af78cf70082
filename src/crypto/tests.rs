//! Unit tests of the handshake and the session cipher, against the Ignis interop
//! vectors in `tests/fixtures/ecdh.json` and on their own.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::SecretKey;
use p256::pkcs8::DecodePrivateKey;
use serde_json::Value;

use super::handshake::{accept_with, parse_public_key, secret_from_scalar};
use super::iv::{IV_POOL_LEN, random_iv};
use super::*;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ecdh.json"
));

/// One Ignis vector, fields as strings.
struct Vector(Value);

impl Vector {
    fn s(&self, key: &str) -> &str {
        self.0[key]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {key}"))
    }
    fn d(&self, side: &str) -> Vec<u8> {
        let d = URL_SAFE_NO_PAD.decode(self.s(&format!("{side}_private_d_b64url")));
        d.expect("d is base64url")
    }
    fn iv(&self) -> [u8; IV_LEN] {
        let iv = STANDARD.decode(self.s("iv_b64")).expect("iv b64");
        iv.try_into().expect("12-byte iv")
    }
    fn sealed(&self) -> Sealed {
        Sealed {
            iv: self.s("iv_b64").into(),
            ct: self.s("ct_b64").into(),
        }
    }
}

fn vectors() -> Vec<Vector> {
    let doc: Value = serde_json::from_str(VECTORS).expect("fixture is JSON");
    let list = doc["vectors"].as_array().expect("vectors array").clone();
    assert!(!list.is_empty());
    list.into_iter().map(Vector).collect()
}

/// The raw ECDH shared secret (x coordinate) of a fixed scalar and a peer key.
fn shared_secret(scalar: &[u8], peer_b64: &str) -> [u8; 32] {
    let secret = secret_from_scalar(scalar).expect("scalar");
    let peer = parse_public_key(peer_b64, "publicKey").expect("peer key");
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
    (*shared.raw_secret_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::new(), |hex, b| hex + &format!("{b:02x}"))
}

/// Decrypts the vector's `ct`, re-encrypts its plaintext to exactly `ct`, and seals
/// the exact frame text.
fn assert_session_matches(cipher: &SessionCipher, v: &Vector) {
    let plaintext = v.s("plaintext").as_bytes();
    let got = cipher
        .decrypt(v.s("iv_b64"), v.s("ct_b64"))
        .expect("vector decrypts");
    assert_eq!(got, plaintext);
    assert_eq!(cipher.encrypt_with_iv(v.iv(), plaintext), v.sealed());
    let mut frame = b"prefix".to_vec();
    cipher.seal_event_json_with_iv(v.iv(), plaintext, &mut frame);
    let want = format!(
        r#"prefix{{"event":"encrypted","data":{{"iv":"{}","ct":"{}"}}}}"#,
        v.s("iv_b64"),
        v.s("ct_b64")
    );
    assert_eq!(String::from_utf8(frame).expect("utf-8"), want);
    assert_eq!(
        want.len() - "prefix".len(),
        sealed_frame_len(plaintext.len())
    );
}

#[test]
fn vectors_fixture_is_for_our_info_string() {
    for v in vectors() {
        assert_eq!(v.s("hkdf_info").as_bytes(), HKDF_INFO);
    }
}

#[test]
fn vectors_pkcs8_and_raw_scalar_agree() {
    for v in vectors() {
        for side in ["client", "server"] {
            let der = STANDARD
                .decode(v.s(&format!("{side}_private_pkcs8_b64")))
                .expect("b64");
            let key = SecretKey::from_pkcs8_der(&der).expect("PKCS#8 P-256 key");
            assert_eq!(key.to_bytes()[..], v.d(side)[..], "{side}");
            let pair = ClientKeyPair::from_scalar_bytes(&v.d(side)).expect("scalar");
            assert_eq!(
                pair.public_key_b64(),
                v.s(&format!("{side}_public_raw_b64"))
            );
        }
    }
}

#[test]
fn vectors_shared_secret_both_sides() {
    for v in vectors() {
        let c = shared_secret(&v.d("client"), v.s("server_public_raw_b64"));
        let s = shared_secret(&v.d("server"), v.s("client_public_raw_b64"));
        assert_eq!(hex(&c), v.s("shared_secret_hex"), "client side");
        assert_eq!(hex(&s), v.s("shared_secret_hex"), "server side");
    }
}

#[test]
fn vectors_server_side() {
    for v in vectors() {
        let salt = STANDARD.decode(v.s("salt_b64")).expect("salt");
        let server = secret_from_scalar(&v.d("server")).expect("scalar");
        let (cipher, reply) = accept_with(&server, &salt, v.s("client_public_raw_b64"))
            .expect("server accepts the Ignis client key");
        assert_eq!(reply.server_public_key, v.s("server_public_raw_b64"));
        assert_eq!(reply.salt, v.s("salt_b64"));
        assert_session_matches(&cipher, &v);
    }
}

#[test]
fn vectors_client_side() {
    for v in vectors() {
        let pair = ClientKeyPair::from_scalar_bytes(&v.d("client")).expect("scalar");
        let cipher = pair
            .complete(v.s("server_public_raw_b64"), v.s("salt_b64"))
            .expect("client completes");
        assert_session_matches(&cipher, &v);
    }
}

#[test]
fn vectors_derive_session_key_directly() {
    for v in vectors() {
        let secret = shared_secret(&v.d("client"), v.s("server_public_raw_b64"));
        let salt = STANDARD.decode(v.s("salt_b64")).expect("salt");
        let key = derive_session_key(&secret, &salt);
        assert_session_matches(&SessionCipher::from_key_bytes(*key), &v);
    }
}

fn handshake() -> (SessionCipher, SessionCipher) {
    let client = ClientKeyPair::generate();
    let (server, reply) = accept_client_key(&client.public_key_b64()).expect("accept");
    assert_eq!(STANDARD.decode(&reply.salt).expect("salt").len(), SALT_LEN);
    let client = client
        .complete(&reply.server_public_key, &reply.salt)
        .expect("complete");
    (server, client)
}

#[test]
fn round_trip_server_client_both_ways() {
    let (server, client) = handshake();
    let down = server.encrypt(br#"{"event":"a","data":[1]}"#);
    assert_eq!(
        client.decrypt(&down.iv, &down.ct).expect("down"),
        br#"{"event":"a","data":[1]}"#
    );
    let up = client.encrypt(b"");
    assert_eq!(server.decrypt(&up.iv, &up.ct).expect("up"), b"");
}

#[test]
fn each_handshake_uses_a_fresh_server_key_and_salt() {
    let client = ClientKeyPair::generate();
    let (_, a) = accept_client_key(&client.public_key_b64()).expect("a");
    let (_, b) = accept_client_key(&client.public_key_b64()).expect("b");
    assert_ne!(a.server_public_key, b.server_public_key);
    assert_ne!(a.salt, b.salt);
}

#[test]
fn random_ivs_never_repeat_across_pool_refills() {
    let ivs: std::collections::HashSet<_> =
        (0..3 * IV_POOL_LEN / IV_LEN).map(|_| random_iv()).collect();
    assert_eq!(ivs.len(), 3 * IV_POOL_LEN / IV_LEN);
    let (server, _) = handshake();
    assert_ne!(server.encrypt(b"x").iv, server.encrypt(b"x").iv);
}

#[test]
fn malformed_public_keys_are_errors() {
    let good = STANDARD
        .decode(ClientKeyPair::generate().public_key_b64())
        .expect("b64");
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    let mut compressed = vec![0x02 | (good[64] & 1)];
    compressed.extend_from_slice(&good[1..33]);
    let mut wrong_tag = good.clone();
    wrong_tag[0] = 0x06;
    let cases: [(&str, String, CryptoError); 8] = [
        ("empty", String::new(), CryptoError::InvalidPublicKey),
        (
            "identity",
            STANDARD.encode([0u8]),
            CryptoError::InvalidPublicKey,
        ),
        (
            "short",
            STANDARD.encode(&good[..64]),
            CryptoError::InvalidPublicKey,
        ),
        (
            "off curve",
            STANDARD.encode(&off_curve),
            CryptoError::InvalidPublicKey,
        ),
        (
            "compressed",
            STANDARD.encode(&compressed),
            CryptoError::InvalidPublicKey,
        ),
        (
            "hybrid tag",
            STANDARD.encode(&wrong_tag),
            CryptoError::InvalidPublicKey,
        ),
        (
            "not base64",
            "BK!!".into(),
            CryptoError::InvalidBase64 { field: "publicKey" },
        ),
        (
            "base64url",
            URL_SAFE_NO_PAD.encode(&good),
            CryptoError::InvalidBase64 { field: "publicKey" },
        ),
    ];
    for (name, b64, want) in cases {
        assert_eq!(accept_client_key(&b64).err(), Some(want), "server: {name}");
    }
    let client = ClientKeyPair::generate();
    let salt = STANDARD.encode([7u8; SALT_LEN]);
    let bad = client.complete(&STANDARD.encode(&compressed), &salt).err();
    assert_eq!(bad, Some(CryptoError::InvalidPublicKey));
}

#[test]
fn bad_salts_are_errors() {
    let client = ClientKeyPair::generate();
    let (_, reply) = accept_client_key(&client.public_key_b64()).expect("accept");
    let short = STANDARD.encode([1u8; 16]);
    let want = Some(CryptoError::InvalidSalt);
    assert_eq!(
        client.complete(&reply.server_public_key, &short).err(),
        want
    );
    assert_eq!(client.complete(&reply.server_public_key, "").err(), want);
    let bad = client.complete(&reply.server_public_key, "%%%%").err();
    assert_eq!(bad, Some(CryptoError::InvalidBase64 { field: "salt" }));
}

#[test]
fn bad_private_scalars_are_errors() {
    let want = Some(CryptoError::InvalidPrivateKey);
    assert_eq!(ClientKeyPair::from_scalar_bytes(&[0u8; 32]).err(), want);
    assert_eq!(ClientKeyPair::from_scalar_bytes(&[1u8; 31]).err(), want);
    assert_eq!(ClientKeyPair::from_scalar_bytes(&[0xffu8; 32]).err(), want);
}

#[test]
fn tampering_gives_decryption_failed() {
    let (server, client) = handshake();
    let sealed = server.encrypt(br#"{"event":"x","data":"secret"}"#);
    let iv = STANDARD.decode(&sealed.iv).expect("iv");
    let ct = STANDARD.decode(&sealed.ct).expect("ct");
    let flip = |bytes: &[u8], at: usize| {
        let mut v = bytes.to_vec();
        v[at] ^= 0x80;
        STANDARD.encode(v)
    };
    let failed = Err(CryptoError::DecryptionFailed);
    assert_eq!(client.decrypt(&flip(&iv, 0), &sealed.ct), failed, "iv");
    assert_eq!(
        client.decrypt(&sealed.iv, &flip(&ct, 0)),
        failed,
        "ciphertext"
    );
    assert_eq!(
        client.decrypt(&sealed.iv, &flip(&ct, ct.len() - 1)),
        failed,
        "tag"
    );
    assert_eq!(
        client.decrypt(&sealed.iv, &STANDARD.encode(&ct[..15])),
        failed,
        "short"
    );
    assert_eq!(client.decrypt(&sealed.iv, ""), failed, "empty ct");
    assert_eq!(
        client.decrypt(&STANDARD.encode(&iv[..8]), &sealed.ct),
        failed,
        "iv length"
    );
    let (_, stranger) = handshake();
    assert_eq!(
        stranger.decrypt(&sealed.iv, &sealed.ct),
        failed,
        "other session"
    );
    let bad = client.decrypt("not base64!", &sealed.ct);
    assert_eq!(bad, Err(CryptoError::InvalidBase64 { field: "iv" }));
}

#[test]
fn seal_event_json_is_an_encrypted_frame_that_decrypts_back() {
    let (server, client) = handshake();
    let plaintext = br#"{"event":"room:update","data":{"text":"h\u00e9llo","n":[1,2,3]}}"#;
    let mut out = Vec::new();
    for _ in 0..3 {
        out.clear();
        server.seal_event_json(plaintext, &mut out);
        assert_eq!(out.len(), sealed_frame_len(plaintext.len()));
        let frame: Value = serde_json::from_slice(&out).expect("frame is JSON");
        let obj = frame.as_object().expect("object");
        assert_eq!(obj.len(), 2);
        assert_eq!(frame["event"], "encrypted");
        let data = frame["data"].as_object().expect("data object");
        assert_eq!(data.len(), 2);
        let (iv, ct) = (
            data["iv"].as_str().expect("iv"),
            data["ct"].as_str().expect("ct"),
        );
        assert_eq!(iv.len(), 16);
        assert_eq!(client.decrypt(iv, ct).expect("decrypts"), plaintext);
    }
}

#[test]
fn seal_event_json_appends_and_handles_every_length() {
    let (server, client) = handshake();
    for len in 0..50 {
        let plaintext = vec![b'a'; len];
        let mut out = b"keep".to_vec();
        server.seal_event_json(&plaintext, &mut out);
        assert!(out.starts_with(b"keep"));
        let frame: Value = serde_json::from_slice(&out[4..]).expect("JSON");
        let data = &frame["data"];
        let got = client.decrypt(
            data["iv"].as_str().expect("iv"),
            data["ct"].as_str().expect("ct"),
        );
        assert_eq!(got.expect("decrypts"), plaintext, "len {len}");
    }
}

#[test]
fn debug_never_prints_key_material() {
    let key = [0xabu8; 32];
    let shown = format!("{:?}", SessionCipher::from_key_bytes(key));
    assert_eq!(shown, "SessionCipher { .. }");
    let pair = ClientKeyPair::from_scalar_bytes(&key).expect("scalar");
    let shown = format!("{pair:?}");
    assert!(shown.contains(&pair.public_key_b64()));
    assert!(!shown.to_lowercase().contains("abab"));
}
