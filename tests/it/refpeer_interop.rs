//! Byte compatibility with the real Ignis `WebSocketServerHelper` (the refpeer, Bun), both
//! ways, over one Redis:
//!
//! * Ignis → shardcast: envelopes Ignis publishes parse, and re-encode to the same bytes;
//! * shardcast → Ignis: envelopes the bridge publishes reach an Ignis client (exclude
//!   honoured), as the frames Ignis itself would send;
//! * `ws:inbound`: what Ignis publishes for a client event equals [`inbound_payload`].
//!
//! Runs only when `SHARDCAST_REFPEER` names the refpeer's `run.sh` (it needs Bun and, on
//! first use, the npm registry), e.g.
//! `SHARDCAST_REFPEER=/work/shared/refpeer/run.sh cargo test --test it refpeer`.

use shardcast::redis::SubscribeMode;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shardcast::protocol::Target;
use shardcast::protocol::envelope::Envelope;
use shardcast::protocol::forward::inbound_payload;
use tokio_tungstenite::tungstenite::Message;

use crate::support::redis::{
    ARRIVE, RawSubscriber, RedisServer, envelope, fast_settings_in, in_both_modes, next_within,
    start_bridge, wait_ready,
};
use crate::support::served::ready_port;

const SECRET: &str = "interop-secret";

/// The refpeer process, killed by PID on drop.
struct RefPeer {
    child: Child,
    port: u16,
}

impl RefPeer {
    fn start(run_sh: &str, redis_url: &str) -> RefPeer {
        let mut child = Command::new("bash")
            .arg(run_sh)
            .env("REDIS_URL", redis_url)
            .env("PORT", "0")
            .env("JWT_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn refpeer");
        let port = match ready_port(&mut child, Duration::from_secs(120)) {
            Ok(port) => port,
            Err(line) => {
                let _ = child.kill();
                panic!("refpeer did not print READY <port> (got {line:?})");
            }
        };
        RefPeer { child, port }
    }

    /// `POST /api/publish` (the helper delivers locally and publishes the envelope).
    fn publish(&self, body: &Value) -> String {
        let body = body.to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("refpeer http");
        write!(
            s,
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-api-key\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write request");
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        response.lines().next().unwrap_or_default().to_owned()
    }
}

impl Drop for RefPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn token(sub: Option<&str>) -> String {
    let claims = match sub {
        Some(sub) => json!({ "sub": sub }),
        None => json!({}),
    };
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("mint token")
}

/// Connect, authenticate, return the socket and the client id.
async fn login(port: u16, sub: Option<&str>) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect("ws connect");
    let auth = json!({"event": "authenticate", "data": {"type": "Bearer", "token": token(sub)}});
    ws.send(Message::text(auth.to_string()))
        .await
        .expect("send auth");
    let connected: Value =
        serde_json::from_str(&next_text(&mut ws).await.expect("connected")).expect("json");
    assert_eq!(connected["event"], "connected", "{connected}");
    let id = connected["data"]["id"]
        .as_str()
        .expect("client id")
        .to_owned();
    (ws, id)
}

async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(ARRIVE, ws.next()).await.ok()??.ok()? {
            Message::Text(t) => return Some(t.to_string()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Skip our own envelopes on the raw subscriber; return the next foreign message.
async fn next_foreign(raw: &mut RawSubscriber, own: &str) -> (String, Vec<u8>) {
    loop {
        let (channel, payload) = raw.next(ARRIVE).await.expect("message on ws:*");
        if !String::from_utf8_lossy(&payload).contains(&format!("\"serverId\":\"{own}\"")) {
            return (channel, payload);
        }
    }
}

async fn byte_compatible_with_ignis_both_ways(mode: SubscribeMode) {
    let Ok(run_sh) = std::env::var("SHARDCAST_REFPEER") else {
        println!("skipped: set SHARDCAST_REFPEER=/path/to/refpeer/run.sh to run");
        return;
    };
    let redis = RedisServer::start();
    let mut raw = RawSubscriber::psubscribe(&redis.url(), &["ws:*"]).await;
    let peer = RefPeer::start(&run_sh, &redis.url());
    let (bridge, mut rx) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "shardcast-it");
    wait_ready(&bridge).await;

    // Ignis → shardcast: exact bytes, parsed and re-encoded.
    let data =
        json!({"n": 1, "s": "é\n\"q\"", "list": [true, null, 2.5], "nested": {"z": 0, "a": -1}});
    let bodies = [
        json!({"type": "client", "target": "00000000-0000-4000-8000-0000000000c2", "event": "to-client", "data": data}),
        json!({"type": "user", "target": "u-x", "event": "to-user", "data": "text"}),
        json!({"type": "room", "target": "public-r", "event": "to-room", "data": data, "exclude": ["c-1"]}),
        json!({"type": "broadcast", "event": "to-all", "exclude": ["c-2", "c-3"]}),
    ];
    let mut ignis_id = String::new();
    for body in &bodies {
        assert!(peer.publish(body).contains("202"), "publish {body}");
        let (channel, bytes) = next_foreign(&mut raw, "shardcast-it").await;
        let parsed = Envelope::parse(&mut bytes.clone()).expect("Ignis envelope parses");
        assert_eq!(channel, parsed.channel());
        assert_eq!(
            String::from_utf8_lossy(&parsed.encode()),
            String::from_utf8_lossy(&bytes),
            "re-encode is byte-identical"
        );
        assert_eq!(
            next_within(&mut rx, ARRIVE).await.as_ref(),
            Some(&parsed),
            "bridge delivers it"
        );
        ignis_id = parsed.server_id;
    }
    println!("ignis serverId {ignis_id}");

    // shardcast → Ignis: the bridge's envelopes reach an Ignis client.
    let (mut ws, client_id) = login(peer.port, Some("alice")).await;
    ws.send(Message::text(
        r#"{"event":"join","data":{"rooms":["public-room"]}}"#,
    ))
    .await
    .expect("join");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let me = std::slice::from_ref(&client_id);
    let ours = [
        envelope(
            "shardcast-it",
            Target::client(&client_id).expect("client id"),
            "e-client",
            Some(r#"{"k":[1,"é"]}"#),
            &[],
        ),
        envelope("shardcast-it", Target::user("alice"), "e-user", None, &[]),
        envelope(
            "shardcast-it",
            Target::room("public-room"),
            "e-room-excluded",
            Some("1"),
            &[me[0].as_str()],
        ),
        envelope(
            "shardcast-it",
            Target::room("public-room"),
            "e-room",
            Some("null"),
            &[],
        ),
        envelope(
            "shardcast-it",
            Target::Broadcast,
            "e-bcast-excluded",
            None,
            &["x", me[0].as_str()],
        ),
        envelope(
            "shardcast-it",
            Target::Broadcast,
            "e-bcast",
            Some(r#""s""#),
            &["x"],
        ),
    ];
    for env in &ours {
        bridge.publish_envelope(env).expect("queued");
    }
    let want = [
        r#"{"event":"e-client","data":{"k":[1,"é"]}}"#,
        r#"{"event":"e-user"}"#,
        r#"{"event":"e-room","data":null}"#,
        r#"{"event":"e-bcast","data":"s"}"#,
    ];
    for frame in want {
        assert_eq!(next_text(&mut ws).await.as_deref(), Some(frame));
    }

    // ws:inbound: Ignis' payload for a client event equals ours.
    ws.send(Message::text(
        r#"{"event":"chat","data":{"t":"hi","n":[1,2]},"id":"m-1"}"#,
    ))
    .await
    .expect("chat");
    let (channel, bytes) = next_foreign(&mut raw, "shardcast-it").await;
    assert_eq!(channel, "ws:inbound");
    let expected = inbound_payload(
        &ignis_id,
        &client_id,
        Some("alice"),
        "chat",
        Some(r#"{"t":"hi","n":[1,2]}"#),
        Some(r#""m-1""#),
    );
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&expected)
    );
    let (mut anon, anon_id) = login(peer.port, None).await;
    anon.send(Message::text(r#"{"event":"ping2"}"#))
        .await
        .expect("ping2");
    let (_, bytes) = next_foreign(&mut raw, "shardcast-it").await;
    let expected = inbound_payload(&ignis_id, &anon_id, None, "ping2", None, None);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&expected)
    );
    bridge.shutdown().await;
}

in_both_modes!(byte_compatible_with_ignis_both_ways);
