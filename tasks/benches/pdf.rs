//! PDF report rendering: a 1,000-row monthly report plus a 1,000-row transactions table
//! (20 A4 pages), eight documents per iteration on a pool of one thread versus two, with
//! compressed (the default) and uncompressed streams.
//!
//! `cargo bench -p offload-tasks --bench pdf`. Throughput is in documents per second.

mod common;

use std::future::IntoFuture;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use offload::Pool;
use offload_tasks::pdf::PdfReportTask;
use offload_tasks::pdf::synth::transactions_table;
use offload_tasks::report::{ReportTask, synth};

const DOCS: usize = 8;

fn task() -> PdfReportTask {
    let rows = synth::rows(1000, 7);
    let report = ReportTask::from_csv(synth::to_csv(&rows))
        .compute()
        .expect("valid csv");
    let table = transactions_table(&rows);
    PdfReportTask::new("Sales report", report)
        .generated_at(1_764_000_000)
        .table(table)
}

fn pdf(c: &mut Criterion) {
    let base = task();
    let rt = common::caller_runtime();
    let mut group = c.benchmark_group("pdf_report_20_pages");
    group.sample_size(20);
    group.throughput(Throughput::Elements(DOCS as u64));
    for compress in [true, false] {
        for threads in [1, 2] {
            let pool = Pool::builder().threads(threads).build().expect("pool");
            let name = format!(
                "{}_pool_{threads}_thread",
                if compress {
                    "compressed"
                } else {
                    "uncompressed"
                }
            );
            group.bench_function(name, |b| {
                b.to_async(&rt).iter_batched(
                    || vec![black_box(base.clone().compress(compress)); DOCS],
                    |tasks| async {
                        let runs = tasks.into_iter().map(|t| pool.run(t).into_future());
                        for out in futures::future::join_all(runs).await {
                            black_box(out.expect("pool ran the task").expect("rendered"));
                        }
                    },
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pdf);
criterion_main!(benches);
