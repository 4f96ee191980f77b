//! 20,000 tasks from many concurrent submitters, with planned panics, dropped handles,
//! timeouts, refusals and batches: every future resolves and the counters reconcile exactly.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use offload::Priority;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    panicked: AtomicU64,
    timed_out: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    /// Refused at the door (counted `rejected`) or dropped at dequeue (counted `shed`): the
    /// caller sees `Error::Overloaded` either way.
    overloaded: AtomicU64,
    /// Tasks beyond one per loop step (a batch of three counts two here).
    extra: AtomicU64,
}

impl Tally {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

fn quiet_planned_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("planned"));
        if !planned {
            default(info);
        }
    }));
}

fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !offload::is_cancelled() {
        std::hint::spin_loop();
    }
}

#[test]
fn smoke() {
    quiet_planned_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let pool = support::pool(2, 64);
    let tally = std::sync::Arc::new(Tally::default());
    const SUBMITTERS: u64 = 16;
    const PER_SUBMITTER: u64 = 1_250;

    runtime.block_on(async {
        let mut joins = Vec::new();
        for s in 0..SUBMITTERS {
            let pool = pool.clone();
            let tally = std::sync::Arc::clone(&tally);
            joins.push(tokio::spawn(async move {
                for n in 0..PER_SUBMITTER {
                    let i = s * PER_SUBMITTER + n;
                    let priority =
                        [Priority::Low, Priority::Normal, Priority::High][(i % 3) as usize];
                    match i % 20 {
                        0 | 10 => {
                            let err = pool
                                .run(move || -> u64 { panic!("planned {i}") })
                                .priority(priority)
                                .await
                                .unwrap_err();
                            assert_eq!(err.panic_message(), Some(format!("planned {i}").as_str()));
                            Tally::bump(&tally.panicked);
                        }
                        5 => {
                            let batch = pool
                                .run_all((0..3u64).map(|k| {
                                    move || {
                                        assert!(k != 1, "planned {i}");
                                        i + k
                                    }
                                }))
                                .priority(priority)
                                .await;
                            assert_eq!(batch[0], Ok(i));
                            let err = batch[1].as_ref().unwrap_err();
                            assert_eq!(err.panic_message(), Some(format!("planned {i}").as_str()));
                            assert_eq!(batch[2], Ok(i + 2));
                            tally.ok.fetch_add(2, Ordering::Relaxed);
                            Tally::bump(&tally.panicked);
                            tally.extra.fetch_add(2, Ordering::Relaxed);
                        }
                        1 | 11 => match pool.try_run(move || i) {
                            Ok(handle) => {
                                drop(handle);
                                Tally::bump(&tally.dropped);
                            }
                            Err(e) => {
                                assert!(e.is_full());
                                Tally::bump(&tally.rejected);
                            }
                        },
                        2 => {
                            let out = pool
                                .run(move || {
                                    spin(Duration::from_micros(1_500));
                                    i
                                })
                                .timeout(Duration::from_millis(1))
                                .await;
                            match out {
                                Ok(v) => {
                                    assert_eq!(v, i);
                                    Tally::bump(&tally.ok);
                                }
                                // A 1.5 ms task cannot meet a 1 ms deadline: once the
                                // pool has seen one run, admission refuses the rest (or
                                // drops them at dequeue, if admitted before that run).
                                Err(e) if e.is_overloaded() => Tally::bump(&tally.overloaded),
                                Err(e) => {
                                    assert!(e.is_timeout(), "{e}");
                                    Tally::bump(&tally.timed_out);
                                }
                            }
                        }
                        3 | 13 => match pool.try_run(move || i * 2) {
                            Ok(handle) => {
                                assert_eq!(handle.await, Ok(i * 2));
                                Tally::bump(&tally.ok);
                            }
                            Err(e) => {
                                assert!(e.is_full());
                                assert_eq!((e.into_task())(), i * 2);
                                Tally::bump(&tally.rejected);
                            }
                        },
                        _ => {
                            let v = pool.run(move || i + 1).priority(priority).await.unwrap();
                            assert_eq!(v, i + 1);
                            Tally::bump(&tally.ok);
                        }
                    }
                }
            }));
        }
        support::bounded(async {
            for j in joins {
                j.await.unwrap();
            }
            pool.shutdown().await;
        })
        .await;
    });

    let m = pool.metrics();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let total = SUBMITTERS * PER_SUBMITTER;
    assert_eq!(m.submitted + m.rejected, total + get(&tally.extra), "{m:?}");
    assert_eq!(m.completed, get(&tally.ok), "{m:?}");
    assert_eq!(m.panicked, get(&tally.panicked), "{m:?}");
    assert_eq!(m.timed_out, get(&tally.timed_out), "{m:?}");
    assert_eq!(m.cancelled, get(&tally.dropped), "{m:?}");
    assert_eq!(
        m.rejected + m.shed,
        get(&tally.rejected) + get(&tally.overloaded),
        "{m:?}"
    );
    assert_eq!(
        m.submitted,
        m.completed + m.panicked + m.cancelled + m.timed_out + m.shed
    );
    assert_eq!((m.queued, m.running), (0, 0));
    assert!(m.is_settled());
    assert_eq!(m.panicked, total / 10 + total / 20);
}
