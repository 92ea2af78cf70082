//! The integration suite: one binary, real WebSocket clients over loopback, real
//! processes and signals. See `support/` for the harness.

mod support;

mod architecture;
mod axum_example;
mod compression;
mod config_cli;
mod dashboard;
mod delivery;
mod emitter;
mod encryption;
mod fleet;
mod history;
mod history_fleet;
mod http_api;
mod jwt_auth;
mod limits;
mod metrics;
mod metrics_redis;
mod mount;
mod packaging;
mod protocol;
mod readme;
mod redis_bridge;
mod redis_engine;
mod redis_faults;
mod redis_interest;
mod redis_sharded;
mod refpeer_interop;
mod serve_binary;
mod signals;
mod tls;
