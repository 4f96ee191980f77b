//! Helpers shared by the task tests: one submodule per task family, and a patience that
//! bounds every wait on a pool.

pub(crate) mod alloc;
pub(crate) mod pdf;
pub(crate) mod thumbnail;

use std::future::IntoFuture;
use std::time::Duration;

/// Long enough never to fire on a healthy run; turns a hang into a test failure.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test if it takes longer than [`PATIENCE`].
pub(crate) async fn within<F: IntoFuture>(fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("no result within {PATIENCE:?}"))
}

/// Runs `fut` to completion on a current-thread runtime (the caller side of a service),
/// failing the test if it takes longer than [`PATIENCE`].
pub(crate) fn block_on<F: IntoFuture>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(within(fut))
}
