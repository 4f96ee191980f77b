//! Work started from inside the pool: `run` from one of the pool's own threads runs inline
//! (never a deadlock), and a task waiting inside rayon is not held hostage by the queue.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Gate, bounded, signal};

#[tokio::test]
async fn blocking_on_run_inside_a_task_runs_inline_instead_of_deadlocking() {
    // One thread, held by the outer task: a queued inner task could never start.
    let pool = support::pool(1, 4);
    let inner_pool = pool.clone();
    let (outer_thread, inner_thread) = bounded(pool.run(move || {
        let here = std::thread::current().id();
        let there = support::block_on(inner_pool.run(|| std::thread::current().id())).unwrap();
        (here, there)
    }))
    .await
    .unwrap();
    assert_eq!(
        outer_thread, inner_thread,
        "ran inline on the pool's thread"
    );
    support::until(|| pool.running() == 0).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed), (2, 2), "{m:?}");
    assert!(m.is_settled(), "{m:?}");
}

#[tokio::test]
async fn a_nested_run_still_reports_panics_and_deadlines() {
    let pool = support::pool(1, 4);
    let inner = pool.clone();
    let (panicked, timed_out) = bounded(pool.run(move || {
        let panicked = support::block_on(inner.run(|| -> u8 { panic!("inner") })).unwrap_err();
        let late = inner
            .run(|| 1)
            .deadline(Instant::now() - Duration::from_millis(1));
        (panicked, support::block_on(late).unwrap_err())
    }))
    .await
    .unwrap();
    assert!(panicked.is_panic(), "{panicked:?}");
    assert!(timed_out.is_timeout(), "{timed_out:?}");
}

/// The outer task waits in `rayon::join` while its other half runs on the second thread.
/// Meanwhile its thread picks up a drainer (rayon runs other jobs while a join waits), and a
/// feeder keeps the queue from ever running dry. Once the other half is done, the outer task
/// must get its thread back, not wait for an empty queue that never comes.
#[test]
fn a_task_waiting_in_rayon_join_gets_its_thread_back_under_steady_load() {
    let pool = support::pool(2, 64);
    let gate = Gate::new();
    let (right_started_tx, right_started) = signal();
    let outer_done = Arc::new(AtomicBool::new(false));
    let outer_thread = Arc::new(Mutex::new(None));
    // Set once a queued task ran on the outer task's thread: a nested drainer.
    let nested = Arc::new(AtomicBool::new(false));

    let done = outer_done.clone();
    let release = gate.clone();
    let here = outer_thread.clone();
    let outer = pool
        .try_run(move || {
            *here.lock().unwrap() = Some(std::thread::current().id());
            rayon::join(
                // Runs here first, and returns once the other half was stolen.
                move || right_started.wait(),
                move || {
                    right_started_tx.send(()).unwrap();
                    release.wait();
                },
            );
            done.store(true, Ordering::SeqCst);
        })
        .unwrap();

    // Steady load until the outer task returns (or a generous bound passes).
    let feeder_pool = pool.clone();
    let feeder_done = outer_done.clone();
    let seen = nested.clone();
    let feeder = std::thread::spawn(move || {
        let started = Instant::now();
        let mut handles = Vec::new();
        while !feeder_done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
            let outer_thread = outer_thread.clone();
            let nested = seen.clone();
            let task = move || {
                if *outer_thread.lock().unwrap() == Some(std::thread::current().id()) {
                    nested.store(true, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            match feeder_pool.try_run(task) {
                Ok(h) => handles.push(h),
                Err(e) if e.is_full() => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
            if seen.load(Ordering::SeqCst) {
                // A drainer runs on top of the waiting task: let the other half finish.
                gate.open();
            }
        }
        (feeder_done.load(Ordering::SeqCst), handles)
    });
    let (returned_under_load, handles) = feeder.join().unwrap();
    assert!(
        nested.load(Ordering::SeqCst),
        "the scenario did not happen: no queued task ran on the waiting task's thread"
    );
    assert!(
        returned_under_load,
        "the outer task was still stuck under a nested drainer after 10 s of steady load"
    );
    support::block_on(outer).unwrap();
    for h in handles {
        support::block_on(h).unwrap();
    }
}
