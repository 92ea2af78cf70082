//! The rules [`Conn`] applies, driven without sockets.

use std::io;

use super::*;
use crate::crypto::ClientKeyPair;

const T: Duration = Duration::from_secs(5);

fn conn() -> (Conn, Instant) {
    let now = Instant::now();
    (Conn::new(ClientId::new_v4(), now, T), now)
}

fn authenticated() -> (Conn, Instant) {
    let (mut c, now) = conn();
    c.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
    assert!(c.accept(Some(Arc::from("u")), None));
    (c, now)
}

/// Everything the connection writes, flushed into a byte vector.
fn written(c: &mut Conn) -> Vec<u8> {
    let mut wire = Vec::new();
    c.flush(|slices| {
        let n = slices.iter().map(|s| s.len()).sum();
        slices.iter().for_each(|s| wire.extend_from_slice(s));
        Ok(n)
    });
    wire
}

fn close_code(wire: &[u8]) -> Option<u16> {
    let at = wire.windows(1).rposition(|b| b[0] == 0x88)?;
    Some(u16::from_be_bytes([wire[at + 2], wire[at + 3]]))
}

#[test]
fn offers_beyond_the_limit_are_dropped_or_close_with_1008() {
    let (mut c, _) = authenticated();
    let frame = Bytes::from_static(&[0; 600]);
    let drop = Backpressure::new(1000, false);
    assert!(matches!(
        c.offer(frame.clone(), &drop),
        Offer::Queued { .. }
    ));
    assert_eq!(c.offer(frame.clone(), &drop), Offer::Dropped);
    assert!(c.is_open());
    let close = Backpressure::new(1000, true);
    assert_eq!(c.offer(frame, &close), Offer::Closed);
    assert!(!c.is_open());
    assert_eq!(
        close_code(&written(&mut c)),
        Some(CloseReason::SlowConsumer.code())
    );
}

#[test]
fn a_large_queue_asks_for_an_early_write() {
    let (mut c, _) = authenticated();
    let policy = Backpressure::new(1 << 20, false);
    let big = Bytes::from(vec![0; 40 * 1024]);
    assert_eq!(
        c.offer(big.clone(), &policy),
        Offer::Queued { flush_now: false }
    );
    assert_eq!(c.offer(big, &policy), Offer::Queued { flush_now: true });
}

#[test]
fn close_is_queued_once_and_then_nothing_is_taken() {
    let (mut c, _) = authenticated();
    assert!(c.close(CloseReason::ShuttingDown));
    assert!(!c.close(CloseReason::Normal));
    assert!(!c.reply(Bytes::from_static(b"x"), 1 << 20));
    assert!(c.close_pending());
    assert_eq!(
        c.flush(|s| Ok(s.iter().map(|s| s.len()).sum())),
        Flushed::CloseSent
    );
    assert!(!c.close_pending());
}

#[test]
fn abort_drops_the_queue_and_writes_nothing_more() {
    let (mut c, _) = authenticated();
    assert!(c.reply(Bytes::from_static(b"x"), 1 << 20));
    c.abort();
    assert!(
        !c.close(CloseReason::Normal),
        "no close handshake after an abort"
    );
    assert!(!c.close_pending());
    assert_eq!(c.flush(|_| panic!("must not write")), Flushed::Done);
}

#[test]
fn a_failed_write_aborts_and_a_full_socket_blocks() {
    let (mut c, _) = authenticated();
    c.reply(Bytes::from_static(b"abc"), 1 << 20);
    assert_eq!(
        c.flush(|_| Err(io::ErrorKind::WouldBlock.into())),
        Flushed::Blocked
    );
    assert_eq!(
        c.flush(|_| Err(io::ErrorKind::BrokenPipe.into())),
        Flushed::Failed
    );
    assert_eq!(c.phase(), Phase::Aborted);
}

#[test]
fn client_close_frames_are_echoed() {
    let (mut c, _) = authenticated();
    assert!(c.on_close_frame(Some(4000)));
    assert_eq!(close_code(&written(&mut c)), Some(1000));
    let (mut c, _) = authenticated();
    assert!(c.on_close_frame(Some(1005)));
    assert_eq!(close_code(&written(&mut c)), Some(1002));
}

#[test]
fn decode_errors_close_with_1002_or_1009() {
    let (mut c, _) = authenticated();
    assert!(c.on_decode_error(DecodeError::TooBig));
    assert_eq!(
        close_code(&written(&mut c)),
        Some(CloseReason::MessageTooBig.code())
    );
    let (mut c, _) = authenticated();
    assert!(c.on_decode_error(DecodeError::Protocol("unmasked")));
    assert_eq!(
        close_code(&written(&mut c)),
        Some(CloseReason::ProtocolError.code())
    );
}

#[test]
fn deadlines_close_with_their_codes() {
    let (mut c, now) = conn();
    assert!(!c.check_auth_deadline(now + T / 2));
    assert!(c.check_auth_deadline(now + T));
    assert_eq!(
        close_code(&written(&mut c)),
        Some(CloseReason::AuthTimeout.code())
    );
    let (mut c, now) = authenticated();
    let timeout = Duration::from_secs(90);
    assert!(!c.check_heartbeat(now + timeout, timeout));
    assert!(c.check_heartbeat(now + timeout * 2, timeout));
    assert_eq!(
        close_code(&written(&mut c)),
        Some(CloseReason::HeartbeatTimeout.code())
    );
}

#[test]
fn idle_connections_are_pinged_then_dropped() {
    let (mut c, now) = authenticated();
    let idle = Duration::from_secs(60);
    assert_eq!(c.check_idle(now + idle / 2, idle, true), Idle::Ping);
    assert_eq!(written(&mut c), [0x89, 0x00], "an empty ping frame");
    c.heard(now + idle / 2);
    assert_eq!(c.check_idle(now + idle, idle, true), Idle::Ping);
    assert_eq!(c.check_idle(now + idle * 2, idle, true), Idle::Drop);
    assert_eq!(c.phase(), Phase::Aborted);
}

#[test]
fn refusals_send_the_ignis_error_then_close() {
    let (mut c, now) = conn();
    c.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
    assert!(c.refuse(AuthVerdict::HandshakeFailed));
    let wire = written(&mut c);
    let text = String::from_utf8_lossy(&wire);
    assert!(
        text.contains(ErrorText::EncryptionHandshakeFailed.text()),
        "{text}"
    );
    assert_eq!(
        close_code(&wire),
        Some(CloseReason::EncryptionRequired.code())
    );
    assert!(
        !c.accept(None, None),
        "a refused connection is not accepted later"
    );
}

#[test]
fn accepting_enters_the_own_room_and_reports_the_connection() {
    let (c, _) = authenticated();
    assert!(c.is_authenticated() && c.connected_reported());
    assert!(c.membership().in_own_room());
    let (mut c, _) = conn();
    assert!(!c.accept(None, None), "no verdict was awaited");
}

#[test]
fn sealed_messages_count_toward_the_limit_until_queued() {
    let (mut c, _) = authenticated();
    assert!(c.reserve_sealed(600, 1000));
    assert!(!c.reserve_sealed(600, 1000));
    assert!(c.queue_sealed(600, |_| Bytes::from_static(b"sealed")));
    assert!(c.reserve_sealed(600, 1000));
}

#[test]
fn encrypted_messages_are_decrypted_or_refused() {
    let client = ClientKeyPair::generate();
    let (cipher, reply) = crate::crypto::accept_client_key(&client.public_key_b64()).unwrap();
    let session = client
        .complete(&reply.server_public_key, &reply.salt)
        .expect("handshake");
    let (mut c, now) = conn();
    c.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
    assert!(c.accept(None, Some(Encryption::Session(Box::new(cipher)))));
    let sealed = session.encrypt(br#"{"event":"chat","data":1}"#);
    let message = format!(
        r#"{{"event":"encrypted","data":{{"iv":"{}","ct":"{}"}}}}"#,
        sealed.iv, sealed.ct
    );
    let Decision::Decrypted(plain) = c.on_message(now, Data::Binary(message.as_bytes()), T) else {
        panic!("expected a decrypted message");
    };
    assert!(matches!(c.on_decrypted(now, &plain, T), Decision::Custom(m) if m.event == "chat"));
    let bad: &[u8] = br#"{"event":"encrypted","data":{"iv":"AAAA","ct":"AAAA"}}"#;
    assert!(matches!(
        c.on_message(now, Data::Binary(bad), T),
        Decision::Error(ErrorText::DecryptionFailed)
    ));
}

#[test]
fn a_client_over_its_rate_is_closed_1008() {
    let (mut c, now) = authenticated();
    assert!((0..3).all(|_| c.within_rate(now, 2, 3)), "the burst");
    assert!(!c.within_rate(now, 2, 3));
    assert!(!c.is_open());
    assert_eq!(
        close_code(&written(&mut c)),
        Some(CloseReason::RateLimited.code())
    );
    let (mut c, now) = authenticated();
    assert!(
        (0..10_000).all(|_| c.within_rate(now, 0, 0)),
        "0 = no limit"
    );
}
