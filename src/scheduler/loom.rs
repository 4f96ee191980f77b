//! Model checks of the scheduler's state word against the races that matter, run with
//! `RUSTFLAGS="--cfg offload_loom" cargo test -p offload --lib --release loom`.
//
// Implementation: each model drives the real `State` (on loom's atomics under this cfg) the way
// `Scheduler` does, with a locked `VecDeque` standing in for the crossbeam channels and loom
// threads for the submitters, drainers, closers and room waiters. Outcomes travel back through
// the threads' join handles, so bookkeeping adds no synchronization of its own; the few shared
// probe counters exist to observe an ordering and say so where they are read.
//
// Loom explores every interleaving unless a test sets a preemption bound (how many times a
// thread may be switched out while it could go on); the bound is given beside each model.

use std::collections::VecDeque;
use std::mem;

use ::loom::model::Builder;
use ::loom::sync::atomic::{AtomicUsize, Ordering, fence};
use ::loom::sync::{Arc, Mutex};
use ::loom::thread::{self, JoinHandle};

use super::state::{Refusal, State, Step};

/// The scheduler in miniature.
struct Pool {
    state: State,
    /// Stands in for the channels: submitters push after admission, drainers pop after a claim.
    queue: Mutex<VecDeque<u32>>,
    /// Run futures waiting for room, as `Scheduler::waiters`.
    waiters: AtomicUsize,
    /// Probe: tasks whose body has run (bumped before the drainer's finishing step).
    ran: AtomicUsize,
    /// Probe: finishing steps taken (bumped after them).
    finished: AtomicUsize,
    capacity: u64,
    threads: u64,
}

impl Pool {
    fn new(capacity: u64, threads: u64) -> Arc<Pool> {
        Arc::new(Pool {
            state: State::default(),
            queue: Mutex::new(VecDeque::new()),
            waiters: AtomicUsize::new(0),
            ran: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            capacity,
            threads,
        })
    }

    fn push(&self, task: u32) {
        self.queue.lock().expect("queue lock").push_back(task);
    }

    /// `Scheduler::pop_claimed`: the submitter's push may not have landed yet.
    fn pop_claimed(&self) -> u32 {
        loop {
            if let Some(task) = self.queue.lock().expect("queue lock").pop_front() {
                return task;
            }
            thread::yield_now();
        }
    }

    /// At the end of a model: every count back to zero and nothing left behind.
    fn assert_settled(&self) {
        assert_eq!(
            self.state.in_flight(),
            0,
            "a task is still counted in flight"
        );
        assert_eq!(
            self.state.drainers(),
            0,
            "a drainer is still counted active"
        );
        assert!(
            self.queue.lock().expect("queue lock").is_empty(),
            "an admitted task was never popped"
        );
    }
}

/// What one drainer did.
#[derive(Debug, Default)]
struct Drained {
    /// Tasks claimed, in order, each with whether it came out abandoned.
    claimed: Vec<(u32, bool)>,
    /// Steps that reported the closed pool idle.
    idle_reports: usize,
    /// With probes: whether the pool read as closed just before the last finishing step.
    closed_before_last_finish: bool,
}

/// `Scheduler::admit` then `Scheduler::enqueue`, with a drainer thread for rayon's spawn.
fn submit(
    pool: &Arc<Pool>,
    task: u32,
    probes: bool,
) -> Result<Option<JoinHandle<Drained>>, Refusal> {
    let (start_drainer, _) = pool.state.try_admit(pool.capacity, pool.threads)?;
    assert!(
        pool.state.drainers() <= pool.threads,
        "more drainers than threads"
    );
    pool.push(task);
    Ok(start_drainer.then(|| {
        let pool = Arc::clone(pool);
        thread::spawn(move || drain(&pool, probes))
    }))
}

/// `Scheduler::drain`'s loop. `probes` adds the reads and counters the close models need.
fn drain(pool: &Pool, probes: bool) -> Drained {
    let mut out = Drained::default();
    let mut finished = false;
    loop {
        let finishing = finished;
        if probes && finishing {
            out.closed_before_last_finish = pool.state.is_closed();
        }
        let (step, _, idle) = pool.state.claim_next(mem::replace(&mut finished, true));
        if probes && finishing {
            pool.finished.fetch_add(1, Ordering::Release);
        }
        out.idle_reports += usize::from(idle);
        let Step::Run { abandoned } = step else {
            return out;
        };
        let task = pool.pop_claimed();
        if probes && !abandoned {
            pool.ran.fetch_add(1, Ordering::Relaxed);
        }
        out.claimed.push((task, abandoned));
    }
}

fn join_all(drainers: impl IntoIterator<Item = JoinHandle<Drained>>) -> Vec<Drained> {
    drainers
        .into_iter()
        .map(|d| d.join().expect("drainer"))
        .collect()
}

fn claimed_tasks(drained: &[Drained]) -> Vec<u32> {
    let mut tasks: Vec<u32> = drained
        .iter()
        .flat_map(|d| d.claimed.iter().map(|&(task, _)| task))
        .collect();
    tasks.sort_unstable();
    tasks
}

fn idle_reports(drained: &[Drained]) -> usize {
    drained.iter().map(|d| d.idle_reports).sum()
}

fn bounded(preemptions: usize) -> Builder {
    let mut builder = Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder
}

/// Two submitters admit and push one task each while the drainers they start claim, pop and
/// run: every task runs exactly once, no more than `threads` drainers are ever counted, and
/// the word ends at zero.
fn admission_and_drain(threads: u64, preemptions: usize) {
    bounded(preemptions).check(move || {
        let pool = Pool::new(2, threads);
        let submitters: Vec<_> = (0..2)
            .map(|task| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || submit(&pool, task, false).expect("room for both"))
            })
            .collect();
        let drainers = submitters
            .into_iter()
            .filter_map(|s| s.join().expect("submitter"));
        let drained = join_all(drainers);
        assert!(!drained.is_empty(), "the first admission starts a drainer");
        assert_eq!(claimed_tasks(&drained), [0, 1], "each task once");
        assert!(drained.iter().flat_map(|d| &d.claimed).all(|&(_, a)| !a));
        assert_eq!(idle_reports(&drained), 0, "an open pool never reports idle");
        pool.assert_settled();
    });
}

#[test]
fn loom_admission_and_drain_one_thread() {
    // Bound 4: main, two submitters and up to two successive drainers (the first may retire
    // before the second admission). About 5 s; bound 5 takes 20 s.
    admission_and_drain(1, 4);
}

#[test]
fn loom_admission_and_drain_two_threads() {
    // Bound 3: five loom threads (main, two submitters, two concurrent drainers). About 15 s;
    // bound 4 takes over two minutes.
    admission_and_drain(2, 3);
}

/// What the closer saw.
struct Closed {
    /// Finishing steps already taken before `close`.
    finished_before: usize,
    /// `in_flight() != 0` right after `close`: shutdown would wait for the idle report.
    busy: bool,
    /// Task bodies visible as run right after that check.
    ran_seen: usize,
}

/// `Scheduler::shutdown` up to its wait: close, then look at what is in flight.
fn close(pool: &Pool) -> Closed {
    let finished_before = pool.finished.load(Ordering::Acquire);
    pool.state.close();
    let busy = pool.state.in_flight() != 0;
    let ran_seen = pool.ran.load(Ordering::Relaxed);
    Closed {
        finished_before,
        busy,
        ran_seen,
    }
}

/// The idle rule, from `claim_next` and `end_unqueued`: a closed pool reports idle once, from
/// the step that takes in flight to zero, so exactly one report when `close` lands while a
/// task is in flight and none when nothing is (never admitted, or finished before the close).
/// The models see that order through probes: a finish that read the pool closed before its
/// step, a closer that saw every finish before closing, and a closer that saw work in flight
/// after closing (shutdown would wait for the report). A closer that saw nothing in flight
/// proceeds to join the threads, so every admitted task's body must be visible to it.
fn assert_idle_rule(
    closer: &Closed,
    began: usize,
    reports: usize,
    closed_before_last_finish: bool,
) {
    assert!(reports <= 1, "idle reported {reports} times");
    if reports == 1 {
        assert!(began > 0, "idle reported with nothing ever in flight");
    }
    if began > 0 && closed_before_last_finish {
        assert_eq!(
            reports, 1,
            "the last finish after close did not report idle"
        );
    }
    if began > 0 && closer.finished_before == began {
        assert_eq!(reports, 0, "idle reported though all finished before close");
    }
    if closer.busy {
        assert_eq!(
            reports, 1,
            "shutdown would wait for a report that never comes"
        );
    } else {
        assert_eq!(
            closer.ran_seen, began,
            "shutdown found nothing in flight before an admitted task had run"
        );
    }
}

#[test]
fn loom_admission_racing_close_runs_or_is_refused() {
    // Exhaustive: three threads and a single task. About 35 s.
    ::loom::model(|| {
        let pool = Pool::new(1, 1);
        let submitter = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || submit(&pool, 0, true))
        };
        let closer = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || close(&pool))
        };
        let admitted = submitter.join().expect("submitter");
        let closer = closer.join().expect("closer");
        let drained = match admitted {
            Ok(drainer) => {
                let drained = join_all(drainer);
                assert_eq!(drained.len(), 1, "the admission starts the only drainer");
                assert_eq!(
                    drained[0].claimed,
                    [(0, false)],
                    "an admitted task runs, even after a plain close"
                );
                drained
            }
            Err(refusal) => {
                assert_eq!(refusal, Refusal::Closed);
                Vec::new()
            }
        };
        let began = drained.len();
        let closed_before = drained.first().is_some_and(|d| d.closed_before_last_finish);
        assert_idle_rule(&closer, began, idle_reports(&drained), closed_before);
        assert!(pool.state.is_closed());
        pool.assert_settled();
    });
}

#[test]
fn loom_abandon_racing_claims_resolves_every_task_once() {
    // Bound 4: main, a drainer, a second submitter, the abandoner and perhaps a second
    // drainer. About 50 s; bound 3 takes 4 s.
    bounded(4).check(|| {
        let pool = Pool::new(2, 1);
        let first = submit(&pool, 0, false)
            .expect("room")
            .expect("the first admission starts a drainer");
        let submitter = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || submit(&pool, 1, false))
        };
        let abandoner = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                pool.state.abandon();
                pool.state.load().queued
            })
        };
        let mut drainers = vec![first];
        let mut admitted = vec![0];
        match submitter.join().expect("submitter") {
            Ok(drainer) => {
                drainers.extend(drainer);
                admitted.push(1);
            }
            Err(refusal) => assert_eq!(refusal, Refusal::Closed),
        }
        let queued_after_abandon = abandoner.join().expect("abandoner");
        let drained = join_all(drainers);
        assert_eq!(claimed_tasks(&drained), admitted, "each admitted task once");
        for d in &drained {
            let flags: Vec<bool> = d.claimed.iter().map(|&(_, a)| a).collect();
            assert!(
                flags.is_sorted(),
                "a task ran after an earlier claim saw the pool abandoned: {flags:?}"
            );
        }
        let abandoned = drained
            .iter()
            .flat_map(|d| &d.claimed)
            .filter(|&&(_, a)| a)
            .count();
        assert!(
            abandoned as u64 >= queued_after_abandon,
            "{queued_after_abandon} queued after abandon, only {abandoned} came out abandoned"
        );
        let reports = idle_reports(&drained);
        assert!(reports <= 1, "idle reported {reports} times");
        if queued_after_abandon > 0 {
            assert_eq!(reports, 1, "tasks in flight at abandon, no idle report");
        }
        pool.assert_settled();
    });
}

#[test]
fn loom_full_queue_room_waiter_is_never_stranded() {
    // Exhaustive: two threads of three steps each.
    ::loom::model(|| {
        let pool = Pool::new(1, 1);
        let (start_drainer, _) = pool.state.try_admit(1, 1).expect("room");
        assert!(start_drainer);
        pool.push(0);
        // The waiter's first attempt, before it registers (`RoomWait::poll`).
        assert_eq!(pool.state.try_admit(1, 1), Err(Refusal::Full));
        let waiter = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                pool.waiters.fetch_add(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                pool.state.try_admit(1, 1)
            })
        };
        let drainer = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let (step, _, _) = pool.state.claim_next(false);
                assert_eq!(step, Step::Run { abandoned: false });
                // `Scheduler::drain` has no fence here: its claim is a SeqCst swap and this
                // load is SeqCst, and in C++20's model (Rust's) a SeqCst fence before the
                // waiter's read of the word orders that fence before the swap whenever the
                // read misses it, so this load then sees the waiter's count. Loom models
                // SeqCst accesses as AcqRel and only SeqCst fences as SeqCst (see its
                // `rt::thread::seq_cst`), and fails the real code; the fence stands in for the
                // swap's SeqCst. The pop that `drain` does before this check synchronizes with
                // the submitter only, so the model leaves it out.
                fence(Ordering::SeqCst);
                pool.waiters.load(Ordering::SeqCst) > 0
            })
        };
        let retried = waiter.join().expect("waiter");
        let notifies = drainer.join().expect("drainer");
        assert!(
            retried.is_ok() || notifies,
            "the waiter missed the freed slot and the drainer did not see it waiting"
        );
        // Finish the work in the main thread so the counts can be reconciled.
        if let Ok((start_drainer, _)) = retried {
            assert!(!start_drainer, "the claiming drainer is still active");
            pool.push(1);
        }
        assert_eq!(pool.pop_claimed(), 0);
        let drained = drain_claimed(&pool);
        let expected: &[u32] = if retried.is_ok() { &[1] } else { &[] };
        assert_eq!(claimed_tasks(&drained), expected);
        assert_eq!(idle_reports(&drained), 0);
        pool.assert_settled();
    });
}

/// Carries on a drainer whose first claim the caller made and popped.
fn drain_claimed(pool: &Pool) -> Vec<Drained> {
    let mut out = Drained::default();
    loop {
        let (step, _, idle) = pool.state.claim_next(true);
        out.idle_reports += usize::from(idle);
        let Step::Run { abandoned } = step else {
            return vec![out];
        };
        out.claimed.push((pool.pop_claimed(), abandoned));
    }
}

#[test]
fn loom_unqueued_tasks_racing_close_report_idle_once() {
    // Bound 3: main, two inline tasks and the closer. About 6 s.
    bounded(3).check(|| {
        let pool = Pool::new(1, 1);
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    if let Err(refusal) = pool.state.begin_unqueued() {
                        assert_eq!(refusal, Refusal::Closed);
                        return None;
                    }
                    pool.ran.fetch_add(1, Ordering::Relaxed);
                    let closed_before = pool.state.is_closed();
                    let idle = pool.state.end_unqueued();
                    if idle {
                        assert_eq!(pool.state.in_flight(), 0, "idle reported too early");
                    }
                    pool.finished.fetch_add(1, Ordering::Release);
                    Some((closed_before, idle))
                })
            })
            .collect();
        let closer = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || close(&pool))
        };
        let ended: Vec<(bool, bool)> = tasks
            .into_iter()
            .filter_map(|t| t.join().expect("task"))
            .collect();
        let closer = closer.join().expect("closer");
        let reports = ended.iter().filter(|&&(_, idle)| idle).count();
        // Each end is a swap on the word: if every one read the pool closed before its own,
        // the close came before the last.
        let all_closed_before = ended.iter().all(|&(closed, _)| closed);
        assert_idle_rule(&closer, ended.len(), reports, all_closed_before);
        assert_eq!(pool.state.in_flight(), 0);
    });
}
