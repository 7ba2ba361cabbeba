//! An outbox record as AWS's S3 event message (event version 2.1):
//! `{"Records":[{ "eventVersion": "2.1", "eventSource": "aws:s3", ... }]}`,
//! one record per message, the key URL-encoded as AWS encodes it (form
//! encoding: a space is `+`). What notification targets are sent
//! (cairn-events) and what listeners read (the S3 front's
//! `GET /bucket?events=...`).

use crate::notify::OutboxRecord;
use serde_json::{Value, json};

/// The principal events name (Cairn's root account).
const PRINCIPAL: &str = "cairn";

/// AWS's encoding of a key in an event (`application/x-www-form-urlencoded`,
/// `/` kept as it is, as S3's events show it).
pub fn encode_key(key: &str) -> String {
    const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'*')
        .remove(b'/')
        .remove(b' ');
    percent_encoding::utf8_percent_encode(key, FORM)
        .to_string()
        .replace(' ', "+")
}

/// The event time, RFC 3339 with milliseconds in UTC, as AWS writes it.
fn event_time(nanos: i128) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// What a target is sent: one record for one destination.
#[derive(Debug, Clone)]
pub struct Message {
    /// `bucket/key` (the object, unencoded).
    pub subject: String,
    /// The AWS event JSON text.
    pub body: String,
    /// An ObjectRemoved event (the key is gone).
    pub removal: bool,
    /// The event time as the JSON holds it (RFC 3339).
    pub time: String,
}

impl Message {
    pub fn of(r: &OutboxRecord, configuration_id: &str, region: &str) -> Self {
        Self {
            subject: format!("{}/{}", r.bucket, r.key),
            body: message(r, configuration_id, region).to_string(),
            removal: r.event.removes_key(),
            time: event_time(r.mod_time),
        }
    }
}

/// The message for one destination (`configuration_id`) of `r`.
pub fn message(r: &OutboxRecord, configuration_id: &str, region: &str) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("key".into(), json!(encode_key(&r.key)));
    if !r.event.removes_key() {
        object.insert("size".into(), json!(r.size));
        object.insert("eTag".into(), json!(r.etag));
    }
    if let Some(v) = &r.version_id {
        object.insert("versionId".into(), json!(v));
    }
    object.insert(
        "sequencer".into(),
        json!(format!("{:016X}", r.mod_time.max(0))),
    );
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": event_time(r.mod_time),
            "eventName": r.event.record_name(),
            "userIdentity": { "principalId": PRINCIPAL },
            "requestParameters": { "sourceIPAddress": "" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": configuration_id,
                "bucket": {
                    "name": r.bucket,
                    "ownerIdentity": { "principalId": PRINCIPAL },
                    "arn": format!("arn:aws:s3:::{}", r.bucket),
                },
                "object": object,
            },
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{EventName, RecordKind};

    #[test]
    fn aws_format() {
        let r = OutboxRecord {
            kind: RecordKind::Event,
            event: EventName::Put,
            bucket: "b".into(),
            key: "a dir/ü+x.txt".into(),
            version_id: Some("v1".into()),
            size: 5,
            etag: "abc".into(),
            mod_time: 1_700_000_000_123_456_789,
            targets: vec![],
        };
        let m = message(&r, "rule", "us-east-1");
        let rec = &m["Records"][0];
        assert_eq!(rec["eventName"], "ObjectCreated:Put");
        assert_eq!(rec["eventTime"], "2023-11-14T22:13:20.123Z");
        assert_eq!(rec["s3"]["object"]["key"], "a+dir/%C3%BC%2Bx.txt");
        assert_eq!(rec["s3"]["object"]["size"], 5);
        assert_eq!(rec["s3"]["configurationId"], "rule");
    }
}
