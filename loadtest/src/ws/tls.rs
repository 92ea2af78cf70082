//! The client side of TLS for a run's `wss://` URL: which server certificates to trust
//! (`--tls-ca FILE`, or none checked with `--tls-insecure`) and the handshake.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::transport::{TlsTransport, Transport};

/// The client side of TLS for every connection of a run (`wss://` URLs).
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// TLS to `host` (the certificate must name it) with `config`.
    pub fn new(config: Arc<rustls::ClientConfig>, host: &str) -> Result<TlsClient, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host:?} is no TLS server name: {e}"))?;
        Ok(TlsClient { config, name })
    }

    pub(super) async fn handshake(&self, tcp: TcpStream) -> io::Result<Transport> {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let (tcp, tls) = connector
            .connect(self.name.clone(), tcp)
            .await?
            .into_inner();
        Ok(Transport::Tls(Box::new(TlsTransport {
            tcp,
            tls,
            buffered: false,
        })))
    }
}

/// The client configuration: trust the PEM roots in `ca`, or (`ca` = `None`) accept any
/// certificate (a load test against a self-signed server).
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match ca {
        Some(path) => builder
            .with_root_certificates(roots(path)?)
            .with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
    }
    match roots.is_empty() {
        true => Err(format!("--tls-ca {}: no certificate in it", path.display())),
        false => Ok(roots),
    }
}

/// `--tls-insecure`: any certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
