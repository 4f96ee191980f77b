//! `Runner` on a `Pool`: one handler for any backend, refusals as `Error::Overloaded`, and
//! explicit deadlines.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use offload::{Error, Priority, RunOptions, Runner, Task};
use serde::{Deserialize, Serialize};
use support::{Tally, bounded};

#[derive(Serialize, Deserialize)]
struct Add(u32, u32);

impl Task for Add {
    type Output = u32;
    fn run(self) -> u32 {
        self.0 + self.1
    }
    fn name(&self) -> &'static str {
        "add"
    }
}

/// Written once against the trait, as a service's handler would be.
async fn add(runner: &impl Runner, options: RunOptions) -> Result<u32, Error> {
    runner.run_with(Add(2, 3), options).await
}

#[tokio::test]
async fn a_handler_written_against_the_trait_runs_on_a_pool() {
    let pool = support::pool(1, 4);
    let options = RunOptions::new()
        .priority(Priority::High)
        .timeout(Duration::from_secs(30));
    assert_eq!(bounded(add(&pool, options)).await, Ok(5));
    // The future is 'static: it can be spawned.
    let spawned = tokio::spawn(pool.run_with(Add(1, 1), RunOptions::new()));
    assert_eq!(bounded(spawned).await.unwrap(), Ok(2));
    support::settles(
        &pool,
        Tally {
            submitted: 2,
            completed: 2,
            ..Tally::default()
        },
    )
    .await;
}

#[tokio::test]
async fn without_waiting_for_room_a_full_pool_refuses_as_overloaded() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let queued = pool.try_run(|| ()).unwrap();
    let refused = add(&pool, RunOptions::new().wait_for_room(false)).await;
    let Err(Error::Overloaded { task, retry_after }) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(task, "add");
    assert!(retry_after > Duration::ZERO);
    assert_eq!(refused.unwrap_err().retry_after(), Some(retry_after));
    busy.release().await;
    bounded(queued).await.unwrap();
    support::settles(
        &pool,
        Tally {
            submitted: 2,
            completed: 2,
            rejected: 1,
            ..Tally::default()
        },
    )
    .await;
}

#[tokio::test]
async fn a_deadline_that_passes_in_the_queue_times_the_task_out_unrun() {
    let pool = support::pool(1, 4);
    let busy = support::occupy(&pool);
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let waiting = pool
        .run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
        .name("late")
        .deadline(Instant::now() + Duration::from_millis(20))
        // The earlier of the two applies: the deadline.
        .timeout(Duration::from_secs(3600));
    let err = bounded(waiting).await.unwrap_err();
    let Error::TimedOut { task, after } = err else {
        panic!("{err:?}");
    };
    assert_eq!(task, "late");
    // `after` is what was left of the deadline at submission, not the hour.
    assert!(after <= Duration::from_millis(20), "{after:?}");
    busy.release().await;
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn a_past_deadline_fails_through_the_trait_too() {
    let pool = support::pool(1, 4);
    let options = RunOptions::new().deadline(Instant::now() - Duration::from_millis(1));
    let err = bounded(add(&pool, options)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}
