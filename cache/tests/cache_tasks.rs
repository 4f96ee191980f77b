//! Keys of the built-in tasks: every input byte and option is in the key, and the tasks run
//! through the cache.

use std::time::Duration;

use offload::Pool;
use offload_cache::{Cache, Key, Outcome};
use offload_tasks::pdf::PdfReportTask;
use offload_tasks::report::{Period, ReportTask};
use offload_tasks::thumbnail::{Format, Limits, Thumbnail};

const PHOTO: &[u8] = include_bytes!("../../tasks/tests/fixtures/images/seeding_1200x675.jpg");

fn cache() -> Cache<Pool> {
    let pool = Pool::builder().threads(2).build().expect("threads start");
    Cache::builder()
        .negative_ttl(Duration::from_secs(60))
        .build(pool)
        .expect("cache")
}

fn key<T: offload_cache::Cacheable>(cache: &Cache<Pool>, task: &T) -> Key {
    cache
        .key(task)
        .expect("the built-in tasks always have a key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let cache = cache();
    let first = cache
        .run(Thumbnail::fit(PHOTO, 128, 128))
        .await
        .expect("runs");
    let again = cache
        .run(Thumbnail::fit(PHOTO, 128, 128))
        .await
        .expect("runs");
    assert_eq!(
        (first.outcome, again.outcome),
        (Outcome::Miss, Outcome::Hit)
    );
    let (first, again) = (
        first.value.expect("a thumbnail"),
        again.value.expect("a thumbnail"),
    );
    assert_eq!((first.width, first.height), (128, 72));
    assert_eq!(first, again);
}

#[test]
fn thumbnail_keys_cover_the_bytes_and_every_option() {
    let cache = cache();
    let base = key(&cache, &Thumbnail::fit(PHOTO, 128, 128));
    assert_eq!(base, key(&cache, &Thumbnail::fit(PHOTO.to_vec(), 128, 128)));
    let mut edited = PHOTO.to_vec();
    *edited.last_mut().expect("bytes") ^= 1;
    let variants = [
        key(&cache, &Thumbnail::fit(edited, 128, 128)),
        key(&cache, &Thumbnail::fit(PHOTO, 129, 128)),
        key(&cache, &Thumbnail::fit(PHOTO, 128, 129)),
        key(&cache, &Thumbnail::fit(PHOTO, 128, 128).cover()),
        key(&cache, &Thumbnail::fit(PHOTO, 128, 128).format(Format::Png)),
        key(&cache, &Thumbnail::fit(PHOTO, 128, 128).quality(81)),
        key(
            &cache,
            &Thumbnail::fit(PHOTO, 128, 128).background([0, 0, 0]),
        ),
        key(&cache, &Thumbnail::fit(PHOTO, 128, 128).allow_upscale(true)),
        key(
            &cache,
            &Thumbnail::fit(PHOTO, 128, 128).limits(Limits {
                max_pixels: 1_000_000,
                ..Limits::default()
            }),
        ),
    ];
    for (i, k) in variants.iter().enumerate() {
        assert_ne!(*k, base, "variant {i}");
        for (j, other) in variants.iter().enumerate().skip(i + 1) {
            assert_ne!(k, other, "variants {i} and {j}");
        }
    }
}

#[test]
fn report_and_pdf_keys_cover_input_and_options() {
    let cache = cache();
    let csv = offload_tasks::report::synth::csv(50, 7);
    let base = key(&cache, &ReportTask::from_csv(csv.clone()));
    assert_eq!(base, key(&cache, &ReportTask::from_csv(csv.clone())));
    assert_ne!(base, key(&cache, &ReportTask::from_json(csv.clone())));
    assert_ne!(
        base,
        key(&cache, &ReportTask::from_csv(csv.clone()).by(Period::Week))
    );
    assert_ne!(base, key(&cache, &ReportTask::from_csv(csv.clone()).top(3)));
    assert_ne!(
        base,
        key(
            &cache,
            &ReportTask::from_csv(offload_tasks::report::synth::csv(50, 8))
        )
    );

    let report = ReportTask::from_csv(csv).compute().expect("a report");
    let pdf = |title: &str| PdfReportTask::new(title, report.clone()).generated_at(1_700_000_000);
    let base = key(&cache, &pdf("March"));
    assert_eq!(base, key(&cache, &pdf("March")));
    assert_ne!(base, key(&cache, &pdf("April")));
    // The generation time is not in the key: `PdfReportTask::new` stamps the clock, and
    // identical reports must still share one result.
    assert_eq!(base, key(&cache, &pdf("March").generated_at(1_700_000_001)));
    assert_eq!(
        key(&cache, &PdfReportTask::new("March", report.clone())),
        base
    );
    assert_ne!(base, key(&cache, &pdf("March").compress(false)));
    let mut other = report.clone();
    other.skipped_rows += 1;
    assert_ne!(
        base,
        key(
            &cache,
            &PdfReportTask::new("March", other).generated_at(1_700_000_000)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bomb_is_refused_from_the_cache() {
    let cache = cache();
    let strict = Limits {
        max_pixels: 10_000,
        ..Limits::default()
    };
    let first = cache
        .run(Thumbnail::fit(PHOTO, 64, 64).limits(strict))
        .await
        .expect("runs");
    let again = cache
        .run(Thumbnail::fit(PHOTO, 64, 64).limits(strict))
        .await
        .expect("runs");
    assert!(
        first
            .value
            .as_ref()
            .expect_err("over the limit")
            .is_too_large()
    );
    assert_eq!(first.value, again.value);
    assert_eq!(
        (first.outcome, again.outcome),
        (Outcome::Miss, Outcome::Hit)
    );
    assert_eq!(cache.stats().executions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_pdfs_are_cached() {
    // `Report` has `#[serde(flatten)]` fields: stored through the CBOR fallback.
    let cache = cache();
    let csv = offload_tasks::report::synth::csv(200, 3);
    let first = cache
        .run(ReportTask::from_csv(csv.clone()))
        .await
        .expect("runs");
    let again = cache.run(ReportTask::from_csv(csv)).await.expect("runs");
    assert_eq!(
        (first.outcome, again.outcome),
        (Outcome::Miss, Outcome::Hit)
    );
    let report = first.value.expect("a report");
    assert_eq!(Ok(&report), again.value.as_ref());

    let pdf = || PdfReportTask::new("Q1", report.clone()).generated_at(1_700_000_000);
    let first = cache.run(pdf()).await.expect("runs");
    let again = cache.run(pdf()).await.expect("runs");
    assert_eq!(
        (first.outcome, again.outcome),
        (Outcome::Miss, Outcome::Hit)
    );
    assert!(first.value.expect("a pdf").bytes.starts_with(b"%PDF"));
    assert_eq!(cache.stats().executions, 2);
}
