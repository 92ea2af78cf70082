//! A connection's socket after the upgrade: plain TCP, or TCP carrying TLS.
//!
//! # Contract
//!
//! - **Owns** the `TcpStream` and, for TLS, the rustls [`ServerConnection`] split off the
//!   handshake's stream (with whatever plaintext and ciphertext rustls already buffered).
//!   Shared by the shard's table entry (writes) and the connection's task (reads, waits)
//!   through an `Rc`; shard thread only. The TLS state sits behind a `RefCell` whose
//!   borrows never outlive a call (no `.await` holds one).
//! - **Plain** sockets cost what they cost before: each call is one `match` in front of
//!   the same `TcpStream` call; no copy, no allocation, and the TLS state is boxed so a
//!   plain socket carries only the discriminant.
//! - **Writes** (TLS): plaintext goes through [`ServerConnection::writer`] (rustls seals it
//!   into records) and the records out with `write_tls` on the non-blocking socket.
//!   Records the socket refused stay in rustls; every later write sends them first, and
//!   [`Socket::settle`] turns a drained queue with records left into `Blocked`, so the task
//!   waits for writability and the table entry flushes again.
//! - **Reads** (TLS): `read_tls` + `process_new_packets`, then plaintext out of
//!   [`ServerConnection::reader`] into the caller's buffer (the shard's scratch buffer).
//!   A read says `WouldBlock` only when rustls holds no plaintext *and* the socket said
//!   `WouldBlock` (which is what clears the socket's readiness), so waiting on the TCP
//!   socket never strands input rustls already decrypted. What the HTTP phase left
//!   decrypted in rustls is taken out at the hand-over (`shard::accept`, into the
//!   connection's leftover bytes).
//! - **Close**: [`Socket::shutdown_write`] sends TLS `close_notify` (and the records still
//!   queued) before the TCP half-close.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};

use rustls::ServerConnection;
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;

use crate::conn::Flushed;

/// The socket of an upgraded connection.
pub(crate) enum Socket {
    /// Plain TCP.
    Plain(TcpStream),
    /// TCP carrying TLS.
    Tls(Box<TlsSocket>),
}

/// TCP and the rustls connection that encrypts it.
pub(crate) struct TlsSocket {
    tcp: TcpStream,
    tls: RefCell<ServerConnection>,
}

impl Socket {
    /// A TLS socket from the parts of a finished handshake.
    pub fn tls(tcp: TcpStream, tls: ServerConnection) -> Socket {
        let tls = RefCell::new(tls);
        Socket::Tls(Box::new(TlsSocket { tcp, tls }))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Socket::Plain(tcp) => tcp,
            Socket::Tls(tls) => &tls.tcp,
        }
    }

    /// Waits for `interest` on the TCP socket (TLS too: see the contract on reads). The
    /// future is TCP's own, so the connection task that holds it keeps its size.
    pub fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> + '_ {
        self.tcp().ready(interest)
    }

    /// Reads what is there without waiting (0: end of input).
    #[inline]
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.try_read(buf),
            Socket::Tls(tls) => tls.try_read(buf),
        }
    }

    /// Writes what the socket takes now (TLS: what rustls took).
    #[inline]
    pub fn try_write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.try_write_vectored(slices),
            Socket::Tls(tls) => tls.try_write_vectored(slices),
        }
    }

    /// The outcome of a flush, once records rustls still holds are accounted for: a
    /// drained queue whose records the socket refused is `Blocked`.
    #[inline]
    pub fn settle(&self, flushed: Flushed) -> Flushed {
        match (self, flushed) {
            (Socket::Plain(_), flushed) => flushed,
            (Socket::Tls(tls), Flushed::Done | Flushed::CloseSent) => match tls.send_records() {
                Ok(true) => flushed,
                Ok(false) => Flushed::Blocked,
                Err(_) => Flushed::Failed,
            },
            (Socket::Tls(_), flushed) => flushed,
        }
    }

    /// Half-closes the write side; TLS first sends `close_notify` and every queued record
    /// (the caller bounds the wait).
    pub async fn shutdown_write(&self) -> io::Result<()> {
        if let Socket::Tls(tls) = self {
            tls.tls.borrow_mut().send_close_notify();
            while !tls.send_records()? {
                tls.tcp.writable().await?;
            }
        }
        socket2::SockRef::from(self.tcp()).shutdown(std::net::Shutdown::Write)
    }
}

impl TlsSocket {
    /// Plaintext into `buf`: what rustls holds, else records from the socket.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut tls = self.tls.borrow_mut();
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if tls.read_tls(&mut Nonblocking(&self.tcp))? == 0 {
                // The peer closed TCP; rustls reports a truncation (no close_notify).
                tls.process_new_packets().map_err(invalid)?;
                return tls.reader().read(buf);
            }
            let processed = tls.process_new_packets().map_err(invalid);
            // Alerts and protocol replies rustls queued while processing.
            let _ = send_queued(&mut tls, &self.tcp);
            processed?;
        }
    }

    /// Queued records first, then as much of `slices` as rustls takes.
    fn try_write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut tls = self.tls.borrow_mut();
        if !send_queued(&mut tls, &self.tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = tls.writer().write_vectored(slices)?;
        send_queued(&mut tls, &self.tcp)?;
        match taken {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// Sends queued records; true when none is left.
    fn send_records(&self) -> io::Result<bool> {
        send_queued(&mut self.tls.borrow_mut(), &self.tcp)
    }
}

/// Writes rustls' queued records until none is left (true) or the socket is full (false).
fn send_queued(tls: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut Nonblocking(tcp)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn invalid(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// `std::io` over the non-blocking `TcpStream` calls (they clear readiness on
/// `WouldBlock`, so the task's next wait is a real one).
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

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// A plain socket must not pay for TLS: the TLS state is boxed, and the enum fits in
    /// the stream's own niche, so `Rc<Socket>` is the allocation `Rc<TcpStream>` was.
    #[test]
    fn plain_socket_stays_as_small_as_the_stream() {
        let socket = std::mem::size_of::<super::Socket>();
        let stream = std::mem::size_of::<tokio::net::TcpStream>();
        let tls = std::mem::size_of::<super::TlsSocket>();
        eprintln!(
            "Socket: {socket} bytes, TcpStream: {stream} bytes, boxed TLS state: {tls} bytes"
        );
        assert!(socket <= stream, "Socket is {socket} bytes");
    }
}
