//! The Lua scripts that keep history and presence in Redis, each atomic on the Redis
//! that runs it, and the keys they use.
//!
//! Keys of room R (one hash tag per room, so a room's keys are always in one slot):
//! `shardcast:{R}:history` (list of positioned envelopes, oldest first),
//! `shardcast:{R}:meta` (hash: `e` epoch, `o` top offset), `shardcast:{R}:presence`
//! (hash: client id → its `ws:join` data), `shardcast:{R}:presence-exp` (sorted set:
//! client id → expiry, in ms since the Unix epoch).
//!
//! The publisher task loads every script (`SCRIPT LOAD`) on each connection before it
//! sends anything, and runs them with `EVALSHA`; a Redis that forgot them (`NOSCRIPT`:
//! restarted, or `SCRIPT FLUSH`) makes it reconnect and load them again.

use std::sync::LazyLock;

/// One script: its source and SHA-1.
pub(crate) struct LuaScript {
    script: redis::Script,
    source: &'static str,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        LuaScript {
            script: redis::Script::new(source),
            source,
        }
    }

    /// The SHA-1 `EVALSHA` names it by.
    pub(crate) fn sha(&self) -> &str {
        self.script.get_hash()
    }

    /// `SCRIPT LOAD` of it.
    pub(crate) fn load_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(self.source);
        cmd
    }

    /// `EVALSHA` of it with `keys` and `args`.
    pub(crate) fn eval_cmd(&self, keys: &[String], args: &[bytes::Bytes]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.sha()).arg(keys.len());
        for key in keys {
            cmd.arg(key);
        }
        for arg in args {
            cmd.arg(&arg[..]);
        }
        cmd
    }
}

/// Publishes to a history room: gives the message the room's next offset (starting the
/// room's epoch when it has none), appends the positioned envelope to the room's list,
/// trims it to the last `size`, renews both keys' TTL and PUBLISHes the same envelope.
///
/// KEYS: history, meta. ARGV: size, ttl seconds, a fresh epoch, channel, the envelope
/// without its closing brace. Returns the offset.
pub(crate) static PUBLISH: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
local envelope = ARGV[5] .. ',"offset":' .. string.format('%d', offset) .. ',"epoch":"' .. epoch .. '"}'
redis.call('RPUSH', KEYS[1], envelope)
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[4], envelope)
return offset
"#,
    )
});

/// Reads a room's history (starting its epoch when it has none, so a joining client
/// learns the epoch its first message will carry): returns `{epoch, top, covered,
/// envelopes}` following the rules of [`crate::history`].
///
/// KEYS: history, meta. ARGV: ttl seconds, a fresh epoch, since offset (`""`: none),
/// since epoch, limit.
pub(crate) static READ: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
local top = tonumber(redis.call('HGET', KEYS[2], 'o') or '0')
local len = redis.call('LLEN', KEYS[1])
local limit = tonumber(ARGV[5])
if ARGV[3] == '' then
  if limit == 0 or len == 0 then return {epoch, top, 1, {}} end
  local take = math.min(limit, len)
  return {epoch, top, 1, redis.call('LRANGE', KEYS[1], len - take, -1)}
end
local since = tonumber(ARGV[3])
if ARGV[4] ~= epoch or since > top or top - since > len then return {epoch, top, 0, {}} end
local missed = top - since
if missed == 0 or limit == 0 then return {epoch, top, 1, {}} end
local first = len - missed
return {epoch, top, 1, redis.call('LRANGE', KEYS[1], first, math.min(len - 1, first + limit - 1))}
"#,
    )
});

/// A client joins a presence room: records it with its expiry, renews the keys' TTL,
/// and PUBLISHes its `ws:join` envelope.
///
/// KEYS: presence, presence-exp. ARGV: client id, its data, expiry (ms), keys' TTL (ms),
/// channel, envelope.
pub(crate) static PRESENCE_JOIN: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"#,
    )
});

/// A client leaves a presence room: when it was there, removes it and PUBLISHes its
/// `ws:leave` envelope (so a leave is announced once, even after an expiry reaped it).
///
/// KEYS: presence, presence-exp. ARGV: client id, channel, envelope. Returns 1 when it
/// was there.
pub(crate) static PRESENCE_LEAVE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
"#,
    )
});

/// A node renews its own clients of one presence room (re-adding any an expiry reaped
/// while the node was too slow to renew).
///
/// KEYS: presence, presence-exp. ARGV: expiry (ms), keys' TTL (ms), then client id and
/// data pairs.
pub(crate) static PRESENCE_REFRESH: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"#,
    )
});

/// Removes the expired clients of a presence room (their node died), PUBLISHes a
/// `ws:leave` for each, and returns `{expired data…, '', current data…}`: the caller
/// delivers the leaves to its own members and reads the rest as the room's presence.
///
/// KEYS: presence, presence-exp. ARGV: now (ms), channel, this node's server id, the
/// room as a JSON string.
pub(crate) static PRESENCE_READ: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local out = {}
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(gone) do
  local data = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if data then
    redis.call('PUBLISH', ARGV[2], '{"serverId":"' .. ARGV[3] .. '","type":"room","target":' .. ARGV[4] .. ',"event":"ws:leave","data":' .. data .. '}')
    table.insert(out, data)
  end
end
table.insert(out, '')
for _, data in ipairs(redis.call('HVALS', KEYS[1])) do
  table.insert(out, data)
end
return out
"#,
    )
});

/// Every script, loaded on each new connection.
pub(crate) fn all() -> [&'static LuaScript; 6] {
    [
        &PUBLISH,
        &READ,
        &PRESENCE_JOIN,
        &PRESENCE_LEAVE,
        &PRESENCE_REFRESH,
        &PRESENCE_READ,
    ]
}

/// The keys of room `room`: history, meta.
pub(crate) fn history_keys(room: &str) -> [String; 2] {
    [
        format!("shardcast:{{{room}}}:history"),
        format!("shardcast:{{{room}}}:meta"),
    ]
}

/// The keys of room `room`: presence, presence-exp.
pub(crate) fn presence_keys(room: &str) -> [String; 2] {
    [
        format!("shardcast:{{{room}}}:presence"),
        format!("shardcast:{{{room}}}:presence-exp"),
    ]
}
