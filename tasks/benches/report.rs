//! Report task on a 1,000,000-row (~50 MB) CSV: one pool thread versus two.
//!
//! `cargo bench -p offload-tasks --bench report`. Set `REPORT_CSV=/path/file.csv` to measure a given file
//! (the comparison script in `scripts/report-vs-polars/` does, so both sides read the same
//! bytes); otherwise the file is generated with the same seeded generator.
//!
//! The `parallel_ceiling` group is the control: a perfectly parallel integer loop of about the
//! same length, on the same pools in the same run. Its two-thread speed-up is what this
//! machine gives any code, so the report's speed-up is read against it.

mod common;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use offload::Pool;
use offload_tasks::report::{Period, ReportTask, synth};

fn input() -> Vec<u8> {
    match std::env::var_os("REPORT_CSV") {
        Some(path) => std::fs::read(path).expect("REPORT_CSV names a readable file"),
        None => synth::csv(1_000_000, 42),
    }
}

fn report(c: &mut Criterion) {
    let data = input();
    let rt = common::caller_runtime();
    let mut group = c.benchmark_group("report_1m_rows");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Bytes(data.len() as u64));
    for threads in [1, 2] {
        let pool = Pool::builder().threads(threads).build().expect("pool");
        group.bench_function(format!("pool_{threads}_thread"), |b| {
            b.to_async(&rt).iter_batched(
                || {
                    ReportTask::from_csv(black_box(data.clone()))
                        .by(Period::Month)
                        .top(10)
                },
                |task| async {
                    let report = pool
                        .run(task)
                        .await
                        .expect("pool ran the task")
                        .expect("valid csv");
                    black_box(report)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// `rounds` rounds of integer work (about 0.47 ns each here), deterministic and not
/// optimised away: the same stand-in for task code as the core crate's dispatch bench.
fn spin(rounds: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
    for i in 0..black_box(rounds) {
        x = x.rotate_left(7) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    x
}

fn parallel_ceiling(c: &mut Criterion) {
    use rayon::prelude::*;
    let rt = common::caller_runtime();
    let mut group = c.benchmark_group("parallel_ceiling");
    group.sample_size(10);
    for threads in [1, 2] {
        let pool = Pool::builder().threads(threads).build().expect("pool");
        group.bench_function(format!("pool_{threads}_thread"), |b| {
            b.to_async(&rt).iter(|| async {
                let x = pool
                    .run(|| {
                        (0..800)
                            .into_par_iter()
                            .map(|_| spin(200_000))
                            .reduce(|| 0, |a, b| a ^ b)
                    })
                    .await
                    .expect("pool ran the task");
                black_box(x)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, report, parallel_ceiling);
criterion_main!(benches);
