//! TLS on the engine's port, with rustls (no OpenSSL): the certificate and key files, a
//! certificate that can be swapped while the engine runs, and the one
//! [`rustls::ServerConfig`] every shard accepts with.
//!
//! # Contract
//!
//! - **Owns** the PEM paths ([`TlsConfig`]), the live certificate (`resolver`) and the
//!   server configuration built around it (`Tls`). Nothing here touches a socket: the
//!   shards run the handshakes (`shard::accept`) and the encrypted connections
//!   (`shard::socket`).
//! - **Threads**: `Tls` is `Send + Sync`, owned by the engine; every shard holds an
//!   `Arc` of its `ServerConfig`. A handshake reads the current certificate under a read
//!   lock held for one `Arc` clone; `Tls::reload` ([`crate::Engine::reload_tls`], any
//!   thread, e.g. a SIGHUP handler) reads and checks the files first, then swaps under
//!   the write lock.
//! - **Reload**: new handshakes use the new certificate; established connections keep
//!   the session they negotiated and are never dropped. A reload that fails (a missing
//!   file, bad PEM, a key that does not match) changes nothing: the old certificate stays.
//! - **Protocols**: TLS 1.2 and 1.3 with rustls' safe defaults (ring provider); ALPN
//!   `http/1.1` (HTTP and WebSocket upgrades share the port).

mod pem;
mod resolver;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;

pub use pem::TlsError;
use resolver::ReloadableCert;

/// Where the certificate chain and its private key are (PEM files, re-read on reload).
///
/// ```no_run
/// use shardcast::tls::TlsConfig;
///
/// let engine = shardcast::Engine::builder()
///     .authenticator(shardcast::hooks::DevAuthenticator)
///     .tls(TlsConfig::new("/etc/shardcast/cert.pem", "/etc/shardcast/key.pem"))
///     .start()
///     .expect("engine starts");
/// // Later, after the files were renewed:
/// engine.reload_tls().expect("new certificate loaded");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (`-----BEGIN CERTIFICATE-----` blocks).
    pub cert_path: PathBuf,
    /// The leaf's private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM.
    pub key_path: PathBuf,
}

impl TlsConfig {
    /// The chain at `cert_path` with the key at `key_path`.
    pub fn new(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
        }
    }
}

/// TLS as the engine runs it: the server configuration and its swappable certificate.
#[derive(Debug)]
pub(crate) struct Tls {
    config: TlsConfig,
    cert: Arc<ReloadableCert>,
    server: Arc<ServerConfig>,
}

impl Tls {
    /// Loads and checks the files of `config` and builds the server configuration.
    pub fn load(config: TlsConfig) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = pem::load(&config, &provider)?;
        let cert = Arc::new(ReloadableCert::new(key, provider.clone()));
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config,
            cert,
            server: Arc::new(server),
        })
    }

    /// The configuration every handshake uses (it follows reloads).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// Re-reads the files; on success new handshakes use them, on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = pem::load(&self.config, self.cert.provider())?;
        self.cert.replace(key);
        Ok(())
    }
}

/// `leftover` followed by the plaintext rustls decrypted during the HTTP phase that HTTP
/// did not read (frames sent right behind the upgrade request): the socket will not
/// become readable again for it, so it travels with the connection's leftover bytes.
/// `None` when rustls reports a broken connection.
pub(crate) fn with_decrypted(
    tls: &mut rustls::ServerConnection,
    mut leftover: Vec<u8>,
) -> Option<Vec<u8>> {
    use std::io::Read;
    tls.process_new_packets().ok()?;
    match tls.reader().read_to_end(&mut leftover) {
        // Read up to the end of what was decrypted (or to the peer's close_notify).
        Ok(_) => Some(leftover),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(leftover),
        Err(_) => None,
    }
}
