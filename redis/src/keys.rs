//! Key names: every key of a queue carries the queue's name as a Redis Cluster hash tag
//! (`offload:{thumbs}:...`), so a queue's keys share one slot and its Lua scripts may touch
//! them all.

use offload::Priority;

/// The consumer group every worker of a queue reads through.
pub(crate) const GROUP: &str = "workers";

/// The keys of one queue.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    /// Job streams, highest priority first (a worker reads them in this order).
    pub(crate) streams: [String; 3],
    /// Jobs waiting out a retry backoff: a sorted set scored by due time (ms).
    pub(crate) delayed: String,
    /// The last error per job id, for the dead letter after a lost worker.
    pub(crate) errors: String,
    /// Counters the scripts bump (completed, retried, redelivered, ...).
    pub(crate) stats: String,
    /// The dead-letter stream.
    pub(crate) dead: String,
    /// Live workers: a sorted set of consumer names scored by their last heartbeat (ms).
    pub(crate) workers: String,
    /// Each queued job's payload by job id, beside its stream entry rather than in it: a
    /// payload that entered a Lua script would be hashed byte by byte (see `submit.lua`).
    pub(crate) payloads: String,
}

impl Keys {
    pub(crate) fn new(queue: &str) -> Keys {
        let prefix = format!("offload:{{{queue}}}:");
        let key = |suffix: &str| format!("{prefix}{suffix}");
        Keys {
            streams: [key("jobs:high"), key("jobs:normal"), key("jobs:low")],
            delayed: key("delayed"),
            errors: key("errors"),
            stats: key("stats"),
            dead: key("dead"),
            workers: key("workers"),
            payloads: key("payloads"),
            prefix,
        }
    }

    /// The stream a task of `priority` goes to, as an index into `streams`.
    pub(crate) fn stream_index(priority: Priority) -> usize {
        match priority {
            Priority::High => 0,
            Priority::Low => 2,
            _ => 1,
        }
    }

    /// The stream one caller's replies arrive on.
    pub(crate) fn reply(&self, caller: &str) -> String {
        format!("{}reply:{caller}", self.prefix)
    }

    /// The prefix of the keys a caller sets to cancel a job (`<prefix><job id>`).
    pub(crate) fn cancel_prefix(&self) -> String {
        format!("{}cancel:", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_hash_tag() {
        let keys = Keys::new("thumbs");
        let all = [
            &keys.streams[0],
            &keys.streams[1],
            &keys.streams[2],
            &keys.delayed,
            &keys.errors,
            &keys.stats,
            &keys.dead,
            &keys.workers,
            &keys.payloads,
        ];
        for key in all {
            assert!(key.starts_with("offload:{thumbs}:"), "{key}");
        }
        assert_eq!(keys.reply("c1"), "offload:{thumbs}:reply:c1");
        assert_eq!(keys.cancel_prefix(), "offload:{thumbs}:cancel:");
    }
}
