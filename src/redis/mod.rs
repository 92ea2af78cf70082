//! PLACEHOLDER until the Redis layer lands.

use crate::cli::EmitArgs;
use crate::engine::EngineBuilder;

/// Attaches the Redis bridge when URLs are given.
pub fn attach(builder: EngineBuilder, urls: &[String]) -> EngineBuilder {
    let _ = urls;
    builder
}

/// Publishes one envelope.
pub fn emit_once(args: EmitArgs) -> Result<(), String> {
    let _ = args;
    Err("Redis support is not built yet".into())
}
