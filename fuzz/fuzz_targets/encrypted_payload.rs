//! Arbitrary `iv`/`ct` strings through `SessionCipher::decrypt` with a fixed key, and
//! arbitrary `data` JSON through the connection's `{"iv","ct"}` decoder.
//!
//! Input: the whole input as the `data` JSON; also split at its first `\n` into `iv` and
//! `ct` strings (lossy UTF-8).
//! Invariants: no panic; whatever decrypts re-encrypts under the same IV to the same
//! ciphertext bytes; the connection's decoder agrees with `decrypt` on any `data` that
//! is an object (without duplicate keys) with string `iv` and `ct`.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use shardcast::crypto::{IV_LEN, SessionCipher};
use shardcast::internals::decrypt_inbound;

/// The session key the seeds are sealed with (`examples/seeds.rs`).
const KEY: [u8; 32] = [7; 32];

/// Base64 as the cipher reads it (standard, padded, trailing bits allowed).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

fn check_decrypt(cipher: &SessionCipher, iv: &str, ct: &str) {
    let Ok(plain) = cipher.decrypt(iv, ct) else {
        return;
    };
    let iv: [u8; IV_LEN] = LENIENT.decode(iv).unwrap().try_into().unwrap();
    let sealed = cipher.encrypt_with_iv(iv, &plain);
    assert_eq!(
        LENIENT.decode(&sealed.ct).unwrap(),
        LENIENT.decode(ct).unwrap()
    );
}

fn check_inbound(cipher: &SessionCipher, text: &str) {
    let Ok(raw) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    let got = decrypt_inbound(cipher, Some(raw));
    // Compared on plain objects only: serde_json's `Value` refuses some JSON (`1e999`),
    // keeps the last of duplicate keys where the decoder refuses them, and a derived
    // struct also reads `[iv, ct]` (still authenticated, so harmless).
    let Some((iv, ct)) = plain_object_iv_ct(text) else {
        return;
    };
    assert_eq!(
        got,
        cipher.decrypt(&iv, &ct).ok(),
        "decoder and decrypt disagree"
    );
}

/// `iv` and `ct` of a JSON object without duplicate keys, when both are strings.
fn plain_object_iv_ct(text: &str) -> Option<(String, String)> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let keys = serde_json::from_str::<KeyCount>(text).ok()?.0;
    if keys != map.len() {
        return None;
    }
    let string = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Some((string("iv")?, string("ct")?))
}

/// The number of keys of a JSON object, duplicates included.
struct KeyCount(usize);

impl<'de> serde::Deserialize<'de> for KeyCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = KeyCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeyCount, A::Error> {
                let mut n = 0;
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {
                    n += 1;
                }
                Ok(KeyCount(n))
            }
        }
        d.deserialize_map(Counter)
    }
}

fuzz_target!(|data: &[u8]| {
    let cipher = SessionCipher::from_key_bytes(KEY);
    let text = String::from_utf8_lossy(data);
    check_inbound(&cipher, &text);
    let (iv, ct) = text.split_once('\n').unwrap_or((&text, ""));
    check_decrypt(&cipher, iv, ct);
});
