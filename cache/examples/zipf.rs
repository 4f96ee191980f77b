//! Throughput with the cache against without it, in one run: 32 clients request thumbnails
//! of 50 distinct photos (one fixture photo at 50 sizes), photo popularity Zipf-distributed
//! (s = 1), over a pool of 2 threads.
//!
//! ```text
//! cargo run --release -p offload-cache --example zipf -- [requests-per-mode] [zipf-s]
//! ```
//!
//! Prints both throughputs, their ratio and the cache's hit ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use offload::{Pool, RunOptions, Runner};
use offload_cache::{Cache, CacheStats};
use offload_tasks::thumbnail::Thumbnail;

const PHOTO: &[u8] = include_bytes!("../../tasks/tests/fixtures/images/seeding_1200x675.jpg");
const PHOTOS: usize = 50;
const CLIENTS: usize = 32;

/// Photo `i` of the catalogue: the fixture fitted into a box of its own size.
fn photo(i: usize) -> Thumbnail {
    let side = 96 + 8 * i as u32;
    Thumbnail::fit(PHOTO, side, side)
}

/// Zipf(s) over `0..n` by inverting the cumulative weights; a xorshift generator per client
/// keeps the run reproducible and free of dependencies.
struct Zipf {
    cumulative: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, s: f64, seed: u64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        Zipf {
            cumulative,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = (self.state >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.cumulative.partition_point(|&c| c < u)
    }
}

/// Runs `requests` requests from `CLIENTS` clients through `call`; returns the elapsed time.
async fn drive<F, Fut>(requests: usize, s: f64, call: F) -> Duration
where
    F: Fn(Thumbnail) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let call = Arc::clone(&call);
            let mut zipf = Zipf::new(PHOTOS, s, client as u64 + 1);
            let share = requests / CLIENTS + usize::from(client < requests % CLIENTS);
            tokio::spawn(async move {
                for _ in 0..share {
                    call(photo(zipf.next())).await;
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client finished");
    }
    start.elapsed()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let s: f64 = args.next().map_or(Ok(1.0), |a| a.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let pool = Pool::builder().threads(2).build()?;

        let runner = pool.clone();
        let uncached = drive(requests, s, move |task| {
            let runner = runner.clone();
            async move {
                let run = runner.run_with(task, RunOptions::new());
                run.await.expect("runs").expect("a thumbnail");
            }
        })
        .await;

        let cache = Cache::builder().capacity_bytes(64 << 20).build(pool)?;
        let front = cache.clone();
        let cached = drive(requests, s, move |task| {
            let run = front.run(task);
            async move {
                run.await.expect("runs").value.expect("a thumbnail");
            }
        })
        .await;

        report(requests, s, uncached, cached, &cache.stats());
        Ok(())
    })
}

#[allow(clippy::print_stdout)]
fn report(requests: usize, s: f64, uncached: Duration, cached: Duration, stats: &CacheStats) {
    let rate = |d: Duration| requests as f64 / d.as_secs_f64();
    println!(
        "zipf s={s}, {PHOTOS} photos, {CLIENTS} clients, {requests} requests per mode, pool of 2 threads"
    );
    println!(
        "without cache: {:>9.0} req/s ({uncached:.2?})",
        rate(uncached)
    );
    println!("with cache:    {:>9.0} req/s ({cached:.2?})", rate(cached));
    println!("speed-up:      {:>9.1}x", rate(cached) / rate(uncached));
    println!(
        "hit ratio {:.3} (hits {}, coalesced {}, misses {}; executions {}); {} bytes held",
        stats.hit_ratio(),
        stats.hits,
        stats.coalesced,
        stats.misses,
        stats.executions,
        stats.bytes
    );
}
