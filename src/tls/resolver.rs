//! The certificate every handshake presents, swappable while handshakes run.
//!
//! One `RwLock<Arc<CertifiedKey>>`: a handshake clones the `Arc` under the read lock; a
//! reload swaps it under the write lock. A poisoned lock (a panic while swapping, which
//! cannot leave a half-written `Arc`) is used as is.

use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A [`ResolvesServerCert`] that presents one certificate, replaced on reload.
#[derive(Debug)]
pub(super) struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl ReloadableCert {
    /// Presents `key` until [`ReloadableCert::replace`].
    pub fn new(key: CertifiedKey, provider: Arc<CryptoProvider>) -> Self {
        ReloadableCert {
            current: RwLock::new(Arc::new(key)),
            provider,
        }
    }

    /// The provider keys are loaded with.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// New handshakes present `key` from now on.
    pub fn replace(&self, key: CertifiedKey) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(key);
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
