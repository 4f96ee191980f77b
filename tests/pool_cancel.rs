//! Dropped futures, dropped handles and timeouts: what runs, what does not, and who hears.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use offload::Pool;
use support::{Gate, bounded, signal};

fn flag() -> (Arc<AtomicBool>, impl Fn() -> bool) {
    let f = Arc::new(AtomicBool::new(false));
    let g = Arc::clone(&f);
    (f, move || g.load(Ordering::SeqCst))
}

#[tokio::test]
async fn smoke() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (ran, did_run) = flag();
    let mut fut = Box::pin(
        pool.run(move || ran.store(true, Ordering::SeqCst))
            .into_future(),
    );
    assert!(
        (&mut fut).now_or_never().is_none(),
        "queued behind the gate"
    );
    drop(fut);
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!did_run(), "a future dropped while queued must never run");
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (2, 1, 1));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_dropped_handle_cancels_its_queued_task() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (ran, did_run) = flag();
    let handle = pool
        .try_run(move || ran.store(true, Ordering::SeqCst))
        .unwrap();
    drop(handle);
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!did_run());
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (2, 1, 1));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_running_task_sees_is_cancelled_once_its_caller_leaves() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let (started_tx, started) = signal();
    let (done_tx, done) = std::sync::mpsc::channel();
    let handle = pool
        .try_run(move || {
            assert!(!offload::is_cancelled());
            started_tx.send(()).unwrap();
            let mut spins = 0u64;
            while !offload::is_cancelled() {
                spins += 1;
                std::thread::yield_now();
            }
            done_tx.send(spins).unwrap();
        })
        .unwrap();
    started.wait();
    drop(handle);
    done.recv_timeout(support::PATIENCE)
        .expect("the task never saw the cancellation");
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (1, 1, 0));
    assert!(m.is_settled());
    assert!(!offload::is_cancelled(), "false outside tasks");
}

/// The caller gets the timeout while its task is still blocked: the gate opens only after
/// the error has arrived, so the error cannot have waited for the task.
#[tokio::test]
async fn a_timeout_reaches_the_caller_while_the_task_is_still_blocked() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let gate = Gate::new();
    let (started_tx, started) = signal();
    let (saw_tx, saw) = std::sync::mpsc::channel();
    let g = gate.clone();
    let err = bounded(
        pool.run(move || {
            started_tx.send(()).unwrap();
            g.wait();
            saw_tx.send(offload::is_cancelled()).unwrap();
            7
        })
        .timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    started.wait();
    assert_eq!(pool.running(), 1, "the task is still held by the gate");
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("timed out after 500ms"), "{err}");
    gate.open();
    assert!(
        saw.recv_timeout(support::PATIENCE).unwrap(),
        "the task was told"
    );
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.timed_out, m.completed), (1, 1, 0));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_task_whose_timeout_passes_in_the_queue_never_runs() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (ran, did_run) = flag();
    let err = bounded(
        pool.run(move || ran.store(true, Ordering::SeqCst))
            .timeout(Duration::from_millis(20)),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!did_run());
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed, m.timed_out, m.cancelled),
        (2, 1, 1, 0)
    );
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_task_that_beats_its_timeout_returns_its_value() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let out = bounded(pool.run(|| 5).timeout(Duration::from_secs(30))).await;
    assert_eq!(out, Ok(5));
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.timed_out), (1, 1, 0));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_full_queue_wait_also_times_out() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let queued = pool.try_run(|| ()).unwrap();
    let err = bounded(pool.run(|| ()).timeout(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    busy.release().await;
    bounded(queued).await.unwrap();
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.timed_out), (3, 2, 1));
    assert!(m.is_settled());
}

/// A queued task's input: reports its drop, and weighs `cost` in the queue's cost bound.
struct Input {
    cost: u64,
    dropped: Arc<AtomicBool>,
}

impl Drop for Input {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A task holding an [`Input`]; sets `ran` if it ever runs.
struct Holding {
    input: Input,
    ran: Arc<AtomicBool>,
}

impl offload::Task for Holding {
    type Output = ();

    fn run(self) {
        self.ran.store(true, Ordering::SeqCst);
        drop(self.input);
    }

    fn cost(&self) -> u64 {
        self.input.cost
    }
}

/// A task with an input of `cost`, and flags that say whether its input was dropped and
/// whether it ran.
fn holding(cost: u64) -> (Holding, impl Fn() -> bool, impl Fn() -> bool) {
    let (dropped, is_dropped) = flag();
    let (ran, did_run) = flag();
    let input = Input { cost, dropped };
    (Holding { input, ran }, is_dropped, did_run)
}

#[tokio::test]
async fn a_cancelled_queued_task_frees_its_slot_its_cost_and_its_input_at_once() {
    // One queue slot and a cost bound one task fills: either would refuse the next task
    // while the cancelled one still held it.
    let pool = Pool::builder()
        .threads(1)
        .queue_capacity(1)
        .queue_cost_limit(10)
        .build()
        .unwrap();
    let busy = support::occupy(&pool);
    let (first, first_dropped, first_ran) = holding(10);
    let handle = pool.try_run(first).unwrap();
    let (second, _, _) = holding(10);
    let refused = pool.try_run(second).unwrap_err();
    assert!(refused.is_full(), "{refused}");
    assert!(!first_dropped());

    drop(handle);
    // The worker is still held: only the withdrawal can have freed these.
    assert!(
        first_dropped(),
        "the cancelled task's input must be dropped at once"
    );
    assert_eq!(pool.metrics().queued, 0);
    let (third, third_dropped, third_ran) = holding(10);
    let next = pool
        .try_run(third)
        .expect("the withdrawn task's slot and cost are free");
    assert_eq!(pool.metrics().queued, 1);
    assert!(!third_dropped());

    busy.release().await;
    bounded(next).await.unwrap();
    bounded(pool.shutdown()).await;
    assert!(!first_ran(), "a withdrawn task never runs");
    assert!(third_ran());
    support::assert_settled(
        &pool,
        support::Tally {
            submitted: 3,
            completed: 2,
            cancelled: 1,
            rejected: 1,
            ..Default::default()
        },
    );
}

#[tokio::test]
async fn a_queued_task_that_times_out_frees_its_input_at_once() {
    // Admission off: a forecast may refuse the short deadline instead of queueing it.
    let pool = support::racing_pool(1, 4);
    let busy = support::occupy(&pool);
    let (task, dropped, ran) = holding(1);
    let error = bounded(pool.run(task).timeout(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    // The worker is still held: the timed-out task left the queue with its caller.
    assert!(
        dropped(),
        "the timed-out task's input must be dropped at once"
    );
    assert_eq!(pool.metrics().queued, 0);

    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!ran());
    support::assert_settled(
        &pool,
        support::Tally {
            submitted: 2,
            completed: 1,
            timed_out: 1,
            ..Default::default()
        },
    );
}

#[tokio::test]
async fn dropping_a_batch_frees_the_inputs_of_its_queued_tasks() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (tasks, probes): (Vec<_>, Vec<_>) = (0..8)
        .map(|_| {
            let (task, dropped, ran) = holding(1);
            (task, (dropped, ran))
        })
        .collect();
    let mut batch = Box::pin(pool.run_all(tasks).into_future());
    assert!(
        (&mut batch).now_or_never().is_none(),
        "queued behind the gate"
    );
    assert_eq!(pool.metrics().queued, 8);
    drop(batch);
    assert!(probes.iter().all(|(dropped, _)| dropped()));
    assert_eq!(pool.metrics().queued, 0);

    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(probes.iter().all(|(_, ran)| !ran()));
    support::assert_settled(
        &pool,
        support::Tally {
            submitted: 9,
            completed: 1,
            cancelled: 8,
            ..Default::default()
        },
    );
}

/// Counts drops of the inputs of [`Counted`] tasks.
struct CountedInput(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for CountedInput {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_racing_the_drainers_drop_every_input_once_and_reconcile() {
    use std::sync::atomic::AtomicUsize;
    const TASKS: usize = 2_000;
    let pool = support::pool(2, 16);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..TASKS)
        .map(|i| {
            let pool = pool.clone();
            let input = CountedInput(Arc::clone(&drops));
            let ran = Arc::clone(&ran);
            tokio::spawn(async move {
                let task = move || {
                    let _input = input;
                    ran.fetch_add(1, Ordering::SeqCst);
                };
                let mut run = Box::pin(pool.run(task).into_future());
                // Submitted (or waiting for room) on the first poll; every third caller
                // leaves after it, racing the drainers for its task.
                if (&mut run).now_or_never().is_some() || i % 3 == 0 {
                    return false;
                }
                run.await.unwrap();
                true
            })
        })
        .collect();
    let mut awaited = 0;
    for caller in callers {
        awaited += usize::from(bounded(caller).await.unwrap());
    }
    bounded(pool.shutdown()).await;
    assert_eq!(
        drops.load(Ordering::SeqCst),
        TASKS,
        "every input dropped exactly once"
    );
    let m = pool.metrics();
    assert!(m.is_settled(), "{m:?}");
    assert_eq!(m.queued, 0, "{m:?}");
    // A caller that left while still waiting for room never submitted its task.
    assert!(m.submitted <= TASKS as u64 && m.rejected == 0, "{m:?}");
    assert_eq!(m.completed + m.cancelled, m.submitted, "{m:?}");
    assert!(m.completed >= awaited as u64, "{m:?}");
    assert!(ran.load(Ordering::SeqCst) as u64 >= m.completed, "{m:?}");
}

/// A task whose input panics when dropped unrun (its `run` disarms it).
struct Bomb {
    armed: bool,
}

impl offload::Task for Bomb {
    type Output = ();
    fn run(mut self) {
        self.armed = false;
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed {
            panic!("input dropped unrun");
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload.downcast_ref::<&str>().copied().unwrap_or("")
}

/// Cancelling a queued task drops its input on the caller's thread; when that `Drop` panics,
/// the panic reaches the caller, but only after the slot was freed and the cancellation
/// counted, for the one task of a `run` and for every task of a batch (before, the first
/// panic skipped the bookkeeping of the task, and a batch's second one aborted).
#[tokio::test]
async fn an_input_that_panics_when_dropped_is_still_withdrawn_and_counted() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let mut one = Box::pin(pool.run(Bomb { armed: true }).into_future());
    assert!(
        (&mut one).now_or_never().is_none(),
        "queued behind the held thread"
    );
    let mut batch = Box::pin(
        pool.run_all((0..5).map(|_| Bomb { armed: true }))
            .into_future(),
    );
    assert!((&mut batch).now_or_never().is_none());
    assert_eq!(pool.queued(), 6);
    for fut in [
        Box::new(one) as Box<dyn std::any::Any>,
        Box::new(batch) as Box<dyn std::any::Any>,
    ] {
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)))
            .expect_err("the input's panic reaches the caller");
        assert_eq!(panic_text(panic.as_ref()), "input dropped unrun");
    }
    assert_eq!(pool.queued(), 0, "every slot freed at once");
    assert_eq!(pool.metrics().cancelled, 6);
    busy.release().await;
    bounded(pool.shutdown()).await;
    support::assert_settled(
        &pool,
        support::Tally {
            submitted: 7,
            completed: 1,
            cancelled: 6,
            ..Default::default()
        },
    );
}

/// A task the queue-delay policy sheds is resolved unrun on a pool thread. One whose input
/// panics when dropped there must not take the thread's drainer down with it: before, the
/// drainer unwound holding its slot, every task queued behind it waited forever and
/// `shutdown` never returned.
#[tokio::test]
async fn an_input_that_panics_when_shed_strands_nothing() {
    let pool = Pool::builder()
        .threads(1)
        .queue_delay(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();
    let nap = || std::thread::sleep(Duration::from_millis(25));
    // The first runs at once (or is the first wait over the target, which starts the
    // interval and is never shed); the second waits 25 ms, over the target (it starts the
    // interval, or is shed if the first did); the bomb waits 50 ms, at least 25 ms into the
    // interval, so it is shed, and so is the task after it.
    let first = pool.try_run(nap).unwrap();
    let second = pool.try_run(nap).unwrap();
    let bomb = pool.try_run(Bomb { armed: true }).unwrap();
    let after = pool.try_run(|| ()).unwrap();
    assert_eq!(bounded(first).await, Ok(()));
    let second = bounded(second).await;
    assert!(
        matches!(second, Ok(()) | Err(offload::Error::Overloaded { .. })),
        "{second:?}"
    );
    let shed = |r: &Result<_, offload::Error>| matches!(r, Err(offload::Error::Overloaded { .. }));
    assert!(shed(&bounded(bomb).await), "the bomb is shed");
    assert!(shed(&bounded(after).await), "the task after it is answered");
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed + m.shed), (4, 4), "{m:?}");
    assert!(m.shed >= 2 && m.is_settled(), "{m:?}");
}
