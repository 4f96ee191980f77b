//! Fan out: one large job split into chunks, each chunk a `pool.run(..)` in its own tokio
//! task, the partial results gathered as they finish. The queue is smaller than the number of
//! chunks, so `run` waits for room instead of failing.
//!
//! ```text
//! cargo run --example fan_out
//! ```

// A demo that reports on stdout.
#![allow(clippy::print_stdout)]

use std::ops::Range;

use offload::Pool;
use tokio::task::JoinSet;

/// CPU-bound work: the primes in `range`, by trial division.
fn count_primes(range: Range<u64>) -> u64 {
    let is_prime = |n: u64| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
    range.filter(|&n| is_prime(n)).count() as u64
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const LIMIT: u64 = 1_000_000;
    const CHUNK: u64 = 50_000;
    let pool = Pool::builder().threads(2).queue_capacity(4).build()?;

    let mut chunks = JoinSet::new();
    for start in (0..LIMIT).step_by(CHUNK as usize) {
        // A spawned future must be `'static`: each task owns a clone of the pool (a cheap
        // handle), so nothing it awaits borrows from `main`.
        let pool = pool.clone();
        let range = start..(start + CHUNK).min(LIMIT);
        chunks.spawn(async move { pool.run(move || count_primes(range)).await });
    }
    // 20 chunks, 2 threads and room for 4 in the queue: the others wait inside `run`
    // (backpressure), and every one completes.
    let mut primes = 0;
    while let Some(joined) = chunks.join_next().await {
        primes += joined??;
    }
    println!("{primes} primes below {LIMIT}");

    pool.shutdown().await;
    let m = pool.metrics();
    println!(
        "submitted {}, completed {}, rejected {}; queue wait p99 {} ms",
        m.submitted,
        m.completed,
        m.rejected,
        m.overall.wait.p99_ns / 1_000_000
    );
    Ok(())
}
