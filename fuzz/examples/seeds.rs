//! Writes the seed corpora under `fuzz/corpus/<target>/seed-*`, reproducibly:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (from the repository root).
//!
//! Each target gets realistic valid inputs plus the edge cases its parser must refuse.
//! Existing `seed-*` files are replaced; other files in the corpus directories are left.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use shardcast::auth::jwt::{JwtAlgorithm, mint_token};
use shardcast::crypto::SessionCipher;

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut frames = ws_frames();
    frames.extend(ws_deflate_frames());
    let targets: [(&str, Seeds); 8] = [
        ("ws_frame_decoder", frames),
        ("ws_extensions", extension_offers()),
        ("http_head", http_heads()),
        ("inbound_message", inbound_messages()),
        ("redis_envelope", envelopes()),
        ("room_rules", room_rules()),
        ("jwt_header", jwt_tokens()),
        ("encrypted_payload", encrypted_payloads()),
    ];
    for (target, seeds) in targets {
        write_seeds(&root.join(target), &seeds)?;
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}

fn write_seeds(dir: &PathBuf, seeds: &Seeds) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        {
            fs::remove_file(path)?;
        }
    }
    for (name, bytes) in seeds {
        fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}

// ---- ws_frame_decoder: [config, cut seed, stream…] -------------------------------------

/// Config byte: max payload index (low 3 bits: 0, 1, 16, 125, 126, 1024, 65536, 131072)
/// and the event at which the callback says Stop (bits 3..6, 0 = never).
const fn config(max_index: u8, stop_at: u8) -> u8 {
    max_index | (stop_at << 3)
}

/// A masked client frame with `first` as its first byte (FIN, RSV, opcode).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn stream(config: u8, cut: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![config, cut];
    frames.iter().for_each(|f| out.extend_from_slice(f));
    out
}

/// A message body as permessage-deflate sends it (RSV1 goes on the frame).
fn deflated(payload: &[u8]) -> Vec<u8> {
    let frame = shardcast::internals::ws::Deflater::default()
        .compress(shardcast::internals::ws::OpCode::Text, payload, 15, false)
        .expect("a full window compresses");
    let skip = match frame[1] {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    frame[skip..].to_vec()
}

/// Streams for a decoder with permessage-deflate negotiated (cut byte's high bit).
fn ws_deflate_frames() -> Seeds {
    let auth = br#"{"event":"authenticate","data":{"token":"alice"}}"#;
    let body = deflated(auth);
    let (head, tail) = body.split_at(body.len() / 2);
    let bomb = deflated(&[b' '; 200_000]);
    vec![
        (
            "deflate-text",
            stream(config(5, 0), 0x81, &[client_frame(0xC1, &body)]),
        ),
        (
            "deflate-fragmented",
            stream(
                config(5, 0),
                0x85,
                &[
                    client_frame(0x41, head),
                    client_frame(0x89, b"p"),
                    client_frame(0x80, tail),
                ],
            ),
        ),
        (
            "deflate-bomb",
            stream(config(5, 0), 0x83, &[client_frame(0xC2, &bomb)]),
        ),
        (
            "deflate-rsv1-continuation",
            stream(
                config(5, 0),
                0x82,
                &[client_frame(0x41, head), client_frame(0xC0, tail)],
            ),
        ),
        (
            "deflate-garbage",
            stream(config(5, 0), 0x81, &[client_frame(0xC1, &[0xff; 8])]),
        ),
    ]
}

// ---- ws_extensions: header values, one per line -----------------------------------------

fn extension_offers() -> Seeds {
    vec![
        (
            "browser",
            b"permessage-deflate; client_max_window_bits".to_vec(),
        ),
        (
            "autobahn-window",
            b"permessage-deflate; client_no_context_takeover; client_max_window_bits; \
              server_no_context_takeover; server_max_window_bits=9"
                .to_vec(),
        ),
        (
            "several",
            b"x-webkit-deflate-frame, permessage-deflate; mystery\npermessage-deflate; \
              client_max_window_bits=\"10\""
                .to_vec(),
        ),
        (
            "quoted-comma",
            b"x-other; p=\"a,permessage-deflate\", permessage-deflate; server_max_window_bits=15"
                .to_vec(),
        ),
    ]
}

fn ws_frames() -> Seeds {
    let auth = br#"{"event":"authenticate","data":{"token":"alice"}}"#;
    let join = br#"{"event":"join","data":{"rooms":["public-news"]}}"#;
    let close = |code: u16, reason: &[u8]| {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        client_frame(0x88, &p)
    };
    vec![
        (
            "text-auth",
            stream(config(5, 0), 1, &[client_frame(0x81, auth)]),
        ),
        (
            "text-then-join",
            stream(
                config(7, 0),
                9,
                &[client_frame(0x81, auth), client_frame(0x81, join)],
            ),
        ),
        (
            "binary",
            stream(config(5, 0), 3, &[client_frame(0x82, b"\x00\x01bin")]),
        ),
        (
            "empty-text",
            stream(config(0, 0), 0, &[client_frame(0x81, b"")]),
        ),
        (
            "len16",
            stream(config(5, 0), 5, &[client_frame(0x81, &[b'a'; 200])]),
        ),
        (
            "len64",
            stream(config(7, 0), 7, &[client_frame(0x82, &[b'z'; 70_000])]),
        ),
        (
            "fragmented-ping",
            stream(
                config(5, 0),
                2,
                &[
                    client_frame(0x01, b"he"),
                    client_frame(0x89, b"p"),
                    client_frame(0x00, b"ll"),
                    client_frame(0x80, b"o"),
                ],
            ),
        ),
        (
            "ping-pong",
            stream(
                config(3, 0),
                4,
                &[
                    client_frame(0x89, b"hi"),
                    client_frame(0x8a, b""),
                    client_frame(0x89, &[b'x'; 125]),
                ],
            ),
        ),
        (
            "close-code",
            stream(
                config(5, 0),
                6,
                &[close(1000, b"bye"), client_frame(0x81, b"after close")],
            ),
        ),
        (
            "close-empty",
            stream(config(5, 0), 8, &[client_frame(0x88, b"")]),
        ),
        (
            "close-one-byte",
            stream(config(5, 0), 8, &[client_frame(0x88, b"\x03")]),
        ),
        (
            "stop-after-first",
            stream(
                config(5, 1),
                1,
                &[client_frame(0x81, auth), client_frame(0x81, join)],
            ),
        ),
        (
            "unmasked",
            stream(config(5, 0), 0, &[vec![0x81, 0x03, b'a', b'b', b'c']]),
        ),
        (
            "rsv1",
            stream(config(5, 0), 0, &[client_frame(0xc1, b"deflated?")]),
        ),
        (
            "reserved-opcode",
            stream(config(5, 0), 0, &[client_frame(0x83, b"op3")]),
        ),
        (
            "reserved-control",
            stream(config(5, 0), 0, &[client_frame(0x8b, b"opB")]),
        ),
        (
            "orphan-continuation",
            stream(config(5, 0), 0, &[client_frame(0x80, b"orphan")]),
        ),
        (
            "text-inside-fragments",
            stream(
                config(5, 0),
                0,
                &[client_frame(0x01, b"a"), client_frame(0x81, b"b")],
            ),
        ),
        (
            "fragmented-control",
            stream(config(5, 0), 0, &[client_frame(0x09, b"p")]),
        ),
        (
            "control-too-long",
            stream(config(7, 0), 0, &[client_frame(0x89, &[b'x'; 126])]),
        ),
        (
            "oversize-frame",
            stream(config(2, 0), 1, &[client_frame(0x81, &[b'a'; 17])]),
        ),
        (
            "oversize-fragments",
            stream(
                config(2, 0),
                1,
                &[
                    client_frame(0x01, &[b'a'; 10]),
                    client_frame(0x80, &[b'b'; 10]),
                ],
            ),
        ),
        (
            "max-zero",
            stream(config(0, 0), 0, &[client_frame(0x81, b"x")]),
        ),
        (
            "huge-length",
            stream(
                config(7, 0),
                0,
                &[vec![
                    0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
                ]],
            ),
        ),
        (
            "non-minimal-length",
            stream(
                config(5, 0),
                0,
                &[vec![0x81, 0x80 | 126, 0, 3, 0, 0, 0, 0, b'a', b'b', b'c']],
            ),
        ),
        (
            "incomplete-header",
            stream(config(5, 0), 0, &[vec![0x81, 0xfe, 0x01]]),
        ),
        (
            "incomplete-payload",
            stream(
                config(5, 0),
                2,
                &[
                    client_frame(0x81, b"complete"),
                    client_frame(0x81, b"incomplete")[..9].to_vec(),
                ],
            ),
        ),
        (
            "utf8-text",
            stream(
                config(5, 0),
                3,
                &[client_frame(0x81, "héllo 🦀".as_bytes())],
            ),
        ),
    ]
}

// ---- http_head ---------------------------------------------------------------------------

fn http_heads() -> Seeds {
    let many_headers: String = (0..60).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    vec![
        ("upgrade", b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://localhost\r\n\r\n".to_vec()),
        ("upgrade-browser", b"GET /ws?token=abc HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\nPragma: no-cache\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".to_vec()),
        ("publish", b"POST /api/publish HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer K\r\nContent-Type: application/json\r\nContent-Length: 63\r\n\r\n{\"type\":\"room\",\"target\":\"public-news\",\"event\":\"hello\",\"data\":1}".to_vec()),
        ("health-http10", b"GET /health HTTP/1.0\r\n\r\n".to_vec()),
        ("metrics-keepalive", b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec()),
        ("pipelined", b"GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec()),
        ("chunked", b"POST /api/publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()),
        ("partial", b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgr".to_vec()),
        ("too-many-headers", format!("GET / HTTP/1.1\r\n{many_headers}\r\n").into_bytes()),
        ("bare-lf", b"GET /ws HTTP/1.1\nHost: a\nUpgrade: websocket\n\n".to_vec()),
        ("leading-crlf", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        ("absolute-uri", b"GET http://example.com/ws?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec()),
        ("obs-fold", b"GET / HTTP/1.1\r\nX-Long: a\r\n b\r\n\r\n".to_vec()),
        ("non-utf8-value", b"GET / HTTP/1.1\r\nX-Bin: \xff\xfe\x80\r\n\r\n".to_vec()),
        ("duplicate-content-length", b"POST /api/publish HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc".to_vec()),
        ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec()),
        ("lowercase-method", b"get /ws http/1.1\r\n\r\n".to_vec()),
        ("space-in-header-name", b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec()),
        ("empty", Vec::new()),
    ]
}

// ---- inbound_message ---------------------------------------------------------------------

fn inbound_messages() -> Seeds {
    let emoji_room = "😀".repeat(128);
    let seeds: Vec<(&'static str, String)> = vec![
        ("authenticate", json!({"event": "authenticate", "data": {"token": "alice"}}).to_string()),
        ("authenticate-key", r#"{"event":"authenticate","data":{"token":"eyJ.x.y","publicKey":"BAAA"}}"#.to_owned()),
        ("join", r#"{"event":"join","data":{"rooms":["public-news","chat-1"]}}"#.to_owned()),
        ("join-mixed", r#"{"event":"join","data":{"rooms":["a",1,"",null,"ws:x","b",{"r":1},["c"]]}}"#.to_owned()),
        ("join-emoji", format!(r#"{{"event":"join","data":{{"rooms":["{emoji_room}","{emoji_room}😀"]}}}}"#)),
        ("join-not-array", r#"{"event":"join","data":{"rooms":"public-news"}}"#.to_owned()),
        ("leave", r#"{"event":"leave","data":{"rooms":["public-news"]}}"#.to_owned()),
        ("custom-with-id", r#"{"event":"chat","data":{"text":"hi","n":[1,2.5,-3e10]},"id":"m1"}"#.to_owned()),
        ("numeric-id", r#"{"id":42,"event":"ping","data":null}"#.to_owned()),
        ("encrypted", r#"{"event":"encrypted","data":{"iv":"AAAAAAAAAAAAAAAA","ct":"AAAAAAAAAAAAAAAAAAAAAA=="}}"#.to_owned()),
        ("escaped-event", r#"{"\u0065vent":"a\"b\u00e9","data":"\ud83e\udd80"}"#.to_owned()),
        ("duplicate-keys", r#"{"event":"a","event":"b","data":1,"data":2}"#.to_owned()),
        ("whitespace", " \t\n{ \"event\" : \"x\" , \"data\" : [ ] }\r\n".to_owned()),
        ("empty-object", "{}".to_owned()),
        ("empty-event", r#"{"event":""}"#.to_owned()),
        ("event-not-string", r#"{"event":5,"data":{}}"#.to_owned()),
        ("array", r#"[1,{"event":"a"}]"#.to_owned()),
        ("number", "123".to_owned()),
        ("huge-number", "1e400".to_owned()),
        ("nested", format!(r#"{{"event":"deep","data":{}{}}}"#, "[".repeat(100), "]".repeat(100))),
        ("trailing-garbage", r#"{"event":"a"} x"#.to_owned()),
        ("single-quotes", "{'event':'a'}".to_owned()),
        ("truncated", r#"{"event":"join","data":{"rooms":["a""#.to_owned()),
    ];
    let mut out: Seeds = seeds
        .into_iter()
        .map(|(n, s)| (n, s.into_bytes()))
        .collect();
    out.push(("not-utf8", b"{\"event\":\"\xff\xfe\"}".to_vec()));
    out
}

// ---- redis_envelope ----------------------------------------------------------------------

fn envelopes() -> Seeds {
    let seeds: &[(&'static str, &str)] = &[
        (
            "room",
            r#"{"serverId":"emitter","type":"room","target":"lobby","event":"tick","data":{"n":1}}"#,
        ),
        (
            "client",
            r#"{"serverId":"6f1c2e3a-1b2c-4d5e-8f90-0123456789ab","type":"client","target":"5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab","event":"e","data":"x"}"#,
        ),
        (
            "user",
            r#"{"serverId":"s1","type":"user","target":"u1","event":"notify","data":[1,"two",{"three":3}]}"#,
        ),
        (
            "broadcast-exclude",
            r#"{"serverId":"s1","type":"broadcast","event":"all","data":null,"exclude":["5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab",1,null,"x"]}"#,
        ),
        (
            "room-exclude-null",
            r#"{"serverId":"s1","type":"room","target":"r","event":"e","exclude":null}"#,
        ),
        (
            "user-exclude-dropped",
            r#"{"serverId":"s1","type":"user","target":"u","event":"e","exclude":["a"]}"#,
        ),
        (
            "numbers",
            r#"{"serverId":"s","type":"room","target":"r","event":"n","data":[0,-0,1.5,-2.25e-7,1e21,1e20,12345678901234567890,-9223372036854775808,3.0,1E2,0.1]}"#,
        ),
        (
            "strings",
            r#"{"serverId":"s","type":"room","target":"r\u00e9","event":"\u0000\b\f\n\r\t\"\\\/","data":"\u2028\ud83e\udd80é\u001f"}"#,
        ),
        (
            "whitespace",
            " {\n \"serverId\" : \"s\" ,\t\"type\":\"broadcast\",\"event\":\"e\",\"data\":{ \"a\" : [ 1 , 2 ] } } ",
        ),
        (
            "duplicate-keys",
            r#"{"serverId":"a","serverId":"b","type":"user","type":"room","target":"r","event":"e","data":1,"data":2}"#,
        ),
        (
            "broadcast-target-ignored",
            r#"{"serverId":"s","type":"broadcast","target":"ignored","event":"e"}"#,
        ),
        (
            "empty-event",
            r#"{"serverId":"s","type":"broadcast","event":""}"#,
        ),
        (
            "nested-data",
            r#"{"serverId":"s","type":"room","target":"r","event":"e","data":{"a":{"b":{"c":[[[[{}]]]]}}}}"#,
        ),
        (
            "bad-client-target",
            r#"{"serverId":"s","type":"client","target":"not-a-uuid","event":"e"}"#,
        ),
        (
            "empty-target",
            r#"{"serverId":"s","type":"room","target":"","event":"e"}"#,
        ),
        (
            "unknown-type",
            r#"{"serverId":"s","type":"everyone","event":"e"}"#,
        ),
        ("missing-server-id", r#"{"type":"broadcast","event":"e"}"#),
        (
            "event-not-string",
            r#"{"serverId":"s","type":"broadcast","event":1}"#,
        ),
        (
            "exclude-not-array",
            r#"{"serverId":"s","type":"broadcast","event":"e","exclude":"x"}"#,
        ),
        ("array", r#"[{"serverId":"s"}]"#),
        (
            "big-integer",
            r#"{"serverId":"s","type":"broadcast","event":"e","data":123456789012345678901234567890}"#,
        ),
        (
            "truncated",
            r#"{"serverId":"s","type":"broadcast","event":"e","data":{"a":"#,
        ),
        ("empty", ""),
    ];
    seeds
        .iter()
        .map(|(n, s)| (*n, s.as_bytes().to_vec()))
        .collect()
}

// ---- room_rules: patterns \0 room \0 user ------------------------------------------------

fn room_rules() -> Seeds {
    let seed = |patterns: &str, room: &str, user: Option<&str>| {
        let mut out = format!("{patterns}\0{room}").into_bytes();
        if let Some(user) = user {
            out.push(0);
            out.extend_from_slice(user.as_bytes());
        }
        out
    };
    let long_a = "a".repeat(2000);
    vec![
        ("public-star", seed("public-*", "public-news", None)),
        (
            "policy-set",
            seed(
                "public-*\nchat-?\nuser-{userId}-*",
                "user-42-inbox",
                Some("42"),
            ),
        ),
        (
            "user-mismatch",
            seed("user-{userId}-*", "user-42-inbox", Some("7")),
        ),
        ("user-missing", seed("{userId}", "alice", None)),
        ("user-empty", seed("{userId}", "", Some(""))),
        (
            "user-wildcards",
            seed("user-{userId}-inbox", "user-*-inbox", Some("*")),
        ),
        ("question-unicode", seed("??", "🦀é", None)),
        (
            "stars-anywhere",
            seed("*-room-*\na*b*c", "a-room-b-room-c", None),
        ),
        (
            "pathological",
            seed("*a*a*a*a*a*a*a*a*a*a*b", &long_a, None),
        ),
        ("pathological-any", seed("?*?*?*?*?*?*?*?*b", &long_a, None)),
        ("many-stars", seed("a***b", "a-x-b", None)),
        ("literal-exact", seed("lobby", "Lobby", None)),
        ("unknown-placeholder", seed("{team}-*", "x-y", None)),
        ("unbalanced", seed("{userId\na}b", "a", Some("u"))),
        ("nested-braces", seed("{{userId}}", "{u}", Some("u"))),
        ("empty-pattern", seed("ok-*\n", "ok-1", None)),
        ("reserved-room", seed("*", "ws:internal", None)),
        ("long-room", seed("*", &"x".repeat(257), None)),
        ("emoji-room", seed("*", &"😀".repeat(129), None)),
        ("star-alone", seed("*", "", None)),
    ]
}

// ---- jwt_header: tokens for an HS256 verifier with secret "fuzz-secret" ------------------

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_with_header(header: &str) -> Vec<u8> {
    format!(
        "{}.{}.c2ln",
        b64url(header.as_bytes()),
        b64url(br#"{"sub":"alice"}"#)
    )
    .into_bytes()
}

fn minted(sub: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut claims: serde_json::Map<String, serde_json::Value> =
        [("iat".to_owned(), json!(1_700_000_000))]
            .into_iter()
            .collect();
    if let serde_json::Value::Object(extra) = extra {
        claims.extend(extra);
    }
    mint_token(JwtAlgorithm::Hs256, b"fuzz-secret", sub, None, claims)
        .expect("mints")
        .into_bytes()
}

fn jwt_tokens() -> Seeds {
    let long_alg = format!(r#"{{"alg":"{}"}}"#, "\\u0041".repeat(200));
    vec![
        ("valid", minted("alice", json!({}))),
        (
            "valid-exp",
            minted("bob", json!({"exp": 4_102_444_800u64, "role": "admin"})),
        ),
        ("expired", minted("carol", json!({"exp": 1}))),
        (
            "not-yet-valid",
            minted("dave", json!({"nbf": 4_102_444_800u64})),
        ),
        ("bad-exp-type", minted("erin", json!({"exp": "tomorrow"}))),
        (
            "alg-none",
            token_with_header(r#"{"alg":"none","typ":"JWT"}"#),
        ),
        (
            "alg-rs256",
            token_with_header(r#"{"alg":"RS256","typ":"JWT"}"#),
        ),
        ("alg-lowercase", token_with_header(r#"{"alg":"hs256"}"#)),
        (
            "alg-escaped",
            token_with_header(r#"{"alg":"HS\u0032\u0035\u0036"}"#),
        ),
        ("alg-number", token_with_header(r#"{"alg":256}"#)),
        ("alg-long", token_with_header(&long_alg)),
        (
            "crit",
            token_with_header(r#"{"alg":"HS256","crit":["exp"]}"#),
        ),
        ("header-array", token_with_header(r#"["HS256"]"#)),
        ("header-not-json", token_with_header("HS256")),
        (
            "two-parts",
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0".to_vec(),
        ),
        (
            "four-parts",
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln.extra".to_vec(),
        ),
        ("bad-base64", b"eyJhbGciOiJIUzI1NiJ9!.e30.c2ln".to_vec()),
        ("padded-base64", b"eyJhbGciOiJIUzI1NiJ9==.e30.c2ln".to_vec()),
        ("empty-parts", b"..".to_vec()),
        (
            "bearer-prefix",
            b"Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln".to_vec(),
        ),
        ("empty", Vec::new()),
    ]
}

// ---- encrypted_payload: `{"iv","ct"}` JSON, or `iv \n ct` --------------------------------

fn encrypted_payloads() -> Seeds {
    let cipher = SessionCipher::from_key_bytes([7; 32]);
    let hello = cipher.encrypt_with_iv([1; 12], br#"{"event":"chat","data":"hi"}"#);
    let empty = cipher.encrypt_with_iv([2; 12], b"");
    let big = cipher.encrypt_with_iv([3; 12], &[b'x'; 600]);
    let as_json = |iv: &str, ct: &str| json!({"iv": iv, "ct": ct}).to_string().into_bytes();
    let as_lines = |iv: &str, ct: &str| format!("{iv}\n{ct}").into_bytes();
    let mut tampered = hello.ct.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    vec![
        ("json-hello", as_json(&hello.iv, &hello.ct)),
        ("json-empty-plaintext", as_json(&empty.iv, &empty.ct)),
        ("json-600", as_json(&big.iv, &big.ct)),
        (
            "json-escaped-slash",
            as_json(&hello.iv, &hello.ct)
                .iter()
                .flat_map(|&b| {
                    if b == b'/' {
                        vec![b'\\', b'/']
                    } else {
                        vec![b]
                    }
                })
                .collect(),
        ),
        (
            "json-extra-keys",
            format!(r#"{{"ct":"{}","v":1,"iv":"{}"}}"#, hello.ct, hello.iv).into_bytes(),
        ),
        ("json-tampered", as_json(&hello.iv, &tampered)),
        ("json-iv-short", as_json("AAAA", &hello.ct)),
        ("json-not-strings", br#"{"iv":1,"ct":null}"#.to_vec()),
        (
            "json-array",
            format!(r#"["{}","{}"]"#, hello.iv, hello.ct).into_bytes(),
        ),
        (
            "json-missing-ct",
            format!(r#"{{"iv":"{}"}}"#, hello.iv).into_bytes(),
        ),
        ("lines-hello", as_lines(&hello.iv, &hello.ct)),
        ("lines-empty-plaintext", as_lines(&empty.iv, &empty.ct)),
        ("lines-tag-only-short", as_lines(&hello.iv, "AAAA")),
        (
            "lines-unpadded",
            as_lines(
                hello.iv.trim_end_matches('='),
                hello.ct.trim_end_matches('='),
            ),
        ),
        (
            "lines-trailing-bits",
            as_lines("AQEBAQEBAQEBAQEB", "AAAAAAAAAAAAAAAAAAAAAB=="),
        ),
        (
            "lines-url-alphabet",
            as_lines(
                "AQEBAQEBAQEBAQEB",
                &hello.ct.replace('+', "-").replace('/', "_"),
            ),
        ),
        ("empty", Vec::new()),
    ]
}
