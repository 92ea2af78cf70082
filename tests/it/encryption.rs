//! Per-client encryption end to end, with a Rust client doing the Ignis client side.

use serde_json::{Value, json};
use shardcast::crypto::{ClientKeyPair, SessionCipher};
use shardcast::protocol::{CloseReason, ErrorText};

use crate::support::{self, TestServer, WsClient};

/// An encrypted test client: the socket and the session it derived.
pub struct SecureClient {
    pub ws: WsClient,
    pub id: String,
    pub cipher: SessionCipher,
}

impl SecureClient {
    /// Authenticates with a fresh P-256 key and completes the handshake.
    pub async fn login(url: &str, user: &str) -> SecureClient {
        let mut ws = WsClient::connect(url).await;
        let keys = ClientKeyPair::generate();
        ws.emit(
            "authenticate",
            json!({ "token": user, "publicKey": keys.public_key_b64() }),
        )
        .await;
        let connected = ws.expect_event("connected").await;
        let data = &connected["data"];
        let cipher = keys
            .complete(
                data["serverPublicKey"].as_str().expect("serverPublicKey"),
                data["salt"].as_str().expect("salt"),
            )
            .expect("handshake completes");
        let id = data["id"].as_str().unwrap().to_owned();
        SecureClient { ws, id, cipher }
    }

    /// The next message, decrypted: the inner `{"event","data"}`.
    pub async fn next_plain(&mut self) -> Value {
        let outer = self.ws.expect_event("encrypted").await;
        let (iv, ct) = (
            outer["data"]["iv"].as_str().unwrap(),
            outer["data"]["ct"].as_str().unwrap(),
        );
        let plain = self.cipher.decrypt(iv, ct).expect("decrypts");
        serde_json::from_slice(&plain).expect("inner JSON")
    }

    /// Sends an event encrypted.
    pub async fn emit_encrypted(&mut self, event: &str, data: Value) {
        let inner = json!({ "event": event, "data": data }).to_string();
        let sealed = self.cipher.encrypt(inner.as_bytes());
        self.ws
            .emit("encrypted", json!({ "iv": sealed.iv, "ct": sealed.ct }))
            .await;
    }
}

fn encrypted_server(shards: usize) -> TestServer {
    TestServer::start(support::builder(shards).configure(|c| c.require_encryption = true))
}

#[tokio::test]
async fn every_target_type_reaches_an_encrypted_client_sealed() {
    let server = encrypted_server(2);
    let mut client = SecureClient::login(&server.ws_url(), "enc-user").await;
    let h = &server.handle;
    h.send_to_client(&client.id, "to-client", &1).unwrap();
    h.send_to_user("enc-user", "to-user", &2).unwrap();
    h.send_to_room("ws-default", "to-room", &3, &[]).unwrap();
    h.broadcast("to-all", &json!({ "four": 4 }), &[]).unwrap();
    for (event, data) in [
        ("to-client", json!(1)),
        ("to-user", json!(2)),
        ("to-room", json!(3)),
        ("to-all", json!({ "four": 4 })),
    ] {
        assert_eq!(
            client.next_plain().await,
            json!({ "event": event, "data": data })
        );
    }
}

#[tokio::test]
async fn missing_or_malformed_keys_close_4004() {
    let server = encrypted_server(1);
    for data in [
        json!({ "token": "t" }),
        json!({ "token": "t", "publicKey": "bm90IGEga2V5" }),
        json!({ "token": "t", "publicKey": "%%%" }),
        json!({ "token": "t", "publicKey": 42 }),
    ] {
        let mut client = server.connect().await;
        client.emit("authenticate", data.clone()).await;
        client
            .expect_error(ErrorText::EncryptionHandshakeFailed)
            .await;
        client.expect_close(CloseReason::EncryptionRequired).await;
    }
}

#[tokio::test]
async fn plain_and_encrypted_members_of_one_room_each_get_their_form() {
    let server = TestServer::start(support::builder(2).configure(|c| c.optional_encryption = true));
    let mut secure = SecureClient::login(&server.ws_url(), "s").await;
    let (mut plain, _) = server.login("p").await;
    for n in 0..50 {
        server
            .handle
            .send_to_room("ws-default", "mixed", &n, &[])
            .unwrap();
    }
    for n in 0..50 {
        assert_eq!(plain.expect_event("mixed").await["data"], n);
        assert_eq!(secure.next_plain().await["data"], n);
    }
}

#[tokio::test]
async fn inbound_encrypted_messages_are_decrypted_or_refused() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::start(
        support::builder(1)
            .configure(|c| c.optional_encryption = true)
            .on_message(move |_h, msg| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(msg);
                }
            }),
    );
    let mut client = SecureClient::login(&server.ws_url(), "in").await;
    client
        .emit_encrypted("secret-chat", json!({ "x": 1 }))
        .await;
    let msg = tokio::time::timeout(support::WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.event, "secret-chat");
    assert_eq!(msg.data.unwrap().get(), r#"{"x":1}"#);
    client
        .ws
        .emit(
            "encrypted",
            json!({ "iv": "AAAAAAAAAAAAAAAA", "ct": "AAAAAAAAAAAAAAAAAAAAAA==" }),
        )
        .await;
    // The error is sealed like every other message to an encrypted client (Ignis).
    let error = client.next_plain().await;
    assert_eq!(error["event"], "error");
    assert_eq!(error["data"]["message"], ErrorText::DecryptionFailed.text());
    client.emit_encrypted("still-open", json!(null)).await;
    let msg = tokio::time::timeout(support::WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.event, "still-open");
}

struct UpperCase;

impl shardcast::hooks::OutboundTransformer for UpperCase {
    fn transform(&self, _client: shardcast::ClientId, message: &[u8]) -> Option<Vec<u8>> {
        let inner = String::from_utf8_lossy(message).to_uppercase();
        Some(
            json!({ "event": "wrapped", "data": inner })
                .to_string()
                .into_bytes(),
        )
    }
}

struct TicketHandshake;

impl shardcast::hooks::Handshake for TicketHandshake {
    fn handshake(
        &self,
        request: shardcast::hooks::HandshakeRequest,
    ) -> shardcast::hooks::LocalFuture<Option<serde_json::Map<String, Value>>> {
        let ok = request.data.is_some_and(|d| d.get().contains("ticket"));
        Box::pin(async move { ok.then(|| json!({ "ticket": "ok" }).as_object().unwrap().clone()) })
    }
}

#[tokio::test]
async fn embedder_handshake_and_transformer() {
    let server = TestServer::start(
        support::builder(1)
            .configure(|c| c.require_encryption = true)
            .handshake(TicketHandshake)
            .outbound_transformer(UpperCase),
    );
    let mut refused = server.connect().await;
    refused.emit("authenticate", json!({ "token": "a" })).await;
    refused
        .expect_error(ErrorText::EncryptionHandshakeFailed)
        .await;
    refused.expect_close(CloseReason::EncryptionRequired).await;

    let mut client = server.connect().await;
    client
        .emit("authenticate", json!({ "token": "a", "ticket": 1 }))
        .await;
    let connected = client.expect_event("connected").await;
    assert_eq!(connected["data"]["ticket"], "ok");
    server.handle.broadcast("hi", &"there", &[]).unwrap();
    let wrapped = client.expect_event("wrapped").await;
    assert_eq!(wrapped["data"], r#"{"EVENT":"HI","DATA":"THERE"}"#);
}

#[tokio::test]
async fn enable_client_encryption_switches_a_plain_client_to_the_transformer() {
    let server = TestServer::start(support::builder(1).outbound_transformer(UpperCase));
    let (mut client, id) = server.login("later").await;
    server.handle.send_to_client(&id, "plain", &1).unwrap();
    client.expect_event("plain").await;
    server.handle.enable_client_encryption(&id).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    server.handle.send_to_client(&id, "now", &1).unwrap();
    client.expect_event("wrapped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_clients_receive_from_another_node_over_redis() {
    use crate::support::redis::{RedisServer, wait_for};
    let redis = RedisServer::start();
    let node = || {
        TestServer::start(support::attach(
            support::builder(2).configure(|c| c.require_encryption = true),
            &[redis.url()],
        ))
    };
    let (a, b) = (node(), node());
    wait_for("ready", std::time::Duration::from_secs(10), || {
        a.handle.is_ready() && b.handle.is_ready()
    })
    .await;
    let mut client = SecureClient::login(&b.ws_url(), "remote-enc").await;
    let id = client.id.clone();
    a.handle.send_to_client(&id, "c", &1).unwrap();
    a.handle.send_to_user("remote-enc", "u", &2).unwrap();
    a.handle.send_to_room("ws-default", "r", &3, &[]).unwrap();
    a.handle.broadcast("b", &4, &[]).unwrap();
    for (event, n) in [("c", 1), ("u", 2), ("r", 3), ("b", 4)] {
        assert_eq!(
            client.next_plain().await,
            json!({ "event": event, "data": n })
        );
    }
}

/// Ignis ignores a `publicKey` when encryption is not required: the client is plain
/// (no `serverPublicKey` in `connected`, messages in clear) unless the server opts in to
/// optional encryption.
#[tokio::test]
async fn a_public_key_is_ignored_unless_encryption_is_required_or_optional() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    let key = ClientKeyPair::generate();
    client
        .emit(
            "authenticate",
            json!({ "token": "k", "publicKey": key.public_key_b64() }),
        )
        .await;
    let connected = client.expect_event("connected").await;
    assert!(
        connected["data"].get("serverPublicKey").is_none(),
        "{connected}"
    );
    server.handle.send_to_user("k", "clear", &1).expect("send");
    assert_eq!(client.expect_event("clear").await["data"], 1);
}
