#![doc = include_str!("../docs/crate.md")]
#![deny(missing_docs, missing_debug_implementations)]

// The path of one task, top to bottom: `pool` -> `run` (or `batch`) -> `backend::submit` ->
// `scheduler` (admit, enqueue, drain) -> `job` (run the task, send the result) -> back
// through `handle`. Leaves: `task`, `priority`, `error`, `time`, `countdown`, `metrics`.

mod backend;
mod batch;
mod builder;
mod countdown;
mod error;
mod handle;
mod inline;
mod job;
mod lag;
mod metrics;
mod pool;
mod priority;
mod run;
mod runner;
mod scheduler;
mod task;
mod time;

pub use batch::{RunAll, RunAllFuture};
pub use builder::Builder;
pub use error::{BuildError, Error, TryRunError};
pub use handle::TaskHandle;
pub use job::is_cancelled;
pub use lag::ReactorLag;
pub use metrics::{Latency, Metrics, TaskLatency};
pub use pool::Pool;
pub use priority::Priority;
pub use run::{Run, RunFuture};
pub use runner::{Portable, RunOptions, Runner};
pub use task::Task;
