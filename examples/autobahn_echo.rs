//! The echo server the Autobahn TestSuite runs against: the real engine (acceptor,
//! connection task, frame decoder, close handshake) echoing every message with its
//! opcode, with limits raised for the suite.
//!
//! ```sh
//! cargo run --release --example autobahn_echo -- 127.0.0.1:9001   # prints READY <port>
//! kosoku ws://127.0.0.1:9001/ -p 2 -o OUT -x '12.*' -x '13.*'
//! ```
//! `scripts/autobahn` runs both and compares the results with `tests/autobahn/`.

use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned())
        .parse()?;
    let engine = shardcast::internals::conformance::echo_engine(listen, 2)?;
    println!(
        "READY {}",
        engine.local_addr().expect("the engine listens").port()
    );
    engine.wait();
    Ok(())
}
