//! `shardcast emit`: publish one envelope to every node through Redis, like an Ignis
//! `WebSocketEmitter`.

use shardcast::redis::Emitter;

use super::CommandError;
use super::args::EmitArgs;

/// Publishes the envelope `args` describe; the error says what to check (e.g. "cannot
/// reach Redis at 127.0.0.1:6379: …").
pub fn emit(args: EmitArgs) -> Result<(), CommandError> {
    if !args.exclude.is_empty() && (args.client.is_some() || args.user.is_some()) {
        return Err(CommandError::Emit(
            "--exclude applies to --room and --broadcast only".to_owned(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::Emit(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(emit_once(&args))
        .map_err(|e| CommandError::Emit(e.to_string()))
}

async fn emit_once(args: &EmitArgs) -> Result<(), shardcast::redis::EmitterError> {
    let emitter = match args.sharded {
        true => Emitter::connect_sharded(&args.redis).await?,
        false => Emitter::connect(&args.redis).await?,
    };
    let (data, event) = (args.data.as_deref(), args.event.as_str());
    let sent = if let Some(client) = &args.client {
        emitter.to_client(client, event, data).await
    } else if let Some(user) = &args.user {
        emitter.to_user(user, event, data).await
    } else if let Some(room) = &args.room {
        emitter.to_room(room, event, data, &args.exclude).await
    } else {
        emitter.broadcast(event, data, &args.exclude).await
    };
    emitter.shutdown().await;
    sent
}
