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
    /// It takes the publishing node's server id and a sequence number as its last two
    /// arguments (given by the publisher task) and runs at most once per number.
    pub(crate) sequenced: bool,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        LuaScript {
            script: redis::Script::new(source),
            source,
            sequenced: false,
        }
    }

    fn sequenced(source: &'static str) -> Self {
        LuaScript {
            sequenced: true,
            ..LuaScript::new(source)
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
/// Runs at most once per message: the publishing node's server id and the message's
/// sequence number (growing in the order the node's scripts run) are kept in the meta
/// hash (`n:<serverId>`), and a number not above the kept one is skipped, so a pipeline
/// resent after a failure that ran part of it publishes nothing twice.
///
/// KEYS: history, meta. ARGV: size, ttl seconds, a fresh epoch, channel, the envelope
/// without its closing brace, server id, sequence number. Returns the offset (0 when
/// skipped).
pub(crate) static PUBLISH: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::sequenced(
        r#"
local mark = 'n:' .. ARGV[6]
if tonumber(ARGV[7]) <= tonumber(redis.call('HGET', KEYS[2], mark) or '0') then return 0 end
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch)
end
redis.call('HSET', KEYS[2], mark, ARGV[7])
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

/// A client joins a presence room: records it with its expiry (Redis' clock + ttl),
/// renews the keys' TTL, and PUBLISHes its `ws:join` envelope when it was not there
/// (so running it twice announces once).
///
/// KEYS: presence, presence-exp. ARGV: client id, its data, ttl (ms), keys' TTL (ms),
/// channel, envelope.
pub(crate) static PRESENCE_JOIN: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local now = redis.call('TIME')
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if added == 1 then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return added
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

/// A node renews its own clients of one presence room (Redis' clock + ttl). One that an
/// expiry reaped while the node was too slow to renew is added back and its `ws:join`
/// PUBLISHed again, so the other nodes, which heard its `ws:leave`, hear it come back.
///
/// KEYS: presence, presence-exp. ARGV: ttl (ms), keys' TTL (ms), channel, the envelope
/// of a `ws:join` up to its data (`…"data":`), then client id and data pairs.
pub(crate) static PRESENCE_REFRESH: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local now = redis.call('TIME')
local expiry = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1])
for i = 5, #ARGV, 2 do
  if redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('PUBLISH', ARGV[3], ARGV[4] .. ARGV[i + 1] .. ',"exclude":["' .. ARGV[i] .. '"]}')
  end
  redis.call('ZADD', KEYS[2], expiry, ARGV[i])
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
/// KEYS: presence, presence-exp. ARGV: (unused), channel, this node's server id, the
/// room as a JSON string. Expiries are on Redis' clock, so nodes' clocks do not matter.
pub(crate) static PRESENCE_READ: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r#"
local out = {}
local now = redis.call('TIME')
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now[1] * 1000 + math.floor(now[2] / 1000))
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

#[cfg(test)]
mod tests {
    //! The scripts against a real `redis-server`, started on a free port (`scripts/test`
    //! installs it).

    use super::*;
    use bytes::Bytes;

    struct Server(std::process::Child, u16);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn redis_server() -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let server = Server(child, port);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    fn args(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|a| Bytes::from(a.to_string())).collect()
    }

    #[tokio::test]
    async fn publishing_and_joining_twice_changes_nothing() {
        let server = redis_server().expect("cannot run redis-server; scripts/test installs it");
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", server.1)).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for script in all() {
            script
                .load_cmd()
                .query_async::<String>(&mut conn)
                .await
                .unwrap();
        }
        let keys = history_keys("r");
        let publish = |seq: &str| {
            let head = r#"{"serverId":"s","type":"room","target":"r","event":"e","data":1"#;
            PUBLISH.eval_cmd(
                &keys,
                &args(&["10", "60", "ep", "ws:room:r", head, "s", seq]),
            )
        };
        let offset: u64 = publish("1").query_async(&mut conn).await.unwrap();
        assert_eq!(offset, 1);
        // The same message again (a resent pipeline): skipped.
        let again: u64 = publish("1").query_async(&mut conn).await.unwrap();
        assert_eq!(again, 0);
        let next: u64 = publish("2").query_async(&mut conn).await.unwrap();
        assert_eq!(next, 2);
        let kept: Vec<String> = redis::cmd("LRANGE")
            .arg(&keys[0])
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(kept.len(), 2);
        assert!(
            kept[1].ends_with(r#","offset":2,"epoch":"ep"}"#),
            "{}",
            kept[1]
        );

        let keys = presence_keys("r");
        let join = PRESENCE_JOIN.eval_cmd(
            &keys,
            &args(&[
                "c1",
                r#"{"room":"r","id":"c1"}"#,
                "1000",
                "2000",
                "ws:room:r",
                "{}",
            ]),
        );
        let first: i64 = join.query_async(&mut conn).await.unwrap();
        let second: i64 = join.query_async(&mut conn).await.unwrap();
        assert_eq!((first, second), (1, 0), "a join is announced once");
    }
}
