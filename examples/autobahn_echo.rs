//! The echo server the Autobahn TestSuite runs against: the real engine (acceptor,
//! connection task, frame decoder, close handshake) echoing every message with its
//! opcode, with limits raised for the suite. `--compression` turns permessage-deflate
//! on (sections 12 and 13 need it).
//!
//! ```sh
//! cargo run --release --example autobahn_echo -- 127.0.0.1:9001 --compression  # READY <port>
//! kosoku ws://127.0.0.1:9001/ -p 2 -o OUT
//! ```
//! `scripts/autobahn` runs both and compares the results with `tests/autobahn/`.

use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let compression = args.iter().any(|arg| arg == "--compression");
    let listen: SocketAddr = args
        .iter()
        .find(|arg| !arg.starts_with("--"))
        .map_or("127.0.0.1:9001", String::as_str)
        .parse()?;
    let engine = shardcast::internals::conformance::echo_engine(listen, 2, compression)?;
    println!(
        "READY {}",
        engine.local_addr().expect("the engine listens").port()
    );
    engine.wait();
    Ok(())
}
