//! With the `metrics` feature, a pool reports through the `metrics` facade: what an exporter
//! receives matches `Pool::metrics()`.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use offload::Pool;
use support::bounded;

/// `name{label=value,...}` for each series, with its value.
fn series(snapshot: metrics_util::debugging::Snapshot) -> HashMap<String, DebugValue> {
    snapshot
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

fn counter(series: &HashMap<String, DebugValue>, key: &str) -> u64 {
    match series.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?} in {:?}", series.keys()),
    }
}

fn samples(series: &HashMap<String, DebugValue>, key: &str) -> usize {
    match series.get(key) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{key}: {other:?} in {:?}", series.keys()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let pool = Pool::builder()
        .threads(2)
        .queue_capacity(2)
        .thread_name("facade")
        .build()
        .unwrap();
    let busy = support::occupy(&pool);
    // With room for two, occupying both threads is never refused; the third queued task is.
    let queued = [pool.try_run(|| 1).unwrap(), pool.try_run(|| 2).unwrap()];
    assert!(pool.try_run(|| 3).unwrap_err().is_full());
    busy.release().await;
    for (want, handle) in [1, 2].into_iter().zip(queued) {
        assert_eq!(bounded(handle).await, Ok(want));
    }
    let panicked = pool.run(|| -> u8 { panic!("planned") }).name("boom").await;
    assert!(panicked.unwrap_err().is_panic());
    bounded(pool.shutdown()).await;

    let m = pool.metrics();
    let s = series(snapshotter.snapshot());
    let of = |outcome: &str| {
        counter(
            &s,
            &format!("offload_tasks_total{{outcome={outcome},pool=facade}}"),
        )
    };
    assert_eq!(
        counter(&s, "offload_tasks_submitted_total{pool=facade}"),
        m.submitted
    );
    assert_eq!(
        counter(&s, "offload_tasks_rejected_total{pool=facade}"),
        m.rejected
    );
    assert_eq!(of("completed"), m.completed);
    assert_eq!(of("panicked"), m.panicked);
    assert_eq!(
        (m.submitted, m.completed, m.panicked, m.rejected),
        (5, 4, 1, 1)
    );
    assert_eq!(
        of("completed") + of("panicked") + of("cancelled") + of("timed_out"),
        counter(&s, "offload_tasks_submitted_total{pool=facade}"),
        "the outcomes reconcile with the submissions"
    );
    assert_eq!(
        samples(&s, "offload_task_run_seconds{pool=facade,task=boom}"),
        1
    );
    assert_eq!(
        samples(&s, "offload_task_wait_seconds{pool=facade,task=boom}"),
        1
    );
    for gauge in [
        "offload_queued{pool=facade}",
        "offload_running{pool=facade}",
    ] {
        match s.get(gauge) {
            Some(DebugValue::Gauge(v)) => assert_eq!(v.into_inner(), 0.0, "{gauge} after shutdown"),
            other => panic!("{gauge}: {other:?}"),
        }
    }
}
