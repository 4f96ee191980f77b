//! Request deadlines and refusals through the router: `x-request-timeout-ms` can only shorten
//! the server's deadline, a task that cannot finish in time is answered before the pool frees
//! up, and `Retry-After` follows the pool's prediction with jitter.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use offload_service::{Config, Mode, REQUEST_TIMEOUT_HEADER};
use offload_service_support::{PHOTO, Reply, call, get, occupy, post, state, state_with, until};

/// `POST /thumbnail` of the photo with `x-request-timeout-ms: millis`.
fn thumbnail_within(millis: &str) -> Request<Body> {
    Request::post("/thumbnail?w=64&h=64")
        .header(REQUEST_TIMEOUT_HEADER, millis)
        .body(Body::from(PHOTO))
        .unwrap()
}

/// The answer of a request that could not be served in time: a refusal (503, the pool
/// predicted it would not finish) or a deadline that passed while it waited (504).
fn assert_not_in_time(reply: &Reply) {
    match reply.status {
        StatusCode::GATEWAY_TIMEOUT => assert_eq!(reply.text(), "deadline passed\n"),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(reply.text(), "overloaded, retry later\n");
        }
        other => panic!("{other}: {}", reply.text()),
    }
}

#[tokio::test]
async fn smoke() {
    let s = state(Mode::Offload);
    let reply = call(&s, thumbnail_within("30000")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn the_header_shortens_the_deadline_of_a_task_held_behind_a_busy_pool() {
    // The server would wait two minutes; the client asks for 200 ms.
    let s = state_with(Config {
        threads: Some(1),
        queue: Some(4),
        request_timeout: Duration::from_secs(120),
        ..Config::default()
    });
    let busy = occupy(s.pool());
    // Answered while the pool's only thread is still held, so within the client's deadline
    // and not the server's (the test's patience is far shorter than two minutes).
    let reply = call(&s, thumbnail_within("200")).await;
    assert_not_in_time(&reply);
    busy.release().await;
    // The timed-out task leaves the queue when a worker reaches it, without running.
    until(|| s.pool().metrics().is_settled()).await;
    let m = s.pool().metrics();
    assert!(!m.tasks.contains_key("thumbnail"), "never ran: {m:?}");
    assert_eq!(m.timed_out + m.rejected, 1, "{m:?}");
}

#[tokio::test]
async fn the_header_cannot_lengthen_the_deadline() {
    let s = state_with(Config {
        threads: Some(1),
        queue: Some(4),
        request_timeout: Duration::from_millis(200),
        ..Config::default()
    });
    let busy = occupy(s.pool());
    let reply = call(&s, thumbnail_within("600000")).await;
    assert_not_in_time(&reply);
    busy.release().await;
}

#[tokio::test]
async fn a_malformed_header_is_a_400() {
    let s = state(Mode::Offload);
    for bad in ["soon", "-5", "1.5", ""] {
        let reply = call(&s, thumbnail_within(bad)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(reply.text().starts_with("invalid x-request-timeout-ms"));
    }
    assert_eq!(s.pool().metrics().submitted, 0);
}

#[tokio::test]
async fn without_deadlines_a_request_waits_for_its_task() {
    let s = state_with(Config {
        threads: Some(1),
        queue: Some(4),
        request_timeout: Duration::from_millis(1),
        deadlines: false,
        ..Config::default()
    });
    let reply = call(&s, thumbnail_within("1")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn retry_after_is_the_predicted_drain_time_with_jitter() {
    let s = state(Mode::Offload);
    // Teach the pool a run time, so the prediction is not its one-second default.
    for _ in 0..4 {
        s.pool()
            .run(|| std::thread::sleep(Duration::from_millis(20)))
            .await
            .unwrap();
    }
    let busy = occupy(s.pool());
    let queued: Vec<_> = (0..4).map(|_| s.pool().try_run(|| ()).unwrap()).collect();
    // Nothing finishes while the pool is held, so the prediction stays put.
    let predicted = s.pool().retry_after();
    assert!(predicted < Duration::from_secs(1), "{predicted:?}");

    let mut seconds = BTreeSet::new();
    let mut millis = BTreeSet::new();
    for _ in 0..40 {
        let reply = call(&s, post("/thumbnail", PHOTO)).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        let value = |name: &str| -> u64 { reply.headers[name].to_str().unwrap().parse().unwrap() };
        let (secs, ms) = (
            value(header::RETRY_AFTER.as_str()),
            value("x-retry-after-ms"),
        );
        // The prediction plus a jitter of up to the prediction plus two seconds.
        let floor = u64::try_from(predicted.as_millis()).unwrap();
        assert!(
            ms >= floor && ms <= 2 * floor + 2_000,
            "{ms} ms for {predicted:?}"
        );
        // Whole seconds, rounded up, at least one.
        assert!(secs >= 1 && secs * 1_000 >= ms && (secs - 1) * 1_000 <= ms);
        seconds.insert(secs);
        millis.insert(ms);
    }
    assert!(seconds.len() >= 2, "Retry-After never varies: {seconds:?}");
    assert!(
        millis.len() >= 30,
        "x-retry-after-ms barely varies: {millis:?}"
    );

    busy.release().await;
    for h in queued {
        h.await.unwrap();
    }
    let reply = call(&s, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
}
