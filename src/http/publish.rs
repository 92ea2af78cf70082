//! `POST /api/publish`: the body `{type, target, event, data, exclude}` checked and handed
//! to the handle.

use serde_json::Value;
use serde_json::value::RawValue;

use super::response::Response;
use crate::protocol::Target;
use crate::routing::{Handle, Publication};

/// A validated `/api/publish` body.
#[derive(Debug)]
struct PublishBody {
    target: Target,
    event: String,
    data: Option<Box<RawValue>>,
    exclude: Vec<String>,
}

/// Publishes the body's message: 202, or 400 naming what is wrong.
pub(super) fn publish(handle: &Handle, body: &[u8]) -> Response {
    let body = match parse(body) {
        Ok(body) => body,
        Err(message) => return Response::error(400, &message),
    };
    handle.publish(Publication {
        target: &body.target,
        event: &body.event,
        data: body.data.as_deref(),
        exclude: &body.exclude,
    });
    Response::json(202, &serde_json::json!({ "ok": true }))
}

fn parse(body: &[u8]) -> Result<PublishBody, String> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Err("Body must be a JSON object".into());
    };
    let kind = match map.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => String::new(),
    };
    let event = match map.remove("event") {
        Some(Value::String(e)) if !e.is_empty() => e,
        _ => return Err("event must be a non-empty string".into()),
    };
    let name = match map.remove("target") {
        Some(Value::String(name)) => Some(name),
        _ => None,
    };
    let target = Target::parse(&kind, name.as_deref()).map_err(|e| e.to_string())?;
    let exclude = exclude(map.remove("exclude"))?;
    let data = map
        .remove("data")
        .map(|value| serde_json::value::to_raw_value(&value));
    let data = data
        .transpose()
        .map_err(|_| "data is not encodable".to_owned())?;
    Ok(PublishBody {
        target,
        event,
        data,
        exclude,
    })
}

/// `exclude`: absent, or an array of strings.
fn exclude(value: Option<Value>) -> Result<Vec<String>, String> {
    let not_strings = || "exclude must be an array of strings".to_owned();
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(not_strings()),
            })
            .collect(),
        Some(_) => Err(not_strings()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_body_rules() {
        let ok =
            parse(br#"{"type":"room","target":"r","event":"e","data":{"a":1},"exclude":["x"]}"#)
                .unwrap();
        assert_eq!(ok.target, Target::room("r"));
        assert_eq!(ok.data.unwrap().get(), r#"{"a":1}"#);
        assert!(parse(br#"{"type":"broadcast","event":"e"}"#).is_ok());
        let null_data = parse(br#"{"type":"broadcast","event":"e","data":null}"#).unwrap();
        assert_eq!(null_data.data.unwrap().get(), "null");
        for bad in [
            &b"nope"[..],
            br#"[1]"#,
            br#"{"type":"x","target":"r","event":"e"}"#,
            br#"{"type":"room","target":"r","event":""}"#,
            br#"{"type":"room","event":"e"}"#,
            br#"{"type":"client","target":"","event":"e"}"#,
            br#"{"type":"client","target":"not-a-client-id","event":"e"}"#,
            br#"{"type":"room","target":"r","event":"e","exclude":"x"}"#,
            br#"{"type":"room","target":"r","event":"e","exclude":[1]}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn errors_say_what_to_fix() {
        let err = parse(br#"{"type":"client","target":"c-1","event":"e"}"#).unwrap_err();
        assert!(err.contains("not a client id"), "{err}");
        let err = parse(br#"{"type":"everyone","event":"e"}"#).unwrap_err();
        assert_eq!(err, "type must be one of client|user|room|broadcast");
    }
}
