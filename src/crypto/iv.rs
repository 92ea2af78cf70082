//! Random AES-GCM IVs, cut from a per-thread block of OS randomness.

use std::cell::RefCell;

use p256::elliptic_curve::rand_core::{OsRng, RngCore};

use super::IV_LEN;

/// A fresh IV from the OS random source, cut from a per-thread block so that one
/// `getrandom` call serves [`IV_POOL_LEN`]` / 12` messages (it cost over half of a 165-byte
/// seal). IVs are public, so holding the next ones in memory reveals nothing; each byte is
/// handed out once. A `fork`ed child would repeat its parent's pending IVs, which is
/// harmless unless both go on encrypting under the same session keys.
pub(super) fn random_iv() -> [u8; IV_LEN] {
    thread_local! {
        static POOL: RefCell<IvPool> = const {
            RefCell::new(IvPool { buf: [0; IV_POOL_LEN], at: IV_POOL_LEN })
        };
    }
    POOL.with_borrow_mut(IvPool::take)
}

/// Bytes of OS randomness fetched at once for IVs (a multiple of [`IV_LEN`]).
pub(super) const IV_POOL_LEN: usize = IV_LEN * 341;

struct IvPool {
    buf: [u8; IV_POOL_LEN],
    at: usize,
}

impl IvPool {
    fn take(&mut self) -> [u8; IV_LEN] {
        if self.at == IV_POOL_LEN {
            OsRng.fill_bytes(&mut self.buf);
            self.at = 0;
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&self.buf[self.at..self.at + IV_LEN]);
        self.at += IV_LEN;
        iv
    }
}
