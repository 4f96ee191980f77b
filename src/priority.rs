//! Task priorities: which queued task a free thread takes next.

use serde::{Deserialize, Serialize};

/// How urgently a task should start, relative to the other tasks waiting in the same pool.
///
/// A free thread always takes the oldest task of the highest non-empty priority, so a `High`
/// task submitted behind hundreds of `Low` ones starts next. Priorities order the queue only:
/// a running task is never preempted, and a steady stream of `High` work can starve `Low` work.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), offload::Error> {
/// use offload::{Pool, Priority};
///
/// let pool = Pool::builder().threads(1).build().expect("threads start");
/// let answer = pool.run(|| 6 * 7).priority(Priority::High).await?;
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Background work: runs when nothing more urgent waits.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Latency-sensitive work: jumps ahead of every queued `Normal` and `Low` task.
    High,
}

impl Priority {
    /// Queue index, highest priority first, so workers scan `0..3` in order.
    pub(crate) fn queue_index(self) -> usize {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}
