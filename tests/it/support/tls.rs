//! TLS for tests: a throwaway CA that issues server certificates (rcgen, at test time),
//! PEM files on disk for the engine, and clients that trust only that CA: wss with
//! tokio-rustls + tokio-tungstenite, and raw HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{WAIT, WsClient};

/// A test certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, the only root the test clients trust.
    pub root: CertificateDer<'static>,
}

/// A server certificate and key as PEM files.
pub struct ServerCert {
    /// The leaf as the server presents it.
    pub der: CertificateDer<'static>,
    /// The PEM chain file.
    pub cert_path: PathBuf,
    /// The PEM key file.
    pub key_path: PathBuf,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let root = params
            .self_signed(&key)
            .expect("CA certificate")
            .der()
            .clone();
        TestCa {
            issuer: Issuer::new(params, key),
            root,
        }
    }

    /// A certificate for `localhost` and 127.0.0.1, written to `dir/{name}.pem` and
    /// `dir/{name}.key`.
    pub fn issue(&self, dir: &Path, name: &str) -> ServerCert {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        ServerCert {
            der: cert.der().clone(),
            cert_path,
            key_path,
        }
    }

    /// The engine setting that serves `cert`.
    pub fn config(cert: &ServerCert) -> shardcast::tls::TlsConfig {
        shardcast::tls::TlsConfig::new(&cert.cert_path, &cert.key_path)
    }

    /// A TLS connection to `addr` that trusts only this CA (fails on any other certificate).
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("server name");
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        tokio::time::timeout(WAIT, connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)?
    }

    /// A wss client on `addr`'s `/ws`.
    pub async fn wss(&self, addr: SocketAddr) -> WsClient {
        let tls = self.connect(addr).await.expect("TLS handshake");
        WsClient::over(
            &format!("wss://localhost:{}/ws", addr.port()),
            Box::new(tls),
        )
        .await
    }

    /// A wss client authenticated as `user` (dev auth); returns its client id too.
    pub async fn login(&self, addr: SocketAddr, user: &str) -> (WsClient, String) {
        let mut client = self.wss(addr).await;
        let id = client.authenticate(user).await;
        (client, id)
    }

    /// One HTTPS request (`Connection: close`): status and body.
    pub async fn https(&self, addr: SocketAddr, request: &str) -> (u16, String) {
        let mut tls = self.connect(addr).await.expect("TLS handshake");
        tls.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
            .await
            .expect("response in time")
            .expect("response ends with close_notify");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (status.unwrap_or(0), body.unwrap_or_default())
    }

    /// The certificate the server at `addr` presents now.
    pub async fn presented(&self, addr: SocketAddr) -> std::io::Result<CertificateDer<'static>> {
        let tls = self.connect(addr).await?;
        let certs = tls
            .get_ref()
            .1
            .peer_certificates()
            .expect("server certificate");
        Ok(certs[0].clone().into_owned())
    }
}

/// `GET path` over HTTPS, closing after the answer.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// A fresh temporary directory.
pub fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shardcast-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
