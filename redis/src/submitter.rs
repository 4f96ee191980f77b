//! The caller's insert batcher: a `Fleet`'s concurrent submissions go to Redis together, one
//! script call (with one backlog check) per batch, a few batches in flight at once.
//!
// Implementation: at most `MAX_CALLS` submit calls are in flight. A request that finds a
// call slot free is sent at once by its own task; otherwise it queues on an unbounded
// channel (bounded in practice by the fleet's in-flight limit: each request holds a
// permit), and the batcher task sends what queued, up to `MAX_BATCH`, as soon as a slot
// frees (freed slots go to the waiting batcher first).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::conn;
use crate::keys::Keys;
use crate::{protocol, scripts};

/// The most jobs one submit call carries.
const MAX_BATCH: usize = 64;
/// The most submit calls in flight at once.
const MAX_CALLS: usize = 4;
/// The largest payload that travels in its stream entry. A larger one waits in the payloads
/// hash: Redis's Lua hashes every byte of every string a script is handed or reads, about
/// 2.6 µs per KiB here twice per job, while the hash costs the worker an `HMGET` round trip
/// and the caller a `MULTI` (empty tasks, 32 callers: 24,900 round trips/s inline against
/// 18,400/s through the hash, same run).
const INLINE_PAYLOAD: usize = 16 << 10;

/// What the submit script answered for one job: `[1, backlog]` when added, else
/// `[0, backlog, live workers, service µs, runs]`; or why Redis could not be asked.
pub(crate) type Answer = Result<Vec<i64>, String>;

struct Request {
    stream: usize,
    fields: Vec<Vec<u8>>,
    /// The answer, and the fields back (for a caller that waits for room and tries again).
    answer: oneshot::Sender<(Answer, Vec<Vec<u8>>)>,
}

/// The sending side; the batcher task stops when it is dropped.
#[derive(Debug)]
pub(crate) struct Submitter {
    requests: mpsc::UnboundedSender<Request>,
    target: Arc<Target>,
}

/// Where and how batches are sent.
#[derive(Debug)]
struct Target {
    conn: ConnectionManager,
    keys: Keys,
    backlog_cap: u64,
    budget: Duration,
    /// One permit per call in flight.
    calls: Arc<Semaphore>,
}

impl Submitter {
    /// Starts the batcher on the current tokio runtime.
    pub(crate) fn spawn(
        conn: ConnectionManager,
        keys: Keys,
        backlog_cap: u64,
        budget: Duration,
    ) -> Submitter {
        let (requests, queued) = mpsc::unbounded_channel();
        let target = Arc::new(Target {
            conn,
            keys,
            backlog_cap,
            budget,
            calls: Arc::new(Semaphore::new(MAX_CALLS)),
        });
        tokio::spawn(batch_loop(queued, Arc::clone(&target)));
        Submitter { requests, target }
    }

    /// Adds one job (its entry's `fields`) to the stream numbered `stream`, unless the
    /// backlog cap is reached. The fields come back with the answer (empty if the batcher
    /// stopped).
    pub(crate) async fn submit(
        &self,
        stream: usize,
        fields: Vec<Vec<u8>>,
    ) -> (Answer, Vec<Vec<u8>>) {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            stream,
            fields,
            answer,
        };
        // Uncontended: send it now, from this task (no hop through the batcher).
        if let Ok(call) = Arc::clone(&self.target.calls).try_acquire_owned() {
            send(&self.target, vec![request]).await;
            drop(call);
        } else if let Err(mpsc::error::SendError(request)) = self.requests.send(request) {
            send(&self.target, vec![request]).await;
        }
        answered.await.unwrap_or_else(|_| {
            // Only when the runtime is shutting down under this call.
            (Err("the fleet's submitter stopped".to_owned()), Vec::new())
        })
    }
}

async fn batch_loop(mut queued: mpsc::UnboundedReceiver<Request>, target: Arc<Target>) {
    loop {
        let Ok(call) = Arc::clone(&target.calls).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        if queued.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let target = Arc::clone(&target);
        tokio::spawn(async move {
            send(&target, batch).await;
            drop(call);
        });
    }
}

/// One submit call for `batch`; each request gets its answer. Payloads over
/// [`INLINE_PAYLOAD`] go to the payloads hash in the same transaction as the script.
async fn send(target: &Target, batch: Vec<Request>) {
    let keys = &target.keys;
    let split: Vec<_> = batch.iter().map(|r| split_payload(&r.fields)).collect();
    let stored: Vec<Stored<'_>> = split.iter().filter_map(|(_, stored)| *stored).collect();
    let script_keys = [
        &keys.streams[0],
        &keys.streams[1],
        &keys.streams[2],
        &keys.delayed,
        &keys.workers,
        &keys.stats,
        &keys.payloads,
    ];
    // `EVAL` with the source or `EVALSHA` with its hash: the same keys and arguments.
    let script = |verb: &str, source_or_hash: &str| {
        let mut cmd = redis::cmd(verb);
        cmd.arg(source_or_hash)
            .arg(script_keys.len())
            .arg(&script_keys[..])
            .arg(target.backlog_cap)
            .arg(batch.len());
        for (request, (entry, _)) in batch.iter().zip(&split) {
            cmd.arg(request.stream + 1).arg(entry.len()).arg(&entry[..]);
        }
        cmd
    };
    let answers = if stored.is_empty() {
        // `EVALSHA`, or the source when Redis does not have it (after a restart).
        let by_hash = script("EVALSHA", scripts::SUBMIT.get_hash());
        conn::retry(target.budget, || {
            let (by_hash, mut conn) = (&by_hash, target.conn.clone());
            async move {
                match by_hash.query_async::<Vec<Vec<i64>>>(&mut conn).await {
                    Err(e)
                        if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        script("EVAL", scripts::SUBMIT_SOURCE)
                            .query_async(&mut conn)
                            .await
                    }
                    answered => answered,
                }
            }
        })
        .await
    } else {
        // Sized up front: the payloads are copied into it once, not at every doubling.
        let bytes: usize = stored
            .iter()
            .map(|(job, payload)| job.len() + payload.len())
            .sum();
        let mut payloads = redis::Cmd::with_capacity(2 + 2 * stored.len(), 64 + bytes);
        payloads.arg("HSET").arg(&keys.payloads);
        for (job, payload) in stored {
            payloads.arg(job).arg(payload);
        }
        // The source, not its hash: an `EVALSHA` that met `NOSCRIPT` inside the `MULTI`
        // would leave the payloads stored and no job.
        let mut transaction = redis::pipe();
        transaction.atomic();
        transaction.add_command(payloads).ignore();
        transaction.add_command(script("EVAL", scripts::SUBMIT_SOURCE));
        conn::retry(target.budget, || {
            let (transaction, mut conn) = (&transaction, target.conn.clone());
            async move {
                transaction
                    .query_async::<(Vec<Vec<i64>>,)>(&mut conn)
                    .await
                    .map(|(answers,)| answers)
            }
        })
        .await
    };
    for (i, request) in batch.into_iter().enumerate() {
        let answer = match &answers {
            Ok(all) => Ok(all.get(i).cloned().unwrap_or_default()),
            Err(e) => Err(e.to_string()),
        };
        let _ = request.answer.send((answer, request.fields));
    }
}

/// A job id and its payload, bound for the payloads hash.
type Stored<'a> = (&'a [u8], &'a [u8]);

/// An entry's fields without its `payload` pair, and its job id and payload (when it has
/// both and the payload is over [`INLINE_PAYLOAD`]), which go to the payloads hash instead.
fn split_payload(fields: &[Vec<u8>]) -> (Vec<&[u8]>, Option<Stored<'_>>) {
    match (
        protocol::field(fields, "job"),
        protocol::field(fields, "payload"),
    ) {
        (Some(job), Some(payload)) if payload.len() > INLINE_PAYLOAD => {
            let entry = fields
                .chunks_exact(2)
                .filter(|pair| pair[0] != b"payload")
                .flatten()
                .map(Vec::as_slice)
                .collect();
            (entry, Some((job, payload)))
        }
        _ => (fields.iter().map(Vec::as_slice).collect(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_payload_leaves_the_entry_for_the_payloads_hash() {
        let large = vec![7u8; INLINE_PAYLOAD + 1];
        let fields: Vec<Vec<u8>> = [&b"job"[..], b"c:1", b"payload", &large, b"task", b"t"]
            .iter()
            .map(|f| f.to_vec())
            .collect();
        let (entry, payload) = split_payload(&fields);
        assert_eq!(entry, [&b"job"[..], b"c:1", b"task", b"t"]);
        assert_eq!(payload, Some((&b"c:1"[..], &large[..])));
        // A small payload stays in its entry.
        let mut small = fields.clone();
        small[3] = vec![7u8; INLINE_PAYLOAD];
        let (entry, payload) = split_payload(&small);
        assert_eq!((entry.len(), payload), (6, None));
        // Without a job id there is nothing to key it by: the entry keeps it.
        let (entry, payload) = split_payload(&fields[2..]);
        assert_eq!(entry.len(), 4);
        assert_eq!(payload, None);
    }
}
