//! What travels through Redis: a job's stream entry, a reply's entry, and how payloads are
//! encoded (MessagePack with field names: binary, compact, and self-describing).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One job as a stream entry. Each piece is its own field, so `redis-cli XRANGE` shows the
/// queue readably and the Lua scripts read `job`, `reply` and `deadline` without decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Unique per submission: `<caller id>:<sequence>`.
    pub(crate) job: String,
    /// The task's [`name`](offload::Task::name), which the worker finds its code by.
    pub(crate) task: String,
    /// The caller's reply stream.
    pub(crate) reply: String,
    /// Wall-clock ms since the Unix epoch after which the job is discarded unrun; 0: none.
    pub(crate) deadline_ms: u64,
    /// The caller's trace context (free text, such as a W3C `traceparent`); may be empty.
    pub(crate) trace: String,
    /// The task, as MessagePack.
    pub(crate) payload: Vec<u8>,
}

impl Entry {
    /// The field/value pairs, in the order `XADD` gets them (an empty trace is left out).
    pub(crate) fn into_fields(self) -> Vec<Vec<u8>> {
        let mut fields = vec![
            b"job".to_vec(),
            self.job.into_bytes(),
            b"task".to_vec(),
            self.task.into_bytes(),
            b"reply".to_vec(),
            self.reply.into_bytes(),
            b"deadline".to_vec(),
            self.deadline_ms.to_string().into_bytes(),
            b"payload".to_vec(),
            self.payload,
        ];
        if !self.trace.is_empty() {
            fields.extend([b"trace".to_vec(), self.trace.into_bytes()]);
        }
        fields
    }

    /// Reads an entry back from its raw field/value pairs.
    ///
    /// # Errors
    ///
    /// A reason, for the dead letter, when a field is missing or not what it should be.
    pub(crate) fn parse(fields: &[Vec<u8>]) -> Result<Entry, String> {
        if !fields.len().is_multiple_of(2) {
            return Err("malformed entry: odd number of field/value items".to_owned());
        }
        let get = |name: &str| field(fields, name);
        let text = |name: &str| -> Result<String, String> {
            let raw = get(name).ok_or_else(|| format!("malformed entry: no `{name}` field"))?;
            String::from_utf8(raw.to_vec())
                .map_err(|_| format!("malformed entry: `{name}` is not UTF-8"))
        };
        let deadline = text("deadline")?;
        Ok(Entry {
            job: text("job")?,
            task: text("task")?,
            reply: text("reply")?,
            deadline_ms: deadline
                .parse()
                .map_err(|_| format!("malformed entry: deadline `{deadline}` is not a number"))?,
            trace: text("trace").unwrap_or_default(),
            payload: get("payload")
                .ok_or("malformed entry: no `payload` field")?
                .to_vec(),
        })
    }
}

/// The value of the first `name` field among an entry's field/value pairs.
pub(crate) fn field<'a>(fields: &'a [Vec<u8>], name: &str) -> Option<&'a [u8]> {
    fields
        .chunks_exact(2)
        .find(|pair| pair[0] == name.as_bytes())
        .map(|pair| pair[1].as_slice())
}

/// An entry's field/value pairs with `name` set to `value`: in place of its first value, or
/// added at the end.
pub(crate) fn with_field(fields: &[Vec<u8>], name: &str, value: String) -> Vec<Vec<u8>> {
    let mut out = fields.to_vec();
    match out
        .chunks_exact_mut(2)
        .find(|pair| pair[0] == name.as_bytes())
    {
        Some(pair) => pair[1] = value.into_bytes(),
        None => out.extend([name.as_bytes().to_vec(), value.into_bytes()]),
    }
    out
}

/// What a caller hears back about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The task ran; its output as MessagePack.
    Output(Vec<u8>),
    /// Dead-lettered after `attempts` runs (or refused unrun, with 0).
    Failed { attempts: u32, message: String },
    /// Redis could not be reached for longer than the caller's grace period.
    Unavailable(String),
}

/// A reply entry: the job it answers and the reply, or `None` when malformed.
pub(crate) fn parse_reply(fields: &[Vec<u8>]) -> Option<(String, Reply)> {
    let get = |name: &str| field(fields, name).map(<[u8]>::to_vec);
    let job = String::from_utf8(get("job")?).ok()?;
    let reply = match get("kind")?.as_slice() {
        b"ok" => Reply::Output(get("output")?),
        b"failed" => Reply::Failed {
            attempts: String::from_utf8(get("attempts")?).ok()?.parse().ok()?,
            message: String::from_utf8_lossy(&get("message")?).into_owned(),
        },
        _ => return None,
    };
    Some((job, reply))
}

/// MessagePack with field names (`#[serde(default)]` and `flatten` need them).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    encode_sized(value, 0)
}

/// [`encode`] into a buffer made for about `size_hint` bytes, so that a large payload is
/// written once rather than copied at every doubling of its buffer.
pub(crate) fn encode_sized<T: Serialize + ?Sized>(
    value: &T,
    size_hint: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(size_hint);
    rmp_serde::encode::write_named(&mut out, value).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The reverse of [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

/// Milliseconds since the Unix epoch, the clock deadlines are written in.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `in_` from now on the wall clock, in ms since the Unix epoch.
pub(crate) fn ms_after(in_: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(in_.as_millis()).unwrap_or(u64::MAX))
}

/// A bulk string's bytes; an integer's decimal digits; empty for anything else.
pub(crate) fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// A text reply, lossily.
pub(crate) fn text(value: Value) -> String {
    String::from_utf8_lossy(&bytes(value)).into_owned()
}

/// An integer reply (or its digits as a string).
pub(crate) fn int(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// An array reply's items; empty for nil or anything else.
pub(crate) fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(v) | Value::Set(v) => v,
        _ => Vec::new(),
    }
}

/// Stream entries (`[[id, [field, value, ...]], ...]`) as ids and raw fields.
pub(crate) fn entries(value: Value) -> Vec<(String, Vec<Vec<u8>>)> {
    items(value)
        .into_iter()
        .map(|entry| {
            let mut parts = items(entry).into_iter();
            let id = parts.next().map(text).unwrap_or_default();
            let fields = parts
                .next()
                .map(|f| items(f).into_iter().map(bytes).collect())
                .unwrap_or_default();
            (id, fields)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            job: "c1:7".to_owned(),
            task: "thumbnail".to_owned(),
            reply: "offload:{q}:reply:c1".to_owned(),
            deadline_ms: 1234,
            trace: String::new(),
            payload: vec![0, 159, 255],
        }
    }

    #[test]
    fn entry_round_trip() {
        let entry = sample();
        assert_eq!(Entry::parse(&entry.clone().into_fields()), Ok(entry));
        let traced = Entry {
            trace: "handler@1:2".to_owned(),
            ..sample()
        };
        assert_eq!(Entry::parse(&traced.clone().into_fields()), Ok(traced));
    }

    #[test]
    fn a_retry_sets_its_start_count_once_and_the_entry_still_parses() {
        let entry = sample();
        let once = with_field(&entry.clone().into_fields(), "started", "1".to_owned());
        assert_eq!(field(&once, "started"), Some(&b"1"[..]));
        let twice = with_field(&once, "started", "2".to_owned());
        assert_eq!(field(&twice, "started"), Some(&b"2"[..]));
        assert_eq!(twice.len(), once.len(), "replaced, not added again");
        assert_eq!(Entry::parse(&twice), Ok(entry));
    }

    #[test]
    fn malformed_entries_give_reasons() {
        let mut fields = sample().into_fields();
        fields.truncate(4);
        assert!(
            Entry::parse(&fields)
                .unwrap_err()
                .contains("no `deadline` field")
        );
        let mut fields = sample().into_fields();
        fields[7] = b"soon".to_vec();
        assert!(Entry::parse(&fields).unwrap_err().contains("deadline"));
        assert!(Entry::parse(&[b"job".to_vec()]).is_err());
    }

    #[test]
    fn replies_parse() {
        let ok = [
            b"job".to_vec(),
            b"a:1".to_vec(),
            b"kind".to_vec(),
            b"ok".to_vec(),
        ];
        assert_eq!(parse_reply(&ok), None, "no output field");
        let failed = [
            b"job".to_vec(),
            b"a:1".to_vec(),
            b"kind".to_vec(),
            b"failed".to_vec(),
            b"attempts".to_vec(),
            b"3".to_vec(),
            b"message".to_vec(),
            b"boom".to_vec(),
        ];
        assert_eq!(
            parse_reply(&failed),
            Some((
                "a:1".to_owned(),
                Reply::Failed {
                    attempts: 3,
                    message: "boom".to_owned()
                }
            ))
        );
    }

    /// Incompressible bytes, half of them >= 128 (which MessagePack would write as two
    /// bytes each if a byte field went out as an integer array).
    #[cfg(feature = "worker-bin")]
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Encoded size over raw size.
    #[cfg(feature = "worker-bin")]
    fn overhead<T: Serialize>(value: &T, raw: usize) -> f64 {
        encode(value).unwrap().len() as f64 / raw as f64
    }

    #[test]
    #[cfg(feature = "worker-bin")]
    fn byte_fields_travel_as_binary() {
        use offload_tasks::thumbnail::{Format, ThumbnailOutput};
        use offload_tasks::{RenderedPdf, ReportTask, Thumbnail};

        let image = noise(265_800);
        let job = Thumbnail::fit(image.clone(), 256, 256);
        let ratio = overhead(&job, image.len());
        assert!(ratio < 1.01, "a thumbnail job costs {ratio:.3}x its image");
        let back: Thumbnail = decode(&encode(&job).unwrap()).unwrap();
        assert_eq!(back, job);

        let output = ThumbnailOutput {
            bytes: noise(25_000),
            width: 256,
            height: 171,
            format: Format::Jpeg,
        };
        assert!(overhead(&output, 25_000) < 1.01);
        let back: ThumbnailOutput = decode(&encode(&output).unwrap()).unwrap();
        assert_eq!(back, output);

        let csv = noise(100_000);
        assert!(overhead(&ReportTask::from_csv(csv), 100_000) < 1.01);
        let pdf = RenderedPdf {
            bytes: noise(50_000),
            pages: 3,
            replaced_chars: 0,
        };
        assert!(overhead(&pdf, 50_000) < 1.01);

        // What an older worker or caller wrote (the bytes as an integer array) still reads.
        #[derive(Serialize)]
        struct Legacy {
            bytes: Vec<u8>,
            width: u32,
            height: u32,
            format: Format,
        }
        let legacy = encode(&Legacy {
            bytes: output.bytes.clone(),
            width: 256,
            height: 171,
            format: Format::Jpeg,
        })
        .unwrap();
        assert!(
            legacy.len() as f64 > 1.4 * 25_000.0,
            "the old form was an array"
        );
        assert_eq!(decode::<ThumbnailOutput>(&legacy).unwrap(), output);
    }
}
