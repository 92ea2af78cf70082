//! SPEC §2, rule by rule, against a real engine over loopback.

use std::time::{Duration, Instant};

use serde_json::json;
use shardcast::hooks::{AuthError, Identity};
use shardcast::protocol::{CloseReason, ErrorText};

use crate::support::{self, Next, TestServer, WAIT};

#[tokio::test]
async fn authenticate_answers_connected_with_id_user_and_iso_time() {
    let server = TestServer::with_shards(2);
    let mut client = server.connect().await;
    client
        .emit("authenticate", json!({ "token": "alice" }))
        .await;
    let connected = client.expect_event("connected").await;
    let data = &connected["data"];
    let id = data["id"].as_str().expect("id");
    assert!(
        id.parse::<shardcast::ClientId>().is_ok(),
        "uuid v4 id, got {id}"
    );
    assert_eq!(data["userId"], "alice");
    let time = data["time"].as_str().expect("time");
    assert_eq!(time.len(), 24, "ISO-8601 with milliseconds: {time}");
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    assert_eq!(data.as_object().map(|o| o.len()), Some(3), "{data}");
}

#[tokio::test]
async fn no_authenticate_in_time_closes_4001() {
    let server = TestServer::start(
        support::builder(1).configure(|c| c.auth_timeout = Duration::from_millis(200)),
    );
    let mut client = server.connect().await;
    let started = Instant::now();
    client.expect_close(CloseReason::AuthTimeout).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn heartbeat_before_auth_does_not_extend_the_deadline() {
    let server = TestServer::start(
        support::builder(1).configure(|c| c.auth_timeout = Duration::from_millis(400)),
    );
    let mut client = server.connect().await;
    let started = Instant::now();
    loop {
        client.emit("heartbeat", json!(null)).await;
        match client.next_within(Duration::from_millis(50)).await {
            Next::Timeout => {}
            Next::Close(c, _) => {
                assert_eq!(c, CloseReason::AuthTimeout.code());
                break;
            }
            other => panic!("heartbeat must stay unanswered, got {other:?}"),
        }
        assert!(started.elapsed() < WAIT, "never closed");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "closed after {elapsed:?}"
    );
}

#[tokio::test]
async fn slow_authenticator_gets_three_times_the_timeout() {
    let server = TestServer::start(
        support::builder(1)
            .configure(|c| c.auth_timeout = Duration::from_millis(150))
            .authenticate(|_req| async {
                std::future::pending::<()>().await;
                Ok(None)
            }),
    );
    let mut client = server.connect().await;
    let started = Instant::now();
    client.emit("authenticate", json!({ "token": "t" })).await;
    client.expect_close(CloseReason::AuthTimeout).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "3 × 150 ms, closed after {elapsed:?}"
    );
}

#[tokio::test]
async fn rejected_credentials_get_error_then_4003() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    client.emit("authenticate", json!({})).await;
    client.expect_error(ErrorText::AuthenticationFailed).await;
    client.expect_close(CloseReason::AuthFailed).await;
}

#[tokio::test]
async fn authenticator_failure_gets_authentication_error_then_4003() {
    let server = TestServer::start(
        support::builder(1).authenticate(|_req| async { Err(AuthError("backend down".into())) }),
    );
    let mut client = server.connect().await;
    client.emit("authenticate", json!({ "token": "x" })).await;
    client.expect_error(ErrorText::AuthenticationError).await;
    client.expect_close(CloseReason::AuthFailed).await;
}

#[tokio::test]
async fn second_authenticate_is_already_authenticated() {
    let server = TestServer::with_shards(1);
    let (mut client, _) = server.login("bob").await;
    client.emit("authenticate", json!({ "token": "bob" })).await;
    client.expect_error(ErrorText::AlreadyAuthenticated).await;
    client.expect_silence().await;
}

#[tokio::test]
async fn events_before_authentication_are_not_authenticated() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    for event in ["chat", "join", "leave", "disconnect"] {
        client.emit(event, json!({ "rooms": ["public-a"] })).await;
        client.expect_error(ErrorText::NotAuthenticated).await;
    }
    client.authenticate("late").await;
}

#[tokio::test]
async fn invalid_json_or_utf8_is_invalid_message_format_and_stays_open() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    client.send_text("not json").await;
    client.expect_error(ErrorText::InvalidMessageFormat).await;
    client.send_binary(&[0xff, 0xfe, 0x00]).await;
    client.expect_error(ErrorText::InvalidMessageFormat).await;
    client.authenticate("carol").await;
    client.send_text("{broken").await;
    client.expect_error(ErrorText::InvalidMessageFormat).await;
}

/// RFC 6455 §8.1: a text frame that is not UTF-8 fails the connection with 1007 (only a
/// binary frame that is not UTF-8 gets "Invalid message format", above).
#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = TestServer::with_shards(1);
    let (mut whole, _) = server.login("text").await;
    let bad = Frame::message(vec![b'{', 0xff, b'}'], OpCode::Data(Data::Text), true);
    whole.send_frame(bad).await;
    whole.expect_close(CloseReason::InvalidPayload).await;
    // Across fragments: the second fragment brings the invalid byte.
    let mut fragmented = server.connect().await;
    let first = Frame::message(
        "{\"event\":\"".as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        false,
    );
    let second = Frame::message(vec![0xc3, 0x28], OpCode::Data(Data::Continue), false);
    fragmented.send_frame(first).await;
    fragmented.send_frame(second).await;
    fragmented.expect_close(CloseReason::InvalidPayload).await;
}

/// A close frame whose reason is not UTF-8 is answered 1007, not echoed 1000.
#[tokio::test]
async fn close_reason_that_is_not_utf8_closes_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xce, 0xba, 0xe1, 0xbd]);
    let header = FrameHeader {
        opcode: OpCode::Control(Control::Close),
        ..FrameHeader::default()
    };
    let close = Frame::from_payload(header, payload.into());
    client.send_frame(close).await;
    client.expect_close(CloseReason::InvalidPayload).await;
}

#[tokio::test]
async fn json_without_event_is_dropped_silently_in_any_state() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    for quiet in [
        "{}",
        r#"{"event":""}"#,
        "123",
        "[]",
        "null",
        r#"{"event":7}"#,
    ] {
        client.send_text(quiet).await;
    }
    client.expect_silence().await;
    client.authenticate("dave").await;
    for quiet in ["{}", r#"{"event":""}"#, "123", "[]", "null"] {
        client.send_text(quiet).await;
    }
    client.expect_silence().await;
}

#[tokio::test]
async fn binary_frames_are_handled_like_text() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    client
        .send_binary(br#"{"event":"authenticate","data":{"token":"bin"}}"#)
        .await;
    let connected = client.expect_event("connected").await;
    assert_eq!(connected["data"]["userId"], "bin");
}

#[tokio::test]
async fn heartbeat_is_never_answered() {
    let server = TestServer::with_shards(1);
    let mut client = server.connect().await;
    client.emit("heartbeat", json!(null)).await;
    client.expect_silence().await;
    client.authenticate("eve").await;
    client.emit("heartbeat", json!({})).await;
    client.expect_silence().await;
}

#[tokio::test]
async fn silent_authenticated_clients_are_closed_4002_and_heartbeats_keep_them() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.heartbeat_interval = Duration::from_millis(100);
        c.heartbeat_timeout = Duration::from_millis(400);
    }));
    let (mut silent, _) = server.login("quiet").await;
    let (mut lively, _) = server.login("lively").await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(900) {
        lively.emit("heartbeat", json!(null)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    silent.expect_close(CloseReason::HeartbeatTimeout).await;
    lively.emit("heartbeat", json!(null)).await;
    lively.expect_silence().await;
}

#[tokio::test]
async fn join_rules_names_validator_and_non_arrays() {
    let server = TestServer::with_shards(1);
    let (mut client, id) = server.login("frank").await;
    let long = "public-".to_owned() + &"x".repeat(250);
    client
        .join(&["public-ok", "", "ws:public-x", &long, "private-no"])
        .await;
    client
        .emit("join", json!({ "rooms": [1, null, {"a": 1}] }))
        .await;
    client.emit("join", json!({ "rooms": "public-str" })).await;
    client.emit("join", json!("public-str")).await;
    server.wait_members("public-ok", 1).await;
    for room in [long.as_str(), "private-no", "public-str", "ws:public-x"] {
        assert!(
            server.handle.clients_of_room(room).await.is_empty(),
            "{room}"
        );
    }
    assert_eq!(
        server.handle.clients_of_room("public-ok").await[0].to_string(),
        id
    );
    client.expect_silence().await;
}

#[tokio::test]
async fn without_a_validator_every_join_is_rejected() {
    let builder = shardcast::Engine::builder()
        .configure(|c| {
            c.listen = "127.0.0.1:0".parse().unwrap();
            c.shards = 1;
        })
        .authenticator(shardcast::hooks::DevAuthenticator);
    let server = TestServer::start(builder);
    let (mut client, _) = server.login("gina").await;
    client.join(&["public-a", "anything"]).await;
    client.emit("heartbeat", json!(null)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.handle.clients_of_room("public-a").await.is_empty());
    assert!(server.handle.clients_of_room("anything").await.is_empty());
    client.expect_silence().await;
}

#[tokio::test]
async fn joining_twice_still_delivers_once() {
    let server = TestServer::with_shards(2);
    let (mut client, _) = server.login("hank").await;
    client.join(&["public-twice", "public-twice"]).await;
    client.join(&["public-twice"]).await;
    server.wait_members("public-twice", 1).await;
    server
        .handle
        .send_to_room("public-twice", "once", &1, &[])
        .unwrap();
    client.expect_event("once").await;
    client.expect_silence().await;
}

#[tokio::test]
async fn default_rooms_and_own_id_room_can_be_left() {
    let server = TestServer::with_shards(2);
    let (mut client, id) = server.login("ivy").await;
    server.wait_members("ws-default", 1).await;
    server.wait_members("ws-notification", 1).await;
    server.wait_members(&id, 1).await;
    server
        .handle
        .send_to_room(&id, "via-own-room", &1, &[])
        .unwrap();
    client.expect_event("via-own-room").await;

    client.leave(&["ws-default", &id, "never-joined"]).await;
    server.wait_members("ws-default", 0).await;
    server.wait_members(&id, 0).await;
    server
        .handle
        .send_to_room("ws-default", "default", &1, &[])
        .unwrap();
    server
        .handle
        .send_to_room(&id, "own-room", &1, &[])
        .unwrap();
    server.handle.send_to_client(&id, "direct", &1).unwrap();
    client.expect_event("direct").await;
    client.expect_silence().await;
    server
        .handle
        .send_to_room("ws-notification", "still", &1, &[])
        .unwrap();
    client.expect_event("still").await;
}

#[tokio::test]
async fn custom_events_reach_the_handler_and_disconnect_does_not_close() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::start(support::builder(2).on_message(move |_handle, msg| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(msg);
        }
    }));
    let (mut client, id) = server.login("jack").await;
    for event in ["chat", "disconnect", "error", "connected", "encrypted"] {
        client
            .send_json(json!({ "event": event, "data": { "n": 1 }, "id": "m-1" }))
            .await;
    }
    client.send_json(json!({ "event": "no-id" })).await;
    for event in ["chat", "disconnect", "error", "connected", "encrypted"] {
        let msg = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.event, event);
        assert_eq!(msg.client_id.to_string(), id);
        assert_eq!(msg.user_id.as_deref(), Some("jack"));
        assert_eq!(msg.data.as_ref().map(|d| d.get()), Some(r#"{"n":1}"#));
        assert_eq!(msg.id.as_ref().map(|d| d.get()), Some(r#""m-1""#));
    }
    let msg = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (msg.event.as_str(), msg.data.is_none(), msg.id.is_none()),
        ("no-id", true, true)
    );
    client.expect_silence().await;
}

#[tokio::test]
async fn no_user_id_means_no_user_id_key_and_no_users_index() {
    let server = TestServer::start(
        support::builder(1).authenticate(|_req| async { Ok(Some(Identity::default())) }),
    );
    let mut client = server.connect().await;
    client.emit("authenticate", json!({})).await;
    let connected = client.expect_event("connected").await;
    assert!(connected["data"].get("userId").is_none(), "{connected}");
    assert_eq!(connected["data"].as_object().unwrap().len(), 2);
    assert!(server.handle.clients_of_user("").await.is_empty());
}

#[tokio::test]
async fn frames_over_max_payload_close_1009() {
    let server = TestServer::start(support::builder(1).configure(|c| c.max_payload_length = 1024));
    let (mut client, _) = server.login("kim").await;
    let big = json!({ "event": "chat", "data": "x".repeat(2000) }).to_string();
    client.send_text(&big).await;
    client.expect_close(CloseReason::MessageTooBig).await;
}

/// Unfinished frames of all clients are held to `max_buffered_bytes` (split between
/// shards): the client that would pass it is closed 1013, the others keep their frames.
#[tokio::test]
async fn unfinished_frames_past_the_global_cap_close_1013() {
    use crate::support::raw_ws::RawWs;
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.max_payload_length = 100_000;
        c.max_buffered_bytes = 150_000;
    }));
    let announce = RawWs::header(0x81, 90_000);
    let mut first = RawWs::connect(server.addr).await;
    first.write(&announce).await;
    first.write(&RawWs::masked(&[b' '; 40_000], 0)).await;
    let mut second = RawWs::connect(server.addr).await;
    second.write(&announce).await;
    second.write(&RawWs::masked(&[b' '; 40_000], 0)).await;
    let code = CloseReason::Overloaded.code();
    assert_eq!(second.close_code(WAIT).await, Some(code));
    assert_eq!(
        first.close_code(support::QUIET).await,
        None,
        "the first keeps its frame"
    );
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let mut server = TestServer::with_shards(2);
    let (mut a, _) = server.login("lee").await;
    let mut b = server.connect().await;
    let stopper = tokio::task::spawn_blocking({
        let engine = server.engine.take();
        move || drop(engine)
    });
    a.expect_close(CloseReason::ShuttingDown).await;
    b.expect_close(CloseReason::ShuttingDown).await;
    stopper.await.unwrap();
    server.stop();
}

#[tokio::test]
async fn unauthenticated_clients_receive_nothing_but_errors() {
    let server = TestServer::with_shards(2);
    let (mut authed, _) = server.login("mia").await;
    let mut pending = server.connect().await;
    server.handle.broadcast("news", &1, &[]).unwrap();
    server
        .handle
        .send_to_room("ws-default", "room", &1, &[])
        .unwrap();
    authed.expect_event("news").await;
    authed.expect_event("room").await;
    pending.expect_silence().await;
}

#[tokio::test]
async fn transport_pings_are_sent_and_dead_peers_dropped() {
    use futures_util::StreamExt;
    let server = TestServer::start(
        support::builder(1).configure(|c| c.idle_timeout = Duration::from_millis(600)),
    );
    let (mut client, _) = server.login("ned").await;
    let ping = tokio::time::timeout(WAIT, async {
        loop {
            match client.inner().next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_))) => return true,
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
    })
    .await;
    assert_eq!(ping, Ok(true), "a quiet connection gets a transport ping");

    // A raw peer that upgrades and then never sends a byte is dropped after idle_timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut sink = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, raw.read(&mut sink))
            .await
            .unwrap()
            .unwrap_or(0);
        if n == 0 {
            break;
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}
