//! `GET /metrics` through metrics-exporter-prometheus: the service's HTTP series as real
//! Prometheus histograms, and the pool's series.
//!
//! A test binary of its own: the Prometheus recorder is process-wide (see `src/prometheus.rs`),
//! so only the requests made here are counted.
#![allow(clippy::unwrap_used)]

use axum::http::{StatusCode, header};
use offload_service::Mode;
use offload_service_support::{PHOTO, call, get, post, state};

/// The value of the sample line `name_and_labels value`, if there is one.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn smoke() {
    let reply = call(&state(Mode::Offload), get("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[tokio::test]
async fn http_series_render_with_buckets_and_offload_tasks_total_appears() {
    let s = state(Mode::Offload);
    assert_eq!(
        call(&s, post("/thumbnail", PHOTO)).await.status,
        StatusCode::OK
    );
    let bad = call(&s, post("/thumbnail?w=abc", PHOTO)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(&s, get("/no/such/route")).await.status,
        StatusCode::NOT_FOUND
    );
    let text = call(&s, get("/metrics")).await.text();

    // Every sample line is `name{labels} number`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }

    // The counter, by route pattern and status; unknown paths share one label value.
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    for (labels, count) in [
        (r#"route="/thumbnail",status="200""#, 1.0),
        (r#"route="/thumbnail",status="400""#, 1.0),
        (r#"route="unmatched",status="404""#, 1.0),
    ] {
        let name = format!("http_requests_total{{{labels}}}");
        assert_eq!(sample(&text, &name), Some(count), "{name} in\n{text}");
    }

    // The duration is a histogram: cumulative buckets ending in +Inf, then _sum and _count.
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(r#"http_request_duration_seconds_bucket{route="/thumbnail","#))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() >= 10, "{text}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {buckets:?}"
    );
    let route = r#"{route="/thumbnail"}"#;
    assert_eq!(
        sample(
            &text,
            r#"http_request_duration_seconds_bucket{route="/thumbnail",le="+Inf"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("http_request_duration_seconds_count{route}")
        ),
        Some(2.0)
    );
    let sum = sample(&text, &format!("http_request_duration_seconds_sum{route}")).unwrap();
    assert!(sum > 0.0, "{sum}");

    // The pool's own series (offload's `metrics` feature). The pool registers its counters
    // when it is built, so this also checks that the state installs the recorder first: a
    // pool built before it counts into nothing (CI caught that order once).
    assert!(
        text.lines()
            .any(|l| l.starts_with("offload_tasks_total{") && l.contains(r#"outcome="completed""#)),
        "offload_tasks_total{{outcome=\"completed\"}} missing (needs offload's `metrics` feature) in\n{text}"
    );
}
