//! The history events a client receives: `ws:joined` and `ws:history`.

use std::io::Write;

use serde::Serialize;

use super::Snapshot;
use crate::protocol::Frame;
use crate::protocol::envelope::write_json_string;

/// `ws:joined`: `{"room","epoch","offset"}`, plus `"recovered"` when the join asked to
/// recover (`since`).
pub fn joined_frame(room: &str, epoch: &str, offset: u64, recovered: Option<bool>) -> Frame {
    #[derive(Serialize)]
    struct Joined<'a> {
        room: &'a str,
        epoch: &'a str,
        offset: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    }
    let data = Joined {
        room,
        epoch,
        offset,
        recovered,
    };
    // A struct of strings, a number and a bool always serializes.
    Frame::from_serialize("ws:joined", &data).unwrap_or_else(|_| Frame::from_raw("ws:joined", None))
}

/// `ws:history`: `{"room","epoch","offset","publications":[{"offset","event","data"}…]}`,
/// oldest first; each publication's `event` and `data` are sliced from the frame its
/// members received, never re-encoded.
pub fn history_frame(room: &str, snapshot: &Snapshot) -> Frame {
    let capacity = 64
        + room.len()
        + snapshot
            .publications
            .iter()
            .map(|p| p.frame.len())
            .sum::<usize>();
    let write = |buf: &mut Vec<u8>| {
        buf.extend_from_slice(b"{\"room\":");
        write_json_string(buf, room);
        buf.extend_from_slice(b",\"epoch\":");
        write_json_string(buf, &snapshot.epoch);
        let _ = write!(buf, ",\"offset\":{},\"publications\":[", snapshot.top);
        for (i, publication) in snapshot.publications.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let _ = write!(buf, "{{\"offset\":{},\"event\":", publication.offset);
            buf.extend_from_slice(publication.frame.event_json());
            if let Some(data) = publication.frame.data_json() {
                buf.extend_from_slice(b",\"data\":");
                buf.extend_from_slice(data);
            }
            buf.push(b'}');
        }
        buf.extend_from_slice(b"]}");
    };
    Frame::event_with("ws:history", capacity, Some(write))
}
