//! The basics: a pool, `run`, `try_run`, and the metrics snapshot.
//!
//! ```text
//! cargo run --example basic
//! ```

// A demo that reports on stdout.
#![allow(clippy::print_stdout)]

use offload::Pool;

/// CPU-bound work: exponential on purpose.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One thread per CPU, a queue of 128 tasks per thread.
    let pool = Pool::new();

    // `run` queues the task (waiting for room if the queue is full), runs it on a pool
    // thread and resolves to its output; the runtime's thread stays free meanwhile.
    let n = pool.run(|| fib(30)).name("fib").await?;
    println!("fib(30) = {n}");

    // `try_run` never waits for room: with the queue full it fails at once and hands the
    // task back (`e.into_task()`), which a server turns into a 503.
    match pool.try_run(|| fib(25)) {
        Ok(handle) => println!("fib(25) = {}", handle.await?),
        Err(e) => println!("not queued: {e}"),
    }

    // A panic inside a task is an error for the caller, not a lost thread (the process's
    // panic hook still prints it on stderr).
    if let Err(err) = pool
        .run(|| -> u64 { panic!("boom") })
        .name("explodes")
        .await
    {
        println!("a panicking task: {err} (is_panic: {})", err.is_panic());
    }

    // Finish what was accepted, join the threads, then read the counters.
    pool.shutdown().await;
    let m = pool.metrics();
    println!(
        "submitted {}, completed {}, panicked {}; fib ran in {} us",
        m.submitted,
        m.completed,
        m.panicked,
        m.tasks["fib"].run.p50_ns / 1_000
    );
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}
