//! The measuring server of `loadtest/mount.sh`: one axum application with the engine
//! either mounted on the application's port (`mounted`) or on its own listener (`own`),
//! HS256 JWT authentication and mimalloc as the standalone server has them, one shard, so
//! the two ways in can be compared with the same binary and the same load.
//!
//! ```text
//! cargo run --release --example mounted_server -- mounted 127.0.0.1:0 SECRET
//! ```
//!
//! prints `READY <port>` (the WebSocket is at `ws://127.0.0.1:<port>/ws` in both modes)
//! and runs until interrupted.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use shardcast::Engine;
use shardcast::auth::jwt::{JwtAlgorithm, JwtVerifier};
use shardcast::hooks::JwtAuthenticator;

/// The allocator the standalone server uses, so the figures compare with its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: mounted_server <mounted|own> <ADDR> <HS256 SECRET>";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, addr, secret] = args.as_slice() else {
        return Err(usage.into());
    };
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{usage}: {e}"))?;
    let verifier = JwtVerifier::from_secret(JwtAlgorithm::Hs256, secret.as_bytes())?;
    let builder = Engine::builder()
        .configure(|c| {
            c.shards = 1;
            c.listen = addr;
        })
        .authenticator(JwtAuthenticator::new(verifier));
    let app = Router::new().route("/", get(|| async { "the application" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let (engine, app) = match mode.as_str() {
        "mounted" => {
            let engine = builder.without_listener().start()?;
            let app = app.route("/ws", shardcast::mount::websocket(&engine));
            println!("READY {}", listener.local_addr()?.port());
            (engine, app)
        }
        "own" => {
            let engine = builder.start()?;
            let port = engine.local_addr().map(|a| a.port()).unwrap_or_default();
            println!("READY {port}");
            (engine, app)
        }
        _ => return Err(usage.into()),
    };
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    Ok(())
}
