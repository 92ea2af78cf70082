//! What a [`super::WsConn`] runs over: plain TCP, or TLS (rustls) over TCP.
//!
//! Ownership as for the connection: one task on one worker thread. The TLS handshake runs
//! through tokio-rustls; the rustls [`ClientConnection`] is then split off and driven
//! by hand like the plain socket, so reads stay non-blocking `read()`s into the worker's
//! shared buffer: `read_tls` + `process_new_packets`, then plaintext out of the reader.
//! Plaintext left in rustls after a read counts as readable. Writes seal into rustls and
//! send every record before returning.

use std::io::{self, ErrorKind, Read, Write};

use rustls::ClientConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::tls::TlsClient;

/// Outcome of one `read(2)` (TLS: of one plaintext read).
pub(super) enum ReadOnce {
    /// `n` bytes; `drained` when the read was short (nothing more queued).
    Data { n: usize, drained: bool },
    /// Nothing to read.
    WouldBlock,
    /// The peer closed.
    Eof,
}

/// A connection's byte stream.
pub(super) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsTransport>),
}

pub(super) struct TlsTransport {
    pub(super) tcp: TcpStream,
    pub(super) tls: ClientConnection,
    /// Plaintext waits in rustls (the socket may not become readable again for it).
    pub(super) buffered: bool,
}

impl Transport {
    /// `tcp` as is, or after a TLS handshake.
    pub async fn over(tcp: TcpStream, tls: Option<&TlsClient>) -> io::Result<Transport> {
        match tls {
            None => Ok(Transport::Plain(tcp)),
            Some(tls) => tls.handshake(tcp).await,
        }
    }

    /// Writes all of `bytes` (TLS: and every record they became).
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.write_all(bytes).await,
            Transport::Tls(t) => {
                t.tls.writer().write_all(bytes)?;
                t.send_records().await
            }
        }
    }

    /// Waits until a read would find something. Cancel-safe.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.readable().await,
            Transport::Tls(t) if t.buffered => Ok(()),
            Transport::Tls(t) => t.tcp.readable().await,
        }
    }

    /// Reads, waiting when nothing is there (0: end of input).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Transport::Plain(tcp) = self {
            return tcp.read(buf).await;
        }
        loop {
            match self.read_once(buf)? {
                ReadOnce::Data { n, .. } => return Ok(n),
                ReadOnce::Eof => return Ok(0),
                ReadOnce::WouldBlock => self.readable().await?,
            }
        }
    }

    /// The TCP socket underneath (socket options only: reading or writing it directly
    /// would bypass TLS).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(t) => &t.tcp,
        }
    }

    /// One non-blocking read.
    pub fn read_once(&mut self, buf: &mut [u8]) -> io::Result<ReadOnce> {
        match self {
            Transport::Plain(tcp) => plain_read_once(tcp, buf),
            Transport::Tls(t) => t.read_once(buf),
        }
    }
}

/// One `read(2)`. A short read means the socket's receive queue was emptied, so the
/// cached readiness is cleared at once (tokio only clears it on `EAGAIN`): this saves
/// the second `read(2)` per wake-up that would only return `EAGAIN`. Data arriving
/// later raises a new edge, so no wake-up is lost.
fn plain_read_once(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<ReadOnce> {
    let mut got = 0;
    let res = tcp.try_io(Interest::READABLE, || {
        got = nix::unistd::read(tcp, buf).map_err(io::Error::from)?;
        if got > 0 && got < buf.len() {
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(got)
        }
    });
    match res {
        Ok(0) => Ok(ReadOnce::Eof),
        Ok(n) => Ok(ReadOnce::Data { n, drained: false }),
        Err(e) if e.kind() == ErrorKind::WouldBlock && got > 0 => Ok(ReadOnce::Data {
            n: got,
            drained: true,
        }),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(ReadOnce::WouldBlock),
        Err(e) => Err(e),
    }
}

impl TlsTransport {
    fn read_once(&mut self, buf: &mut [u8]) -> io::Result<ReadOnce> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(0) => return Ok(ReadOnce::Eof),
                Ok(n) => {
                    self.buffered = self
                        .tls
                        .process_new_packets()
                        .map_err(invalid)?
                        .plaintext_bytes_to_read()
                        > 0;
                    return Ok(ReadOnce::Data { n, drained: false });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            self.buffered = false;
            match self.tls.read_tls(&mut Nonblocking(&self.tcp)) {
                Ok(0) => return Ok(ReadOnce::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(ReadOnce::WouldBlock),
                Err(e) => return Err(e),
            }
            self.tls.process_new_packets().map_err(invalid)?;
        }
    }

    async fn send_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut Nonblocking(&self.tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.tcp.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn invalid(err: rustls::Error) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, err)
}

/// `std::io` over tokio's non-blocking calls (they clear readiness on `WouldBlock`).
struct Nonblocking<'a>(&'a TcpStream);

impl Read for Nonblocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
