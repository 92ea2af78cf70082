//! [`MemoryHistory`]: the rooms' history a single node keeps in memory.
//!
//! # Contract
//!
//! Shared (`Send + Sync`) by every publisher thread and every shard. Each room has its
//! own lock; the map of rooms has one more, held only to find or add a room. Assigning
//! a message its offset, keeping it and handing it on (`deliver`, which queues it for the
//! shards) happen under the room's lock, so the order of offsets is the order in which
//! every shard receives the room's messages, whichever threads publish.
//!
//! Bounds: a room keeps its last `size` messages; all of them go `ttl` after its last
//! message (then the room starts again at offset 1 in a new epoch); the messages of all
//! rooms together stay within `max_bytes` (a room that would pass it loses its own oldest
//! messages first, always keeping its newest, so the bound may be passed by at most one
//! message per room). Expired rooms are removed by [`MemoryHistory::sweep`], which the
//! engine calls periodically, and found expired by any read or append before that.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use ahash::AHashMap;

use super::{HistorySettings, Position, Publication, Query, Snapshot, new_epoch, select};
use crate::protocol::Frame;

/// What a room costs besides its messages (map entry, lock, epoch), counted in the bytes.
const ROOM_OVERHEAD: usize = 160;

/// The history of every room of a single node.
pub struct MemoryHistory {
    settings: HistorySettings,
    rooms: Mutex<AHashMap<Arc<str>, Arc<Mutex<RoomStream>>>>,
    /// Bytes of every room's kept frames plus [`ROOM_OVERHEAD`] per room.
    bytes: AtomicUsize,
    /// Bytes of every room's kept frames alone: what `max_bytes` bounds (so rooms that
    /// were joined but hold nothing never cost a publishing room its history).
    frames: AtomicUsize,
}

/// One room's history.
struct RoomStream {
    epoch: Arc<str>,
    top: u64,
    /// The kept messages, oldest first; the last one has offset `top`.
    kept: VecDeque<Publication>,
    bytes: usize,
    /// When it last got a message (or was created).
    touched: Instant,
    /// Removed from the map: whoever still holds it must look the room up again.
    removed: bool,
}

impl RoomStream {
    fn new(now: Instant) -> Self {
        RoomStream {
            epoch: new_epoch(),
            top: 0,
            kept: VecDeque::new(),
            bytes: 0,
            touched: now,
            removed: false,
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the history itself stays consistent
/// (every change below is completed before anything that can panic).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryHistory {
    /// An empty history with these bounds.
    pub fn new(settings: HistorySettings) -> Self {
        MemoryHistory {
            settings,
            rooms: Mutex::new(AHashMap::new()),
            bytes: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
        }
    }

    /// The bounds.
    pub fn settings(&self) -> &HistorySettings {
        &self.settings
    }

    /// Bytes the history holds now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Rooms with a history now.
    pub fn rooms(&self) -> usize {
        lock(&self.rooms).len()
    }

    /// Gives `message` the next offset of `room`, keeps it with its position, and calls
    /// `deliver` with the positioned frame, all under the room's lock. Returns the
    /// position.
    pub fn append(
        &self,
        room: &str,
        message: &Frame,
        now: Instant,
        deliver: impl FnOnce(Frame, Position),
    ) -> Position {
        self.with_room(room, now, |stream| {
            stream.top += 1;
            stream.touched = now;
            let position = Position {
                offset: stream.top,
                epoch: stream.epoch.clone(),
            };
            let frame = message.with_position(room, position.offset, &position.epoch);
            let size = frame.len();
            // Grow the ring to `size` + 1 slots at most (the newest goes in before the
            // oldest goes out), not to the next power of two.
            if stream.kept.len() == stream.kept.capacity() {
                let want = (stream.kept.capacity() * 2)
                    .max(4)
                    .min(self.settings.size + 1);
                stream
                    .kept
                    .reserve_exact(want.saturating_sub(stream.kept.len()).max(1));
            }
            stream.kept.push_back(Publication {
                offset: position.offset,
                frame: frame.clone(),
            });
            stream.bytes += size;
            self.bytes.fetch_add(size, Ordering::Relaxed);
            self.frames.fetch_add(size, Ordering::Relaxed);
            self.trim(stream);
            deliver(frame, position.clone());
            position
        })
    }

    /// Reads `room`'s history (a room without one starts one, so that a joining client
    /// learns the epoch its first message will have).
    pub fn read(&self, room: &str, query: &Query, now: Instant) -> Snapshot {
        self.with_room(room, now, |stream| {
            let (publications, covered) = select(&stream.kept, stream.top, &stream.epoch, query);
            Snapshot {
                epoch: stream.epoch.clone(),
                top: stream.top,
                publications,
                covered,
            }
        })
    }

    /// Removes every room whose history expired; returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut rooms = lock(&self.rooms);
        let before = rooms.len();
        rooms.retain(|_, stream| {
            let mut stream = lock(stream);
            let live = !self.expired(&stream, now);
            if !live {
                self.forget(&mut stream);
            }
            live
        });
        before - rooms.len()
    }

    /// Runs `f` on the room's live stream (created, or renewed when expired) under its lock.
    fn with_room<R>(&self, room: &str, now: Instant, f: impl FnOnce(&mut RoomStream) -> R) -> R {
        loop {
            let stream = self.stream_of(room, now);
            let mut stream = lock(&stream);
            if stream.removed {
                continue; // swept between the lookup and the lock
            }
            if self.expired(&stream, now) {
                self.forget(&mut stream);
                stream.removed = false;
                *stream = RoomStream::new(now);
                self.bytes.fetch_add(ROOM_OVERHEAD, Ordering::Relaxed);
            }
            return f(&mut stream);
        }
    }

    fn stream_of(&self, room: &str, now: Instant) -> Arc<Mutex<RoomStream>> {
        let mut rooms = lock(&self.rooms);
        if let Some(stream) = rooms.get(room) {
            return stream.clone();
        }
        let stream = Arc::new(Mutex::new(RoomStream::new(now)));
        self.bytes.fetch_add(ROOM_OVERHEAD, Ordering::Relaxed);
        rooms.insert(Arc::from(room), stream.clone());
        stream
    }

    fn expired(&self, stream: &RoomStream, now: Instant) -> bool {
        now.saturating_duration_since(stream.touched) > self.settings.ttl
    }

    /// Gives back what a stream held and marks it removed.
    fn forget(&self, stream: &mut RoomStream) {
        self.bytes
            .fetch_sub(stream.bytes + ROOM_OVERHEAD, Ordering::Relaxed);
        self.frames.fetch_sub(stream.bytes, Ordering::Relaxed);
        stream.kept.clear();
        stream.bytes = 0;
        stream.removed = true;
    }

    /// Keeps the last `size` messages, and drops the oldest while all rooms pass
    /// `max_bytes` (the newest always stays).
    fn trim(&self, stream: &mut RoomStream) {
        while stream.kept.len() > self.settings.size
            || (stream.kept.len() > 1
                && self.frames.load(Ordering::Relaxed) > self.settings.max_bytes)
        {
            let Some(oldest) = stream.kept.pop_front() else {
                break;
            };
            stream.bytes -= oldest.frame.len();
            self.bytes.fetch_sub(oldest.frame.len(), Ordering::Relaxed);
            self.frames.fetch_sub(oldest.frame.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::Since;

    fn history(size: usize, ttl_s: u64, max_bytes: usize) -> MemoryHistory {
        MemoryHistory::new(HistorySettings {
            size,
            ttl: Duration::from_secs(ttl_s),
            max_bytes,
        })
    }

    fn publish(h: &MemoryHistory, room: &str, n: u64, now: Instant) -> Vec<Position> {
        (0..n)
            .map(|i| {
                let message = Frame::from_serialize("m", &i).unwrap();
                let mut delivered = None;
                let position =
                    h.append(room, &message, now, |frame, p| delivered = Some((frame, p)));
                let (frame, p) = delivered.expect("delivered under the lock");
                assert_eq!(p, position);
                let expected = format!(
                    r#"{{"event":"m","data":{i},"room":"{room}","offset":{},"epoch":"{}"}}"#,
                    p.offset, p.epoch
                );
                assert_eq!(&frame.payload()[..], expected.as_bytes());
                position
            })
            .collect()
    }

    fn since(offset: u64, epoch: &str) -> Query {
        Query::recover(Some(Since {
            offset,
            epoch: epoch.into(),
        }))
    }

    #[test]
    fn offsets_count_up_and_exactly_the_last_size_are_kept() {
        let (h, now) = (history(3, 60, usize::MAX), Instant::now());
        let positions = publish(&h, "r", 5, now);
        let offsets: Vec<u64> = positions.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5]);
        let epoch = positions[0].epoch.clone();
        let all = h.read(
            "r",
            &Query {
                since: None,
                limit: 10,
            },
            now,
        );
        let kept: Vec<u64> = all.publications.iter().map(|p| p.offset).collect();
        assert_eq!(
            (kept, all.top, all.epoch.clone()),
            (vec![3, 4, 5], 5, epoch.clone())
        );
        let recovered = h.read("r", &since(2, &epoch), now);
        assert!(recovered.covered);
        assert_eq!(recovered.publications.len(), 3);
        assert!(!h.read("r", &since(1, &epoch), now).covered);
        // Another room has its own offsets and epoch.
        let other = publish(&h, "s", 1, now);
        assert_eq!(other[0].offset, 1);
        assert_ne!(other[0].epoch, epoch);
    }

    #[test]
    fn a_room_expires_ttl_after_its_last_message_with_a_new_epoch() {
        let (h, now) = (history(10, 5, usize::MAX), Instant::now());
        let first = publish(&h, "r", 2, now);
        let later = now + Duration::from_secs(4);
        assert_eq!(publish(&h, "r", 1, later)[0].offset, 3);
        let snapshot = h.read(
            "r",
            &since(1, &first[0].epoch),
            later + Duration::from_secs(4),
        );
        assert!(snapshot.covered, "4 s after the last message it is kept");
        let gone = later + Duration::from_secs(6);
        let snapshot = h.read("r", &since(1, &first[0].epoch), gone);
        assert!(!snapshot.covered);
        assert_eq!(snapshot.top, 0);
        assert_ne!(snapshot.epoch, first[0].epoch);
        assert_eq!(h.sweep(gone + Duration::from_secs(6)), 1);
        assert_eq!((h.rooms(), h.bytes()), (0, 0));
    }

    #[test]
    fn the_byte_cap_trims_the_publishing_room_but_keeps_its_newest() {
        let (h, now) = (history(1000, 60, 2_000), Instant::now());
        // Rooms that hold nothing (joined, never published to) cost no room its history.
        for i in 0..20 {
            h.read(
                &format!("empty-{i}"),
                &Query {
                    since: None,
                    limit: 0,
                },
                now,
            );
        }
        publish(&h, "r", 3, now);
        let three = h.read(
            "r",
            &Query {
                since: None,
                limit: 10,
            },
            now,
        );
        assert_eq!(three.publications.len(), 3);
        publish(&h, "r", 97, now);
        assert!(h.bytes() <= 2_000 + 21 * ROOM_OVERHEAD, "{}", h.bytes());
        let snapshot = h.read(
            "r",
            &Query {
                since: None,
                limit: 1000,
            },
            now,
        );
        assert_eq!(snapshot.top, 100);
        assert_eq!(snapshot.publications.last().map(|p| p.offset), Some(100));
        assert!(snapshot.publications.len() < 100);
        assert_eq!(h.sweep(now + Duration::from_secs(61)), 21);
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn concurrent_publishers_deliver_in_offset_order() {
        let h = Arc::new(history(10, 60, usize::MAX));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (h, delivered) = (h.clone(), delivered.clone());
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let m = Frame::from_serialize("m", &i).unwrap();
                        h.append("r", &m, Instant::now(), |_, p| {
                            lock(&delivered).push(p.offset)
                        });
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let delivered = lock(&delivered);
        assert!(delivered.iter().copied().eq(1..=2000));
    }
}
