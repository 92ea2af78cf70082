//! Admission: who may open one more connection. Process-wide and per-address connection
//! caps, and a per-address throttle on failed authentications.
//!
//! # Contract
//!
//! One [`Admission`] per engine, shared by every shard (`Send + Sync`). An upgrade asks
//! [`Admission::admit`] before the `101` is written and gets a [`Permit`] that the
//! connection holds for its whole life; dropping the permit (when the connection goes)
//! gives its place back. Counting is exact: a permit is never lost or counted twice.
//! The per-address table is behind one mutex taken only on connect, disconnect and
//! failed authentication — never on the message path — and keeps an address only while
//! it holds connections or its failure window runs; with no per-address setting it is
//! never touched.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ahash::AHashMap;

use crate::config::EngineConfig;

/// Addresses in the table past which expired entries are swept out on the next failure.
const SWEEP_AT: usize = 4096;
/// What `Retry-After` says when a connection cap is reached.
pub const CAPACITY_RETRY: Duration = Duration::from_secs(5);

/// Why an upgrade is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The process holds `max_connections` (503).
    Full,
    /// The address holds `max_connections_per_ip` (503).
    AddressFull,
    /// The address failed authentication too often; retry after this long (429).
    Throttled(Duration),
}

/// One address's connections and recent failed authentications.
#[derive(Debug)]
struct Address {
    connections: usize,
    failures: u32,
    window_start: Instant,
}

/// Connection caps and the failed-authentication throttle of one engine.
#[derive(Debug)]
pub struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    max_failures: u32,
    window: Duration,
    total: AtomicUsize,
    addresses: Mutex<AHashMap<IpAddr, Address>>,
}

/// A connection's place; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// The caps and throttle of `config`.
    pub fn new(config: &EngineConfig) -> Self {
        Admission {
            max_connections: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            max_failures: config.max_auth_failures_per_ip,
            window: config.auth_failure_window,
            total: AtomicUsize::new(0),
            addresses: Mutex::new(AHashMap::new()),
        }
    }

    /// A place for one more connection from `ip` at `now`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Permit, Refusal> {
        let taken = self.total.fetch_add(1, Ordering::AcqRel);
        if self.max_connections > 0 && taken >= self.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Full);
        }
        if let Err(refusal) = self.admit_address(ip, now) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(refusal);
        }
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }

    /// Counts a failed authentication from `ip` at `now`.
    pub fn auth_failed(&self, ip: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let mut addresses = self.lock();
        if addresses.len() >= SWEEP_AT {
            addresses.retain(|_, a| a.connections > 0 || !self.expired(a, now));
        }
        let address = addresses.entry(ip).or_insert_with(|| Address::fresh(now));
        self.roll_window(address, now);
        address.failures = address.failures.saturating_add(1);
    }

    /// Connections held now.
    #[cfg(test)]
    pub fn connections(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    fn uses_table(&self) -> bool {
        self.max_per_ip > 0 || self.max_failures > 0
    }

    fn admit_address(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if !self.uses_table() {
            return Ok(());
        }
        let mut addresses = self.lock();
        let address = addresses.entry(ip).or_insert_with(|| Address::fresh(now));
        self.roll_window(address, now);
        if self.max_failures > 0 && address.failures >= self.max_failures {
            let left = self
                .window
                .saturating_sub(now.duration_since(address.window_start));
            return Err(Refusal::Throttled(left.max(Duration::from_secs(1))));
        }
        if self.max_per_ip > 0 && address.connections >= self.max_per_ip {
            return Err(Refusal::AddressFull);
        }
        address.connections += 1;
        Ok(())
    }

    fn release(&self, ip: IpAddr) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        if !self.uses_table() {
            return;
        }
        let now = Instant::now();
        let mut addresses = self.lock();
        if let Some(address) = addresses.get_mut(&ip) {
            address.connections = address.connections.saturating_sub(1);
            if address.connections == 0 && (address.failures == 0 || self.expired(address, now)) {
                addresses.remove(&ip);
            }
        }
    }

    /// Starts a new failure window when the current one is over.
    fn roll_window(&self, address: &mut Address, now: Instant) {
        if self.expired(address, now) {
            address.failures = 0;
            address.window_start = now;
        }
    }

    fn expired(&self, address: &Address, now: Instant) -> bool {
        now.duration_since(address.window_start) >= self.window
    }

    /// The table; a poisoned lock (a panic while holding it) still holds consistent
    /// counts, so it is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, AHashMap<IpAddr, Address>> {
        self.addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Address {
    fn fresh(now: Instant) -> Self {
        Address {
            connections: 0,
            failures: 0,
            window_start: now,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.ip);
    }
}

#[cfg(test)]
mod tests;
