//! A tracing layer that panics when a task's span closes, on the worker thread after the
//! task has produced its value: the task fails as `Panicked` with its caller told, instead of
//! leaking its result and leaving the caller waiting forever; the pool keeps working.
//!
//! Worker threads only see the global default subscriber, which is per process: this file
//! is its own test binary, and the layer below is its only subscriber. The layer panics only
//! while `PANIC_ON_CLOSE` is on, and the tests take turns (`one_at_a_time`) so that one
//! test's switch never reaches another's tasks.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

use offload::Pool;
use support::{Tally, bounded};
use tracing::Subscriber;
use tracing::span::Id;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const MESSAGE: &str = "subscriber failed on close";

static PANIC_ON_CLOSE: AtomicBool = AtomicBool::new(false);

struct PanicOnClose;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for PanicOnClose {
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let task_span = ctx
            .metadata(&id)
            .is_some_and(|m| m.name() == "offload.task");
        if task_span && PANIC_ON_CLOSE.load(Ordering::SeqCst) {
            panic!("{MESSAGE}");
        }
    }
}

/// Installs the layer (once per process) and takes this test's turn; the switch starts off
/// and is turned off again when the turn ends, even if the test failed.
fn one_at_a_time() -> Turn {
    static INSTALL: Once = Once::new();
    static TURN: Mutex<()> = Mutex::new(());
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PanicOnClose))
            .unwrap();
        // The planned panics are expected; keep the output for the unexpected ones.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let planned = payload.downcast_ref::<&str>() == Some(&MESSAGE)
                || payload.downcast_ref::<String>().map(String::as_str) == Some(MESSAGE);
            if !planned {
                default(info);
            }
        }));
    });
    let guard = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    PANIC_ON_CLOSE.store(false, Ordering::SeqCst);
    Turn(guard)
}

struct Turn(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Turn {
    fn drop(&mut self) {
        PANIC_ON_CLOSE.store(false, Ordering::SeqCst);
    }
}

fn panic_on_close(on: bool) {
    PANIC_ON_CLOSE.store(on, Ordering::SeqCst);
}

#[tokio::test]
async fn smoke() {
    let _turn = one_at_a_time();
    let pool = support::pool(1, 4);
    panic_on_close(true);
    let err = bounded(pool.run(|| 5))
        .await
        .expect_err("the span's close panicked after the value was made");
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.panic_message(), Some(MESSAGE));
    panic_on_close(false);
    assert_eq!(bounded(pool.run(|| 6)).await, Ok(6));
    bounded(pool.shutdown()).await;
    let want = Tally {
        submitted: 2,
        completed: 1,
        panicked: 1,
        ..Tally::default()
    };
    support::assert_settled(&pool, want);
}

/// Many tasks failing that way at once, through `run`, `try_run` and `run_all`: each one
/// fails alone, no thread is lost (`occupy` needs all of them), and later tasks succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_fails_alone_and_the_pool_keeps_its_threads() {
    let _turn = one_at_a_time();
    let pool = support::pool(2, 8);
    panic_on_close(true);
    let failed = bounded(async {
        let handle = pool.try_run(|| 41u32).unwrap();
        let runs: Vec<_> = (0..40u32)
            .map(|i| tokio::spawn(pool.run(move || i).into_future()))
            .collect();
        let batch = pool.run_all((0..10u32).map(|i| move || i)).await;
        let mut failed = vec![handle.await];
        for r in runs {
            failed.push(r.await.unwrap());
        }
        failed.extend(batch);
        failed
    })
    .await;
    assert_eq!(failed.len(), 51);
    for r in &failed {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.panic_message(), Some(MESSAGE), "{e}");
    }
    panic_on_close(false);
    support::occupy(&pool).release().await;
    let ok = bounded(pool.run_all((0..20u32).map(|i| move || i * 2))).await;
    let expected: Vec<_> = (0..20).map(|i| Ok(i * 2)).collect();
    assert_eq!(ok, expected);
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    let failed = failed.len() as u64;
    let want = Tally {
        submitted: failed + 2 + 20,
        panicked: failed,
        completed: 2 + 20,
        rejected: m.rejected,
        ..Tally::default()
    };
    support::assert_settled(&pool, want);
}

/// An inline pool runs the task on the caller's thread, through the same guard.
#[test]
fn an_inline_pool_fails_the_task_and_keeps_working() {
    let _turn = one_at_a_time();
    let pool = Pool::inline();
    panic_on_close(true);
    let err = support::block_on(pool.run(|| 5)).unwrap_err();
    assert_eq!(err.panic_message(), Some(MESSAGE), "{err}");
    panic_on_close(false);
    assert_eq!(support::block_on(pool.run(|| 6)), Ok(6));
    support::block_on(pool.shutdown());
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.panicked), (2, 1, 1), "{m:?}");
    assert!(m.is_settled());
}
