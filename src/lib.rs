#![doc = include_str!("../docs/crate.md")]
#![deny(missing_docs, missing_debug_implementations)]

mod batch;
mod builder;
mod error;
mod lag;
mod metrics;
mod pool;
mod priority;
mod run;
mod shared;
mod task;
mod worker;

pub use batch::{RunAll, RunAllFuture};
pub use builder::Builder;
pub use error::{BuildError, Error, TryRunError};
pub use lag::ReactorLag;
pub use metrics::{Latency, Metrics, TaskLatency};
pub use pool::Pool;
pub use priority::Priority;
pub use run::{Run, RunFuture, TaskHandle};
pub use task::Task;
pub use worker::is_cancelled;
