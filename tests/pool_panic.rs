//! Panics inside tasks reach their callers as errors and cost the pool nothing.
#![allow(clippy::unwrap_used)]

mod support;

use offload::{Error, Pool};
use support::bounded;

#[tokio::test]
async fn smoke() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let err = bounded(pool.run(|| -> u32 { panic!("bad pixel at {}", 7) }))
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_timeout() && !err.is_closed());
    assert_eq!(err.panic_message(), Some("bad pixel at 7"));
    assert!(
        err.to_string().contains("panicked: bad pixel at 7"),
        "{err}"
    );
}

#[tokio::test]
async fn display_names_the_task() {
    struct Resize;
    impl offload::Task for Resize {
        type Output = ();
        fn run(self) {
            panic!("odd width");
        }
        fn name(&self) -> &'static str {
            "resize"
        }
    }
    let pool = Pool::builder().threads(1).build().unwrap();
    let err = bounded(pool.run(Resize)).await.unwrap_err();
    assert_eq!(err.to_string(), "task `resize` panicked: odd width");
    assert!(matches!(err, Error::Panicked { task: "resize", .. }));
}

#[tokio::test]
async fn non_string_payloads_still_report_a_panic() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let err = bounded(pool.run(|| std::panic::panic_any(42_u32)))
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("<non-string panic payload>"));
}

#[tokio::test]
async fn the_pool_keeps_every_thread_after_many_panics() {
    let threads = 3;
    let pool = Pool::builder().threads(threads).build().unwrap();
    bounded(async {
        for i in 0..50 {
            let err = pool
                .run(move || -> u8 { panic!("planned {i}") })
                .await
                .unwrap_err();
            assert_eq!(err.panic_message(), Some(format!("planned {i}").as_str()));
        }
    })
    .await;
    // All threads must still be alive: `occupy` needs every one of them running at once.
    support::occupy(&pool).release().await;
    assert_eq!(
        bounded(pool.run(|| "still working")).await,
        Ok("still working")
    );
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.panicked, m.completed), (50, threads as u64 + 1));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_panic_inside_nested_rayon_work_reaches_the_caller() {
    use rayon::prelude::*;
    let pool = Pool::builder().threads(2).build().unwrap();
    let err = bounded(pool.run(|| {
        (0..1000)
            .into_par_iter()
            .map(|i| if i == 777 { panic!("row {i}") } else { i })
            .sum::<i32>()
    }))
    .await
    .unwrap_err();
    assert_eq!(err.panic_message(), Some("row 777"));
    assert_eq!(bounded(pool.run(|| 1)).await, Ok(1));
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.panicked, m.completed), (2, 1, 1));
    assert!(m.is_settled());
}
