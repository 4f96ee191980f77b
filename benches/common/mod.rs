//! The dispatch bench's helpers: a stand-in for task code and the caller's runtime (the task
//! crate's benches keep their own copy in `tasks/benches/common`).

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
