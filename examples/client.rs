//! The README's "Try it" client: connects to a shardcast (or any Ignis-protocol) server,
//! authenticates with a token, joins rooms once `connected` came, and prints every message
//! it receives, one JSON text per line, until the server closes the connection or Ctrl-C.
//!
//! ```sh
//! cargo run --release --example client -- ws://127.0.0.1:8081/ws alice public-news
//! #                              URL                   TOKEN ROOM...
//! ```
//!
//! With a `--dev` server the token is the user id; with `--jwt-secret S` mint one with
//! `shardcast token --secret S --sub alice`. It sends a heartbeat every 30 s so the server
//! does not close it as silent (4002). Plain `ws://` only (no TLS in this example).

use std::error::Error;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How often the client tells the server it is alive (the server's default timeout: 90 s).
const HEARTBEAT: Duration = Duration::from_secs(30);

/// How long one blocking read waits before the heartbeat clock is checked.
const READ_SLICE: Duration = Duration::from_secs(1);

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args, |line| println!("{line}")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Connects to `args[0]` with token `args[1]`, joins the rooms `args[2..]` once the server
/// answered `connected`, and hands every received text (and finally the close) to
/// `print`. Returns when the server closes.
pub fn run(args: &[String], mut print: impl FnMut(&str)) -> Result<(), Box<dyn Error>> {
    let [url, token, rooms @ ..] = args else {
        return Err(
            "usage: client URL TOKEN [ROOM...]  (e.g. ws://127.0.0.1:8081/ws alice public-news)"
                .into(),
        );
    };
    let (socket, _) = tungstenite::connect(url.as_str())
        .map_err(|e| format!("cannot connect to {url}: {e} (is the server running?)"))?;
    let mut client = Client::new(socket)?;
    client.send(json!({"event": "authenticate", "data": {"token": token}}))?;
    // Anything but heartbeats sent before `connected` is refused ("Not authenticated").
    loop {
        match client.next()? {
            Incoming::Text(text) => {
                print(&text);
                if is_event(&text, "connected") {
                    break;
                }
            }
            Incoming::Closed(how) => return Err(format!("not authenticated: {how}").into()),
        }
    }
    if !rooms.is_empty() {
        client.send(json!({"event": "join", "data": {"rooms": rooms}}))?;
    }
    loop {
        match client.next()? {
            Incoming::Text(text) => print(&text),
            Incoming::Closed(how) => {
                print(&how);
                return Ok(());
            }
        }
    }
}

/// Whether `text` is a JSON message whose `event` is `name`.
fn is_event(text: &str, name: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v.get("event").and_then(|e| e.as_str()) == Some(name))
}

/// What the server sent.
enum Incoming {
    /// A text (or UTF-8 binary) message.
    Text(String),
    /// The connection ended: `closed by the server: CODE REASON`.
    Closed(String),
}

/// The socket and the heartbeat clock.
struct Client {
    socket: Socket,
    last_heartbeat: Instant,
}

impl Client {
    fn new(mut socket: Socket) -> Result<Client, Box<dyn Error>> {
        if let MaybeTlsStream::Plain(tcp) = socket.get_mut() {
            tcp.set_read_timeout(Some(READ_SLICE))?;
        }
        Ok(Client {
            socket,
            last_heartbeat: Instant::now(),
        })
    }

    fn send(&mut self, message: serde_json::Value) -> Result<(), Box<dyn Error>> {
        self.socket.send(Message::text(message.to_string()))?;
        Ok(())
    }

    /// The next message; sends a heartbeat whenever one is due while waiting.
    fn next(&mut self) -> Result<Incoming, Box<dyn Error>> {
        loop {
            if self.last_heartbeat.elapsed() >= HEARTBEAT {
                self.send(json!({"event": "heartbeat"}))?;
                self.last_heartbeat = Instant::now();
            }
            match self.socket.read() {
                Ok(Message::Text(text)) => return Ok(Incoming::Text(text.as_str().to_owned())),
                Ok(Message::Binary(bytes)) => {
                    return Ok(Incoming::Text(String::from_utf8_lossy(&bytes).into_owned()));
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    return Ok(Incoming::Closed(format!(
                        "closed by the server: {code} {reason}"
                    )));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(tungstenite::Error::ConnectionClosed) => {
                    return Ok(Incoming::Closed("closed".into()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
