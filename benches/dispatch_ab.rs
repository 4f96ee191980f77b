//! Dispatch overhead, offload against bare `rayon::spawn` + oneshot, measured as an
//! interleaved A/B: the two variants alternate round by round in one process (which goes
//! first alternates too), and the result is the median of the per-round ratios. On a shared
//! machine whose speed drifts between runs this is far steadier than comparing two criterion
//! estimates taken seconds apart.
//!
//! ```text
//! cargo bench --bench dispatch_ab -- [group] [rounds] [offload|rayon]
//! ```
//!
//! Groups, named as in `benches/dispatch.rs`: from a current-thread tokio runtime,
//! `a` (round trip of one empty task at a time, 2,000 per round), `b` (10,000 empty tasks in
//! flight), `c` (1,000 tasks of about 10 µs in flight); from a multi-thread runtime with one
//! worker per core, each call its own tokio task, `e`, `f` and `g` the same. Default: `f`, 31
//! rounds. The ratio printed is offload's throughput over rayon + oneshot's (above 1: offload
//! is faster).
//!
//! With a third argument only that variant runs (no warm-up of the other, no ratio): for a
//! profiler (`perf record`, `valgrind --tool=callgrind`) that must see one side alone. The
//! baseline's threads are named `rayon-N` and offload's `offload-N`, so `perf report
//! --sort comm` splits the time between the caller's runtime, the pool and the baseline.
// Its report is its output.
#![allow(clippy::print_stdout)]

mod common;

use std::future::{Future, IntoFuture};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{empty, rayon_oneshot, work};
use offload::Pool;

/// One group: the caller's runtime, the calls per round, how many of them are in flight at
/// once (1: one at a time), and the task.
struct Group {
    multi_thread: bool,
    calls: usize,
    in_flight: usize,
    task: fn() -> u64,
}

fn group(name: &str) -> Option<Group> {
    let (multi_thread, calls, in_flight, task): (bool, usize, usize, fn() -> u64) = match name {
        "a" => (false, 2_000, 1, empty),
        "b" => (false, 10_000, 10_000, empty),
        "c" => (false, 1_000, 1_000, work),
        "e" => (true, 2_000, 1, empty),
        "f" => (true, 10_000, 10_000, empty),
        "g" => (true, 1_000, 1_000, work),
        _ => return None,
    };
    Some(Group {
        multi_thread,
        calls,
        in_flight,
        task,
    })
}

/// Makes the calls of one round, `in_flight` at a time, each through `call` (spawned as a
/// tokio task of its own on a multi-thread runtime, polled together on a current-thread
/// one), and folds their values.
async fn round<F>(g: &Group, call: impl Fn() -> F) -> u64
where
    F: Future<Output = u64> + Send + 'static,
{
    let mut acc = 0;
    for _ in 0..g.calls / g.in_flight {
        if g.multi_thread {
            let calls: Vec<_> = (0..g.in_flight).map(|_| tokio::spawn(call())).collect();
            for c in calls {
                acc ^= c.await.expect("joined");
            }
        } else {
            // Polled together, so every call is submitted before the first result is awaited.
            let calls = (0..g.in_flight).map(|_| call());
            for value in futures::future::join_all(calls).await {
                acc ^= value;
            }
        }
    }
    acc
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; the arguments after `--` follow it.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let name = args.first().map_or("f", String::as_str);
    let Some(g) = group(name) else {
        eprintln!("unknown group {name:?}: one of a, b, c, e, f, g");
        std::process::exit(2);
    };
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(31);
    let only = match args.get(2).map(String::as_str) {
        None => None,
        Some("offload") => Some(true),
        Some("rayon") => Some(false),
        Some(other) => {
            eprintln!("unknown variant {other:?}: offload or rayon");
            std::process::exit(2);
        }
    };
    let threads = num_cpus::get();
    let runtime = if g.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("tokio runtime")
    } else {
        common::caller_runtime()
    };
    let pool = Pool::builder()
        .threads(threads)
        .queue_capacity(2 * g.calls)
        .build()
        .expect("pool");
    let rayon = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("rayon-{i}"))
            .build()
            .expect("rayon"),
    );
    let task = g.task;
    let timed = |offload: bool| -> Duration {
        runtime.block_on(async {
            let started = Instant::now();
            let acc = if offload {
                round(&g, || {
                    let run = pool.run(task).into_future();
                    async move { run.await.expect("ran") }
                })
                .await
            } else {
                round(&g, || {
                    let rayon = Arc::clone(&rayon);
                    async move { rayon_oneshot(&rayon, task).await }
                })
                .await
            };
            black_box(acc);
            started.elapsed()
        })
    };
    let per_call = |v: Vec<f64>| median(v) / g.calls as f64 * 1e6;
    if let Some(offload) = only {
        let times = (0..rounds).map(|_| timed(offload).as_secs_f64()).collect();
        let variant = if offload {
            "offload"
        } else {
            "rayon + oneshot"
        };
        println!(
            "group {name}, {variant} alone: {:.2} µs per call (median of {rounds} rounds)",
            per_call(times)
        );
        return;
    }
    for _ in 0..3 {
        timed(true);
        timed(false);
    }
    let (mut ratios, mut offload_s, mut rayon_s) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let (o, y) = if r % 2 == 0 {
            let o = timed(true);
            (o, timed(false))
        } else {
            let y = timed(false);
            (timed(true), y)
        };
        ratios.push(y.as_secs_f64() / o.as_secs_f64());
        offload_s.push(o.as_secs_f64());
        rayon_s.push(y.as_secs_f64());
    }
    println!(
        "group {name}: offload / rayon + oneshot throughput {:.3}x (median of {rounds} \
         interleaved rounds); per call: offload {:.2} µs, rayon + oneshot {:.2} µs (medians)",
        median(ratios),
        per_call(offload_s),
        per_call(rayon_s),
    );
}
