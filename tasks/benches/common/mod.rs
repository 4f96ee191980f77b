//! What every bench of the task crate needs. The core crate's `benches/common` has the same
//! runtime set-up; each crate's benches stand alone.

/// The caller side of every bench: one current-thread tokio runtime, as in a small service.
pub(crate) fn caller_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
