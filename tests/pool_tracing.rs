//! Each task runs in a span under the caller's span; slow tasks log a warning.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload::Pool;
use tracing::Instrument;
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Records each event as `level message [span > parent > ...]` plus span fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let scope: Vec<String> = ctx
            .event_scope(event)
            .map(|s| {
                s.map(|span| {
                    let ext = span.extensions();
                    let f = ext.get::<Fields>().map(|f| f.0.clone()).unwrap_or_default();
                    format!("{}{{{}}}", span.name(), f.trim())
                })
                .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(format!(
            "{}{} in [{}]",
            event.metadata().level(),
            fields.0,
            scope.join(" > ")
        ));
    }
}

/// One global subscriber for this test binary: worker threads only see the global default.
/// Tests share it, so each one looks only at events from its own, uniquely named tasks.
fn capture() -> Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(capture.clone()),
            )
            .unwrap();
            capture
        })
        .clone()
}

#[test]
fn smoke() {
    let capture = capture();
    let pool = Pool::builder().threads(1).build().unwrap();
    let request = tracing::info_span!("request", id = 7);
    support::block_on(
        async {
            pool.run(|| tracing::info!("resizing"))
                .name("resize")
                .await
                .unwrap();
        }
        .instrument(request),
    );
    let events = capture.0.lock().unwrap().clone();
    let line = events
        .iter()
        .find(|e| e.contains("resizing"))
        .unwrap_or_else(|| panic!("no event from inside the task: {events:?}"));
    assert!(
        line.contains("in [offload.task{task=\"resize\" wait_us="),
        "the task's event is inside the task span: {line}"
    );
    assert!(
        line.ends_with("> request{id=7}]"),
        "the task span is a child of the request span: {line}"
    );
}

#[test]
fn slow_tasks_log_a_warning_with_name_and_duration() {
    let capture = capture();
    let pool = Pool::builder()
        .threads(1)
        .slow_task_threshold(Duration::from_millis(50))
        .build()
        .unwrap();
    support::block_on(async {
        pool.run(|| ()).name("quick").await.unwrap();
        pool.run(|| {
            let until = std::time::Instant::now() + Duration::from_millis(120);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
        })
        .name("sluggish")
        .await
        .unwrap();
    });
    let events = capture.0.lock().unwrap().clone();
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.starts_with("WARN") && (e.contains("quick") || e.contains("sluggish")))
        .collect();
    assert_eq!(warnings.len(), 1, "{events:?}");
    let w = warnings[0];
    assert!(w.contains("task=\"sluggish\""), "{w}");
    assert!(w.contains("message=slow task"), "{w}");
    let ms: u64 = w
        .split("run_ms=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(ms >= 120, "{w}");
}
