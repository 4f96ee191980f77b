//! Admission beyond the task count: deadline-aware refusals with a forecast `retry_after`,
//! the queue-delay policy for tasks without deadlines, and the queue's cost bound.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use offload::{Error, Priority, Task, TryRunError};
use support::{Tally, assert_settled, bounded};

/// Spins for `0` (no sleeping: a thread busy for that long, as real work is).
struct Spin(Duration);

impl Task for Spin {
    type Output = ();
    fn run(self) {
        let until = Instant::now() + self.0;
        while Instant::now() < until && !offload::is_cancelled() {
            std::hint::spin_loop();
        }
    }
    fn name(&self) -> &'static str {
        "spin"
    }
}

const SPIN: Duration = Duration::from_millis(20);

#[tokio::test]
async fn a_task_that_would_finish_past_its_deadline_is_refused_at_once() {
    let pool = support::pool(1, 128);
    // Teach the forecast: a spin takes at least 20 ms.
    bounded(pool.run(Spin(SPIN))).await.unwrap();
    let busy = support::occupy(&pool);
    // At least 60 x 20 ms = 1.2 s of work queued at normal priority.
    let queued: Vec<_> = (0..60).map(|_| pool.try_run(Spin(SPIN)).unwrap()).collect();

    // The read-only forecast (a server's check before it reads a body) says the same, and
    // reserves nothing.
    let in_500ms = Instant::now() + Duration::from_millis(500);
    let forecast = pool.forecast("spin", 1, Priority::Normal, Some(in_500ms));
    let Err(Error::Overloaded {
        task: "spin",
        retry_after,
    }) = forecast
    else {
        panic!("{forecast:?}");
    };
    assert!(
        retry_after >= Duration::from_millis(1200),
        "{retry_after:?}"
    );
    assert_eq!(
        pool.forecast("spin", 1, Priority::High, Some(in_500ms)),
        Ok(())
    );
    assert_eq!(pool.forecast("spin", 1, Priority::Normal, None), Ok(()));
    assert_eq!((pool.queued(), pool.metrics().rejected), (60, 0));

    let started = Instant::now();
    let refused = pool
        .run(Spin(SPIN))
        .timeout(Duration::from_millis(500))
        .await;
    let Err(Error::Overloaded { task, retry_after }) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(task, "spin");
    assert!(
        retry_after >= Duration::from_millis(1200),
        "retry_after is the predicted drain time: {retry_after:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once, not at the deadline"
    );

    // `try_run` says the same, handing the task back.
    let err = pool
        .run(Spin(SPIN))
        .deadline(Instant::now() + Duration::from_millis(500))
        .try_submit()
        .unwrap_err();
    assert!(err.is_overloaded(), "{err:?}");
    assert!(err.retry_after().unwrap() >= Duration::from_millis(1200));
    let _task: Spin = err.into_task();

    // High priority jumps the queue: only the running task is ahead of it.
    let urgent = pool
        .run(Spin(Duration::ZERO))
        .priority(Priority::High)
        .timeout(Duration::from_secs(30))
        .try_submit()
        .unwrap();
    // A deadline the backlog can meet is admitted.
    let patient = pool
        .run(Spin(Duration::ZERO))
        .timeout(Duration::from_secs(600))
        .try_submit()
        .unwrap();

    // Cancel the backlog (dropped handles are skipped unrun), then let everything finish.
    drop(queued);
    busy.release().await;
    bounded(urgent).await.unwrap();
    bounded(patient).await.unwrap();
    support::settles(
        &pool,
        Tally {
            submitted: 1 + 1 + 60 + 2,
            completed: 1 + 1 + 2,
            cancelled: 60,
            rejected: 2,
            ..Tally::default()
        },
    )
    .await;
}

#[tokio::test]
async fn admission_can_be_turned_off() {
    let pool = offload::Pool::builder()
        .threads(1)
        .queue_capacity(128)
        .deadline_admission(false)
        .build()
        .unwrap();
    bounded(pool.run(Spin(SPIN))).await.unwrap();
    let busy = support::occupy(&pool);
    let queued: Vec<_> = (0..60).map(|_| pool.try_run(Spin(SPIN)).unwrap()).collect();
    // Admitted, and times out in the queue instead.
    let late = pool
        .run(Spin(SPIN))
        .timeout(Duration::from_millis(30))
        .await;
    assert!(late.unwrap_err().is_timeout());
    drop(queued);
    busy.release().await;
}

#[tokio::test]
async fn an_idle_pool_admits_whatever_the_forecast() {
    let pool = support::pool(1, 8);
    bounded(pool.run(Spin(SPIN))).await.unwrap();
    support::until(|| pool.running() == 0).await;
    // Expected to take 20 ms, with 1 ms to go: a free thread still takes it (and relearns).
    let out = bounded(pool.run(Spin(SPIN)).timeout(Duration::from_millis(1))).await;
    assert!(out.unwrap_err().is_timeout(), "admitted, then timed out");
    assert_eq!(pool.metrics().rejected, 0);
}

#[tokio::test]
async fn a_standing_queue_sheds_tasks_without_deadlines() {
    // 1 ms target, 20 ms interval: tasks queued behind 5 ms tasks wait ever longer; once
    // every wait has been over target for 20 ms, the rest are shed.
    let pool = offload::Pool::builder()
        .threads(1)
        .queue_capacity(64)
        .queue_delay(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();
    let step = Duration::from_millis(5);
    let handles: Vec<_> = (0..12).map(|_| pool.try_run(Spin(step)).unwrap()).collect();
    // A task with a deadline is exempt from the policy.
    let exempt = pool
        .run(Spin(step))
        .timeout(Duration::from_secs(600))
        .try_submit();
    let mut results = Vec::new();
    for h in handles {
        match bounded(h).await {
            Ok(()) => results.push("completed"),
            Err(Error::Overloaded { task, retry_after }) => {
                assert_eq!(task, "spin");
                assert!(retry_after > Duration::ZERO);
                results.push("shed");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(exempt.is_ok_and(|h| futures::executor::block_on(h).is_ok()));
    // Every task after the first waited 5 ms or more per task ahead (over target), and the
    // 12 take well over the 20 ms interval: the queue stood, and shedding began. The first
    // wait above target starts the interval and is never shed; once shedding, every later
    // task (waiting longer still) is shed too. How many ran before depends on the machine.
    let completed = results.iter().take_while(|r| **r == "completed").count() as u64;
    let shed = results.len() as u64 - completed;
    assert!(completed >= 1 && shed >= 1, "{results:?}");
    assert!(
        results[completed as usize..].iter().all(|r| *r == "shed"),
        "{results:?}"
    );
    // The queue drained: a fresh task waits (next to) no time, which ends the episode. On a
    // loaded machine even a thread's wake-up can exceed a 1 ms target, so allow a few shed
    // before one runs.
    let mut fresh_shed = 0;
    while bounded(pool.run(Spin(Duration::ZERO))).await.is_err() {
        fresh_shed += 1;
        assert!(fresh_shed < 100, "the episode never ended");
    }
    support::settles(
        &pool,
        Tally {
            submitted: 14 + fresh_shed,
            completed: completed + 2,
            shed: shed + fresh_shed,
            ..Tally::default()
        },
    )
    .await;
}

/// A task that weighs its payload's length.
struct Weighted(u64);

impl Task for Weighted {
    type Output = u64;
    fn run(self) -> u64 {
        self.0
    }
    fn cost(&self) -> u64 {
        self.0
    }
}

#[tokio::test]
async fn the_queue_is_bounded_by_cost_as_well_as_count() {
    let pool = offload::Pool::builder()
        .threads(1)
        .queue_capacity(64)
        .queue_cost_limit(100)
        .build()
        .unwrap();
    let busy = support::occupy(&pool);
    let a = pool.try_run(Weighted(60)).unwrap();
    let full = pool.try_run(Weighted(50)).unwrap_err();
    assert!(matches!(full, TryRunError::Full(Weighted(50))));
    let forecast = |cost| pool.forecast("weighted", cost, Priority::Normal, None);
    assert!(matches!(forecast(50), Err(Error::Overloaded { .. })));
    assert_eq!(forecast(40), Ok(()));
    let b = pool.try_run(Weighted(40)).unwrap();
    assert!(pool.try_run(Weighted(1)).unwrap_err().is_full());
    assert!(matches!(forecast(1), Err(Error::Overloaded { .. })));
    // `run` waits for the cost to drain, as for a full count.
    let waiting = tokio::spawn(pool.run(Weighted(70)).into_future());
    busy.release().await;
    assert_eq!(bounded(a).await, Ok(60));
    assert_eq!(bounded(b).await, Ok(40));
    assert_eq!(bounded(waiting).await.unwrap(), Ok(70));
    // Alone in an empty queue, a task heavier than the bound still gets in.
    let busy = support::occupy(&pool);
    let heavy = pool.try_run(Weighted(1_000)).unwrap();
    busy.release().await;
    assert_eq!(bounded(heavy).await, Ok(1_000));
    pool.close();
    assert_eq!(
        pool.forecast("weighted", 1, Priority::Normal, None),
        Err(Error::Closed)
    );
}

#[tokio::test]
async fn the_forecast_of_a_full_queue_is_overloaded_until_it_drains() {
    let pool = support::pool(1, 2);
    let forecast = || pool.forecast("any", 1, Priority::Low, None);
    let busy = support::occupy(&pool);
    let queued: Vec<_> = (0..2).map(|_| pool.try_run(|| ()).unwrap()).collect();
    assert!(matches!(
        forecast(),
        Err(Error::Overloaded { task: "any", .. })
    ));
    busy.release().await;
    for handle in queued {
        bounded(handle).await.unwrap();
    }
    assert_eq!(forecast(), Ok(()));
    assert_eq!(
        pool.metrics().rejected,
        0,
        "a forecast refuses nothing itself"
    );
}

#[tokio::test]
async fn a_queued_task_that_can_no_longer_finish_in_time_is_dropped_at_dequeue() {
    let pool = support::pool(1, 8);
    // Teach the forecast: a spin takes at least 200 ms.
    let spin = Duration::from_millis(200);
    bounded(pool.run(Spin(spin))).await.unwrap();
    let busy = support::occupy(&pool);
    // Admitted: nothing is queued, and half the running task's estimate plus 200 ms is well
    // inside the deadline.
    let deadline = Instant::now() + Duration::from_millis(1000);
    let late = tokio::spawn(pool.run(Spin(spin)).deadline(deadline).into_future());
    // Hold the thread until the task, still queued, has less time left than it needs.
    tokio::time::sleep_until((deadline - Duration::from_millis(150)).into()).await;
    busy.release().await;

    let result = bounded(late).await.unwrap();
    let Err(Error::Overloaded { task, .. }) = result else {
        panic!("dropped at dequeue as overloaded, not run into a timeout: {result:?}");
    };
    assert_eq!(task, "spin");
    bounded(pool.shutdown()).await;
    assert_settled(
        &pool,
        Tally {
            submitted: 3,
            completed: 2,
            shed: 1,
            ..Tally::default()
        },
    );
}
