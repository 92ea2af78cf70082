//! Reading the PEM files into a checked certificate chain and signing key.

use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsConfig;

/// Why the TLS certificate or key cannot be used. Each message names the file and what it
/// must contain.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read: check the path and its permissions.
    #[error("cannot read the TLS {what} file {path}: {source}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate file holds no certificate: give the chain in PEM, leaf first.
    #[error(
        "no certificate in {0}: expected the certificate chain in PEM (`-----BEGIN CERTIFICATE-----` blocks, leaf first)"
    )]
    NoCertificate(PathBuf),
    /// The key file holds no private key: give the leaf's key in PEM.
    #[error(
        "no private key in {0}: expected a PEM private key (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
    )]
    NoKey(PathBuf),
    /// A PEM block is damaged (truncated, bad base64): replace the file.
    #[error("malformed PEM in the TLS {what} file {path}: {detail}")]
    Malformed {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the parser found.
        detail: String,
    },
    /// rustls refused the pair: an unsupported key type, or a key that does not belong
    /// to the first certificate of the chain.
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Rejected(String),
    /// [`crate::Engine::reload_tls`] on an engine started without TLS.
    #[error("TLS is not enabled on this engine: nothing to reload")]
    NotEnabled,
}

/// The chain and key of `config`, checked to belong together.
pub(super) fn load(
    config: &TlsConfig,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(&config.cert_path)?;
    let key = private_key(&config.key_path)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Rejected(e.to_string()))
}

/// Every certificate of the PEM file at `path`, in order.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    const WHAT: &str = "certificate";
    let text = read(path, WHAT)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(path, WHAT, e))?;
    match chain.is_empty() {
        true => Err(TlsError::NoCertificate(path.to_owned())),
        false => Ok(chain),
    }
}

/// The first private key of the PEM file at `path`.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "private key";
    let text = read(path, WHAT)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        e => malformed(path, WHAT, e),
    })
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn malformed(path: &Path, what: &'static str, e: pem::Error) -> TlsError {
    TlsError::Malformed {
        what,
        path: path.to_owned(),
        detail: e.to_string(),
    }
}
