//! Trace context: the caller's current span goes with the job, and the worker records it on
//! the job's `offload_job` span; an explicit `FleetRun::trace` wins.
#![allow(clippy::unwrap_used)]

mod support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use offload::{RunOptions, Runner};
use offload_test_redis::RedisServer;
use support::Echo;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that keeps every span's name and its `trace` field, and tracks the current
/// span per thread (what `Span::current` asks for).
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, (&'static Metadata<'static>, String)>>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct TraceField<'a>(&'a mut String);

impl Visit for TraceField<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "trace" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut trace = String::new();
        span.record(&mut TraceField(&mut trace));
        self.spans
            .lock()
            .unwrap()
            .insert(id, (span.metadata(), trace));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &Id) {
        ENTERED.with(|e| e.borrow_mut().pop());
    }
    fn current_span(&self) -> tracing_core::span::Current {
        let top = ENTERED.with(|e| e.borrow().last().copied());
        let spans = self.spans.lock().unwrap();
        match top.and_then(|id| spans.get(&id).map(|(meta, _)| (id, *meta))) {
            Some((id, meta)) => tracing_core::span::Current::new(Id::from_u64(id), meta),
            None => tracing_core::span::Current::none(),
        }
    }
}

static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();

fn recorder() -> &'static Recorder {
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::default());
        tracing::subscriber::set_global_default(RecorderRef(recorder)).expect("first subscriber");
        recorder
    })
}

/// The global subscriber, borrowing the leaked recorder the test reads.
struct RecorderRef(&'static Recorder);

impl Subscriber for RecorderRef {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.0.new_span(span)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        self.0.record(id, values);
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.0.record_follows_from(span, follows);
    }
    fn event(&self, event: &Event<'_>) {
        self.0.event(event);
    }
    fn enter(&self, span: &Id) {
        self.0.enter(span);
    }
    fn exit(&self, span: &Id) {
        self.0.exit(span);
    }
    fn current_span(&self) -> tracing_core::span::Current {
        self.0.current_span()
    }
}

/// The `trace` fields of the `offload_job` spans recorded so far.
fn job_traces() -> Vec<String> {
    let spans = recorder().spans.lock().unwrap();
    let mut traces: Vec<(u64, String)> = spans
        .iter()
        .filter(|(_, (meta, _))| meta.name() == "offload_job")
        .map(|(id, (_, trace))| (*id, trace.clone()))
        .collect();
    traces.sort();
    traces.into_iter().map(|(_, t)| t).collect()
}

#[tokio::test]
async fn smoke() {
    recorder();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let pid = std::process::id();

    // `Fleet::run` made inside the caller's span; awaited outside it.
    let handler = tracing::info_span!("handler");
    let id = handler.id().expect("recorded").into_u64();
    let call = {
        let _entered = handler.enter();
        fleet.run(Echo(1))
    };
    assert_eq!(call.await, Ok(1));
    // Through the `Runner` trait, from another span.
    let other = tracing::info_span!("other_handler");
    let other_id = other.id().expect("recorded").into_u64();
    let call = {
        let _entered = other.enter();
        fleet.run_with(Echo(2), RunOptions::new())
    };
    assert_eq!(call.await, Ok(2));
    // An explicit context wins; outside any span nothing is carried.
    let call = {
        let _entered = handler.enter();
        fleet
            .run(Echo(3))
            .trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    };
    assert_eq!(call.await, Ok(3));
    assert_eq!(fleet.run(Echo(4)).await, Ok(4));

    assert_eq!(
        job_traces(),
        [
            format!("handler@{pid}:{id}"),
            format!("other_handler@{pid}:{other_id}"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            String::new(),
        ]
    );
    worker.stop().await;
}
