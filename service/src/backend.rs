//! `Backend`: where a task runs (the local pool, tokio's blocking pool, or a Redis fleet),
//! behind one `offload::Runner`, so handlers and the cache are written once for all three.

use std::future::Future;
use std::pin::Pin;

use offload::{Error, Pool, Portable, RunOptions, Runner};
use offload_redis::Fleet;

/// The runner behind [`AppState`](crate::AppState): the cache sits in front of it, and
/// uncached tasks go to it directly.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// The offload pool (a threaded one in offload mode, an inline one in inline mode).
    Pool(Pool),
    /// The same inline pool, driven from tokio's blocking pool (`spawn_blocking`).
    Blocking(Pool),
    /// Worker processes through Redis Streams.
    Fleet(Fleet),
}

type Boxed<O> = Pin<Box<dyn Future<Output = Result<O, Error>> + Send>>;

impl Runner for Backend {
    // Boxed: the three arms are three future types, and one allocation is nothing beside a
    // task that is worth offloading.
    fn run_with<T: Portable>(
        &self,
        task: T,
        options: RunOptions,
    ) -> impl Future<Output = Result<T::Output, Error>> + Send + 'static {
        let run: Boxed<T::Output> = match self {
            Backend::Pool(pool) => Box::pin(pool.run_with(task, options)),
            Backend::Fleet(fleet) => Box::pin(fleet.run_with(task, options)),
            Backend::Blocking(pool) => {
                let pool = pool.clone();
                Box::pin(async move {
                    let name = task.name();
                    let runtime = tokio::runtime::Handle::current();
                    tokio::task::spawn_blocking(move || {
                        runtime.block_on(pool.run_with(task, options))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Err(Error::Panicked {
                            task: name,
                            message: format!("blocking task failed: {e}"),
                        })
                    })
                })
            }
        };
        run
    }
}

impl Backend {
    /// Waits for the tasks the backend accepted: the pool's queue and running tasks, or the
    /// fleet's jobs awaiting their results.
    pub(crate) async fn shutdown(&self) {
        match self {
            Backend::Pool(pool) | Backend::Blocking(pool) => pool.shutdown().await,
            Backend::Fleet(fleet) => fleet.shutdown().await,
        }
    }

    /// Stops taking tasks without waiting (the shutdown deadline passed).
    pub(crate) fn close(&self) {
        match self {
            Backend::Pool(pool) | Backend::Blocking(pool) => pool.close(),
            // Dropping the last handle stops the fleet's reply reader; its jobs' callers
            // are gone by then.
            Backend::Fleet(_) => {}
        }
    }

    /// Tasks accepted and not yet finished, for the shutdown warning.
    pub(crate) fn pending(&self) -> usize {
        match self {
            Backend::Pool(pool) | Backend::Blocking(pool) => pool.queued(),
            Backend::Fleet(fleet) => {
                usize::try_from(fleet.metrics().in_flight).unwrap_or(usize::MAX)
            }
        }
    }
}
