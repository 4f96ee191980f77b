//! Thumbnails per second: 256 px JPEG (quality 80) from a 6028x3391 and a 1920x1280 photo,
//! inline on one thread and on an offload pool of two threads.
//!
//! Run: `cargo bench -p offload-tasks --bench thumbnail` (the default build: libjpeg-turbo's
//! decoder from MozJPEG, compiled without SIMD) or
//! `cargo bench -p offload-tasks --bench thumbnail --features turbojpeg` (libjpeg-turbo 3 with
//! SIMD; needs cmake and nasm); the group names say which ([`JPEG_BACKEND`]). The 6028x3391 photo is read from `../shared/images`
//! beside the repository (skipped with a message when absent); the 1920x1280 one is committed
//! under `tasks/tests/fixtures/images`. `scripts/thumbnail-vs-sharp/run.sh` measures sharp on
//! the same files for comparison.

mod common;

use std::future::IntoFuture;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use offload::Pool;
use offload_tasks::thumbnail::{JPEG_BACKEND, Thumbnail, ThumbnailOptions, thumbnail};

/// Thumbnails per measured iteration; enough to keep both pool threads busy.
const BATCH: usize = 8;

fn photos() -> Vec<(&'static str, Vec<u8>)> {
    let tasks = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut photos = Vec::new();
    // `../shared` beside the repository, whose root is this crate's parent.
    let big = tasks.join("../../shared/images/Kleiber_by_Lukas_Baubkus.jpg");
    match std::fs::read(&big) {
        Ok(bytes) => photos.push(("6028x3391", bytes)),
        Err(e) => eprintln!("skipping 6028x3391: cannot read {}: {e}", big.display()),
    }
    let small = tasks.join("tests/fixtures/images/seeding_1920x1280.jpg");
    match std::fs::read(&small) {
        Ok(bytes) => photos.push(("1920x1280", bytes)),
        Err(e) => eprintln!("skipping 1920x1280: cannot read {}: {e}", small.display()),
    }
    photos
}

fn bench(c: &mut Criterion) {
    let rt = common::caller_runtime();
    let pool = Pool::builder().threads(2).build().expect("pool");
    let options = ThumbnailOptions::new(256, 256);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon pool");

    for (name, bytes) in photos() {
        let mut group = c.benchmark_group(format!("thumbnail/{name}/{JPEG_BACKEND}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        group.sample_size(10);

        // Inside a one-thread rayon pool, so that a decoder that parallelises internally
        // (jpeg-decoder, used for lossless files, does per colour component) is measured on
        // one thread too.
        group.bench_function("inline_1_thread", |b| {
            b.iter(|| {
                one_thread.install(|| {
                    for _ in 0..BATCH {
                        black_box(thumbnail(black_box(&bytes), &options).expect("thumbnail"));
                    }
                })
            })
        });

        group.bench_function("pool_2_threads", |b| {
            b.to_async(&rt).iter(|| async {
                // `run` submits on first poll, so poll all of them together.
                let runs = (0..BATCH).map(|_| {
                    pool.run(Thumbnail::fit(black_box(bytes.clone()), 256, 256))
                        .into_future()
                });
                for out in futures::future::join_all(runs).await {
                    black_box(out.expect("pool").expect("thumbnail"));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
