//! Fan out: many `pool.run(..)` calls as independent tokio tasks, gathered as they finish,
//! with a queue smaller than the batch so `run` waits for room instead of failing.
//!
//! ```text
//! cargo run --example fan_out
//! ```

// A demo that reports on stdout.
#![allow(clippy::print_stdout)]

use offload::Pool;
use tokio::task::JoinSet;

/// CPU-bound work: exponential on purpose.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().threads(2).queue_capacity(4).build()?;

    let mut tasks = JoinSet::new();
    for n in 20..=32 {
        // Each spawned task owns a clone of the pool (a cheap handle): a spawned future must
        // be `'static`, and `async move` keeps it so whatever `run` borrows.
        let pool = pool.clone();
        tasks.spawn(async move { (n, pool.run(move || fib(n)).await) });
    }
    // 13 tasks, 2 threads and room for 4 in the queue: the others wait inside `run`
    // (backpressure), and all of them complete.
    while let Some(joined) = tasks.join_next().await {
        let (n, result) = joined?;
        println!("fib({n}) = {}", result?);
    }

    pool.shutdown().await;
    let m = pool.metrics();
    println!(
        "submitted {}, completed {}, rejected {}; queue wait p99 {} us",
        m.submitted,
        m.completed,
        m.rejected,
        m.overall.wait.p99_ns / 1_000
    );
    Ok(())
}
