//! The integration suite: one binary, real WebSocket clients over loopback, real
//! processes and signals. See `support/` for the harness.

mod support;

mod delivery;
mod encryption;
mod http_api;
mod jwt_auth;
mod protocol;
mod serve_binary;
