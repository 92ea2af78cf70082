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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{TlsClient, client_config};
    use crate::ws::frame::{self, OP_TEXT};
    use crate::ws::handshake::accept_for;
    use crate::ws::{ReadStatus, WsConn};

    /// A one-connection wss server: TLS with a fresh self-signed certificate, the 101,
    /// then `messages` text frames in one write (many frames per record, records per read).
    async fn serve_once(listener: tokio::net::TcpListener, messages: usize) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut head = vec![0u8; 4096];
        let n = tls.read(&mut head).await.unwrap();
        let text = String::from_utf8_lossy(&head[..n]).to_string();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(key.trim())
        )
        .into_bytes();
        for i in 0..messages {
            frame::encode_unmasked(OP_TEXT, format!("message {i}").as_bytes(), &mut out);
        }
        tls.write_all(&out).await.unwrap();
        tls.flush().await.unwrap();
        let _ = tls.read(&mut head).await;
    }

    #[tokio::test]
    async fn wss_upgrades_and_reads_every_message_through_rustls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_once(listener, 3000));
        let tls = TlsClient::new(client_config(None).unwrap(), "localhost").unwrap();
        let opts = crate::ws::ConnOptions::default();
        let (mut conn, _) = WsConn::connect(addr, None, Some(&tls), "localhost", "/ws", &opts)
            .await
            .expect("wss connects");
        let mut got = Vec::new();
        while got.len() < 3000 {
            if !conn.has_buffered() {
                conn.readable().await.unwrap();
            }
            let drained = conn
                .drain(&mut |m: &[u8], _| got.push(String::from_utf8_lossy(m).to_string()))
                .unwrap();
            assert_eq!(drained.status, ReadStatus::Open);
        }
        assert_eq!(got[2999], "message 2999");
        conn.send_text(b"bye").await.unwrap();
        server.await.unwrap();
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("load-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
    }
}
