//! The caps and the throttle, without sockets.

use super::*;

fn admission(f: impl FnOnce(&mut EngineConfig)) -> Arc<Admission> {
    let mut config = EngineConfig::default();
    f(&mut config);
    Arc::new(Admission::new(&config))
}

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

#[test]
fn the_process_cap_counts_every_address_and_permits_give_places_back() {
    let adm = admission(|c| c.max_connections = 2);
    let now = Instant::now();
    let first = adm.admit(A, now).unwrap();
    let _second = adm.admit(B, now).unwrap();
    assert_eq!(adm.admit(A, now).unwrap_err(), Refusal::Full);
    drop(first);
    assert!(adm.admit(A, now).is_ok());
}

#[test]
fn the_address_cap_leaves_other_addresses_alone() {
    let adm = admission(|c| c.max_connections_per_ip = 1);
    let now = Instant::now();
    let held = adm.admit(A, now).unwrap();
    assert_eq!(adm.admit(A, now).unwrap_err(), Refusal::AddressFull);
    let other = adm.admit(B, now).unwrap();
    drop(held);
    let again = adm.admit(A, now).unwrap();
    assert_eq!(adm.connections(), 2);
    drop((other, again));
    assert_eq!(adm.connections(), 0);
}

#[test]
fn failed_authentications_throttle_an_address_until_its_window_ends() {
    let adm = admission(|c| {
        c.max_auth_failures_per_ip = 3;
        c.auth_failure_window = Duration::from_secs(60);
    });
    let t0 = Instant::now();
    (0..3).for_each(|_| adm.auth_failed(A, t0));
    let later = t0 + Duration::from_secs(20);
    match adm.admit(A, later) {
        Err(Refusal::Throttled(left)) => assert_eq!(left, Duration::from_secs(40)),
        other => panic!("expected throttled, got {other:?}"),
    }
    assert!(adm.admit(B, later).is_ok(), "another address passes");
    assert!(
        adm.admit(A, t0 + Duration::from_secs(60)).is_ok(),
        "a new window"
    );
}

#[test]
fn nothing_is_kept_for_an_address_with_no_connection_and_no_failure() {
    let adm = admission(|c| c.max_connections_per_ip = 5);
    let permit = adm.admit(A, Instant::now()).unwrap();
    drop(permit);
    assert!(adm.lock().is_empty());
    assert_eq!(adm.connections(), 0);
}
