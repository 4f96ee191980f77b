//! The Lua scripts every state change of a job goes through, so each change is atomic and
//! the owner checks cannot race (see the comment at the top of each script).

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::keys::{GROUP, Keys};

/// Adds a batch of jobs, each unless the backlog cap is reached.
pub(crate) static SUBMIT: LazyLock<Script> = LazyLock::new(|| Script::new(SUBMIT_SOURCE));
/// [`SUBMIT`]'s source: a batch that stores payloads sends it whole (`EVAL`, which Redis
/// caches by its hash too) inside the `MULTI` that stores them, as an `EVALSHA` that met
/// `NOSCRIPT` there would leave the payloads stored and no job.
pub(crate) const SUBMIT_SOURCE: &str = include_str!("lua/submit.lua");
/// A worker's step: owner-checked completions (reply, dead letter, retry or discard) of the
/// runs that ended, then due retries promoted, expired leases reclaimed, new jobs read.
pub(crate) static WORK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/work.lua")));
/// A worker's heartbeat: lease renewal, lost and cancelled jobs, dead consumer cleanup.
pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));

/// Creates the job streams and their consumer group where missing (after a first start, or
/// a Redis that lost its data).
pub(crate) async fn ensure_groups(
    conn: &mut ConnectionManager,
    keys: &Keys,
) -> Result<(), redis::RedisError> {
    for stream in &keys.streams {
        let created: Result<(), _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
