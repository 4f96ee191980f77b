//! Dispatch overhead: offload vs bare `rayon::spawn` + oneshot vs `spawn_blocking` vs inline.
//!
//! `cargo bench --bench dispatch` runs three groups, every variant of a group in the same run:
//! (a) one empty task at a time, round trip; (b) 10,000 empty tasks in flight;
//! (c) 1,000 tasks of about 10 µs of CPU in flight. Throughput is in tasks per second.
//! (d) the cost of one clock read, `quanta` (what offload uses) against `std::time::Instant`.
//! In (b) and (c), `offload` and `rayon_oneshot` await one future per task, while
//! `offload_run_all` awaits the batch (one wake-up) and `rayon_par_iter` is its bare-rayon
//! counterpart: one `par_iter` over the batch inside one `rayon::spawn`, one oneshot.
//!
//! (e), (f) and (g) repeat (a), (b) and (c) from a multi-thread tokio runtime with one worker
//! per core, the way a server calls the pool: every call is its own tokio task
//! (`tokio::spawn(pool.run(task).into_future())`), so submissions come from both workers
//! while the pool's threads drain. The bench thread only spawns and joins.

mod common;

use std::future::IntoFuture;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use common::{empty, rayon_oneshot, work};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use offload::Pool;

const IN_FLIGHT_EMPTY: usize = 10_000;
const IN_FLIGHT_WORK: usize = 1_000;

struct Setup {
    runtime: tokio::runtime::Runtime,
    pool: Pool,
    rayon: rayon::ThreadPool,
}

fn setup() -> Setup {
    let (pool, rayon) = pools();
    Setup {
        runtime: common::caller_runtime(),
        pool,
        rayon,
    }
}

/// Offload's pool and the bare rayon pool it is compared with, with the same thread count.
fn pools() -> (Pool, rayon::ThreadPool) {
    let threads = num_cpus::get();
    let pool = Pool::builder()
        .threads(threads)
        .queue_capacity(2 * IN_FLIGHT_EMPTY)
        .build()
        .expect("pool");
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon");
    (pool, rayon)
}

fn round_trip(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("a_round_trip_empty");
    g.throughput(Throughput::Elements(1));
    g.bench_function("offload", |b| {
        b.to_async(&s.runtime)
            .iter(|| async { s.pool.run(|| black_box(1u64)).await.expect("ran") })
    });
    g.bench_function("rayon_oneshot", |b| {
        b.to_async(&s.runtime)
            .iter(|| rayon_oneshot(&s.rayon, || black_box(1u64)))
    });
    g.bench_function("spawn_blocking", |b| {
        b.to_async(&s.runtime).iter(|| async {
            tokio::task::spawn_blocking(|| black_box(1u64))
                .await
                .expect("ran")
        })
    });
    g.bench_function("inline", |b| {
        b.to_async(&s.runtime).iter(|| async { black_box(1u64) })
    });
    g.finish();
}

fn in_flight(c: &mut Criterion, group: &str, n: usize, task: fn() -> u64) {
    let s = setup();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_with_input(BenchmarkId::new("offload", n), &n, |b, &n| {
        b.to_async(&s.runtime).iter(|| async {
            let handles: Vec<_> = (0..n)
                .map(|_| s.pool.try_run(task).expect("queue has room"))
                .collect();
            let mut acc = 0u64;
            for h in handles {
                acc ^= h.await.expect("ran");
            }
            acc
        })
    });
    g.bench_with_input(BenchmarkId::new("offload_run_all", n), &n, |b, &n| {
        b.to_async(&s.runtime).iter(|| async {
            let mut acc = 0u64;
            for r in s.pool.run_all((0..n).map(|_| task)).await {
                acc ^= r.expect("ran");
            }
            acc
        })
    });
    g.bench_with_input(BenchmarkId::new("rayon_oneshot", n), &n, |b, &n| {
        b.to_async(&s.runtime).iter(|| async {
            let receivers: Vec<_> = (0..n)
                .map(|_| {
                    let (tx, rx) = oneshot::channel();
                    s.rayon.spawn(move || {
                        let _ = tx.send(task());
                    });
                    rx
                })
                .collect();
            let mut acc = 0u64;
            for rx in receivers {
                acc ^= rx.await.expect("sent");
            }
            acc
        })
    });
    g.bench_with_input(BenchmarkId::new("rayon_par_iter", n), &n, |b, &n| {
        b.to_async(&s.runtime).iter(|| {
            rayon_oneshot(&s.rayon, move || {
                use rayon::prelude::*;
                (0..n)
                    .into_par_iter()
                    .map(|_| task())
                    .reduce(|| 0, |a, b| a ^ b)
            })
        })
    });
    g.bench_with_input(BenchmarkId::new("spawn_blocking", n), &n, |b, &n| {
        b.to_async(&s.runtime).iter(|| async {
            let handles: Vec<_> = (0..n).map(|_| tokio::task::spawn_blocking(task)).collect();
            let mut acc = 0u64;
            for h in handles {
                acc ^= h.await.expect("ran");
            }
            acc
        })
    });
    g.bench_with_input(BenchmarkId::new("inline", n), &n, |b, &n| {
        b.to_async(&s.runtime).iter(|| async move {
            let mut acc = 0u64;
            for _ in 0..n {
                acc ^= task();
            }
            acc
        })
    });
    g.finish();
}

/// The multi-thread setting: a tokio runtime with one worker per core, and the same pool and
/// rayon sizes as [`setup`].
struct MultiSetup {
    runtime: tokio::runtime::Runtime,
    pool: Pool,
    rayon: Arc<rayon::ThreadPool>,
}

fn multi_setup() -> MultiSetup {
    let (pool, rayon) = pools();
    MultiSetup {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(num_cpus::get())
            .enable_all()
            .build()
            .expect("tokio runtime"),
        pool,
        rayon: Arc::new(rayon),
    }
}

/// One call as a tokio task of its own, for each variant. The offload task is the `Run`
/// future itself, as a server would spawn it.
fn spawn_offload(
    pool: &Pool,
    task: fn() -> u64,
) -> tokio::task::JoinHandle<Result<u64, offload::Error>> {
    tokio::spawn(pool.run(task).into_future())
}

fn spawn_rayon_oneshot(
    rayon: &Arc<rayon::ThreadPool>,
    task: fn() -> u64,
) -> tokio::task::JoinHandle<u64> {
    let rayon = Arc::clone(rayon);
    tokio::spawn(async move { rayon_oneshot(&rayon, task).await })
}

fn spawn_blocking_task(task: fn() -> u64) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move { tokio::task::spawn_blocking(task).await.expect("ran") })
}

/// `n` calls in flight, each its own tokio task made by `spawn`; joins them all and folds
/// their values (`value` unwraps a variant's output).
async fn spawned<O>(
    n: usize,
    spawn: impl Fn() -> tokio::task::JoinHandle<O>,
    value: fn(O) -> u64,
) -> u64 {
    let handles: Vec<_> = (0..n).map(|_| spawn()).collect();
    let mut acc = 0u64;
    for h in handles {
        acc ^= value(h.await.expect("joined"));
    }
    acc
}

fn ran(result: Result<u64, offload::Error>) -> u64 {
    result.expect("ran")
}

fn same(value: u64) -> u64 {
    value
}

fn multi(c: &mut Criterion, group: &str, n: usize, task: fn() -> u64) {
    let s = multi_setup();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(n as u64));
    if n > 1 {
        g.sample_size(20);
    }
    g.bench_with_input(BenchmarkId::new("offload", n), &n, |b, &n| {
        b.to_async(&s.runtime)
            .iter(|| spawned(n, || spawn_offload(&s.pool, task), ran))
    });
    g.bench_with_input(BenchmarkId::new("rayon_oneshot", n), &n, |b, &n| {
        b.to_async(&s.runtime)
            .iter(|| spawned(n, || spawn_rayon_oneshot(&s.rayon, task), same))
    });
    g.bench_with_input(BenchmarkId::new("spawn_blocking", n), &n, |b, &n| {
        b.to_async(&s.runtime)
            .iter(|| spawned(n, || spawn_blocking_task(task), same))
    });
    g.finish();
}

fn multi_round_trip(c: &mut Criterion) {
    multi(c, "e_multi_round_trip_empty", 1, empty);
}

fn multi_many_empty(c: &mut Criterion) {
    multi(c, "f_multi_in_flight_empty", IN_FLIGHT_EMPTY, empty);
}

fn multi_many_10us(c: &mut Criterion) {
    multi(c, "g_multi_in_flight_10us", IN_FLIGHT_WORK, work);
}

fn many_empty(c: &mut Criterion) {
    in_flight(c, "b_in_flight_empty", IN_FLIGHT_EMPTY, empty);
}

fn many_10us(c: &mut Criterion) {
    in_flight(c, "c_in_flight_10us", IN_FLIGHT_WORK, work);
}

/// The clock read twice per task for the wait and run metrics: the timestamp counter offload
/// uses (`quanta`) beside the OS clock it would otherwise use.
fn clock(c: &mut Criterion) {
    let _ = quanta::Instant::now(); // calibrates once per process
    let mut g = c.benchmark_group("d_clock_read");
    g.bench_function("quanta", |b| b.iter(quanta::Instant::now));
    g.bench_function("std_instant", |b| b.iter(std::time::Instant::now));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = round_trip, many_empty, many_10us, clock, multi_round_trip, multi_many_empty,
        multi_many_10us
}
criterion_main!(benches);
