//! The dispatch benches' helpers: stand-ins for task code, the bare-rayon baseline and the
//! caller's runtime (the task crate's benches keep their own copy in `tasks/benches/common`).

use std::hint::black_box;

/// `rounds` rounds of integer work (about 0.47 ns each here), deterministic and not
/// optimised away: a stand-in for CPU-bound task code.
pub(crate) fn spin(rounds: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
    for i in 0..black_box(rounds) {
        x = x.rotate_left(7) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    x
}

/// The caller side of every bench: one current-thread tokio runtime, as in a small service.
pub(crate) fn caller_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An empty task.
pub(crate) fn empty() -> u64 {
    black_box(1)
}

/// About 10 µs of CPU on the 2-core development machine (9.4 µs measured inline).
pub(crate) fn work() -> u64 {
    spin(20_000)
}

/// The bare-rayon baseline: `f` spawned on `pool`, its result back through a oneshot.
pub(crate) async fn rayon_oneshot<R: Send + 'static>(
    pool: &rayon::ThreadPool,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = oneshot::channel();
    pool.spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("sent")
}
