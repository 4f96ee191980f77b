//! The example service, driven through `tower::ServiceExt::oneshot`: every endpoint and every
//! error status.
#![allow(clippy::unwrap_used)]

#[path = "../examples/server/app.rs"]
mod app;
mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

const PHOTO: &[u8] = include_bytes!("fixtures/images/seeding_1200x675.jpg");

fn state(mode: app::Mode) -> app::AppState {
    app::AppState::new(app::Config {
        mode,
        threads: Some(1),
        queue: Some(4),
        ..app::Config::default()
    })
    .unwrap()
}

async fn call(
    state: &app::AppState,
    request: Request<Body>,
) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let response = app::app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).body(body.into()).unwrap()
}

fn csv_rows() -> String {
    let mut csv = String::from("date,category,region,description,quantity,unit_price\n");
    csv.push_str("2024-01-05,books,eu,\"novel, signed\",2,12.50\n");
    csv.push_str("2024-01-20,games,us,board game,1,40.00\n");
    csv.push_str("2024-02-03,books,us,atlas,3,7.25\n");
    csv
}

#[tokio::test]
async fn smoke() {
    let (status, _, body) = call(
        &state(app::Mode::Offload),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"ok\n");
}

#[tokio::test]
async fn thumbnails_in_every_mode() {
    for mode in [app::Mode::Offload, app::Mode::Inline, app::Mode::Blocking] {
        let s = state(mode);
        let (status, headers, body) = call(&s, post("/thumbnail?w=256&h=256", PHOTO)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{mode:?}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(
            (&headers["x-width"], &headers["x-height"]),
            (&"256".parse().unwrap(), &"144".parse().unwrap())
        );
        assert_eq!(&body[..2], &[0xFF, 0xD8], "a JPEG");
        let (status, headers, body) = call(
            &s,
            post("/thumbnail?w=100&h=100&fit=cover&format=png", PHOTO),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(&body[1..4], b"PNG");
        assert_eq!(s.pool.metrics().tasks["thumbnail"].run.count, 2, "{mode:?}");
    }
}

#[tokio::test]
async fn thumbnail_errors_map_to_statuses_without_internals() {
    let s = state(app::Mode::Offload);
    let cases: [(&str, Vec<u8>, StatusCode); 6] = [
        ("/thumbnail?w=abc", PHOTO.to_vec(), StatusCode::BAD_REQUEST),
        (
            "/thumbnail?fit=sideways",
            PHOTO.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/thumbnail?w=0&h=10",
            PHOTO.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("/thumbnail?q=101", PHOTO.to_vec(), StatusCode::BAD_REQUEST),
        (
            "/thumbnail",
            b"just some text, no image".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "/thumbnail",
            PHOTO[..PHOTO.len() / 3].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (uri, body, expected) in cases {
        let (status, _, text) = call(&s, post(uri, body)).await;
        let text = String::from_utf8(text).unwrap();
        assert_eq!(status, expected, "{uri}: {text}");
        assert!(
            text.len() < 200 && !text.contains(".rs"),
            "short, no internals: {text}"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let s = app::AppState::new(app::Config {
        max_body: 1024,
        ..app::Config::default()
    })
    .unwrap();
    let (status, _, _) = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.pool.metrics().submitted, 0, "rejected before any work");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let s = state(app::Mode::Offload);
    let busy = support::occupy(&s.pool);
    let queued: Vec<_> = (0..4).map(|_| s.pool.try_run(|| ()).unwrap()).collect();
    let (status, headers, _) = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    busy.release().await;
    for h in queued {
        h.await.unwrap();
    }
    assert_eq!(s.pool.metrics().rejected, 1);
}

#[tokio::test]
async fn a_panicking_task_is_a_500_without_the_message() {
    use axum::response::IntoResponse;
    let s = state(app::Mode::Offload);
    let err = app::execute(&s, || -> u8 { panic!("secret internal detail") })
        .await
        .unwrap_err();
    let response = err.into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"internal error\n");
    assert_eq!(s.pool.run(|| 1).await, Ok(1), "the pool still works");
}

#[tokio::test]
async fn reports_from_csv_and_json_agree() {
    let s = state(app::Mode::Offload);
    let (status, _, body) = call(&s, post("/report?period=month&top=5", csv_rows())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let from_csv: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let json_rows = serde_json::json!([
        {"date": "2024-01-05", "category": "books", "region": "eu", "description": "novel, signed", "quantity": 2, "unit_price": "12.50"},
        {"date": "2024-01-20", "category": "games", "region": "us", "description": "board game", "quantity": 1, "unit_price": "40.00"},
        {"date": "2024-02-03", "category": "books", "region": "us", "description": "atlas", "quantity": 3, "unit_price": "7.25"}
    ]);
    let request = Request::post("/report?period=month&top=5")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json_rows.to_string()))
        .unwrap();
    let (status, _, body) = call(&s, request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let from_json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(from_csv, from_json);
    // 2 x 12.50 + 1 x 40.00 + 3 x 7.25 = 86.75 over 3 rows, in cents.
    assert_eq!(from_csv["overall"]["count"], 3);
    assert_eq!(from_csv["overall"]["sum"], 2 * 1250 + 4000 + 3 * 725);
}

#[tokio::test]
async fn report_errors_name_the_row_and_map_to_422_or_400() {
    let s = state(app::Mode::Offload);
    let bad = format!("{}2024-13-40,books,eu,x,1,1.00\n", csv_rows());
    let (status, _, body) = call(&s, post("/report", bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("row 4") && text.contains("date"), "{text}");
    let (status, _, _) = call(&s, post("/report?period=fortnight", csv_rows())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn report_pdf_is_a_pdf() {
    let s = state(app::Mode::Offload);
    let (status, headers, body) = call(&s, post("/report.pdf", csv_rows())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
    assert!(body.starts_with(b"%PDF-"));
    let m = s.pool.metrics();
    assert_eq!(
        (m.tasks["report"].run.count, m.tasks["pdf_report"].run.count),
        (1, 1)
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = state(app::Mode::Offload);
    let (status, _, _) = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(status, StatusCode::OK);
    s.pool.monitor_reactor();
    support::until(|| s.pool.metrics().reactor_lag.unwrap().count > 0).await;
    let (status, headers, body) =
        call(&s, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "offload_tasks_submitted_total{mode=\"offload\"} 1",
        "offload_tasks_completed_total{mode=\"offload\"} 1",
        "offload_queue_depth{mode=\"offload\"} 0",
        "offload_task_run_seconds_count{mode=\"offload\",task=\"thumbnail\"} 1",
        "offload_task_wait_seconds{mode=\"offload\",task=\"thumbnail\",quantile=\"0.99\"}",
        "offload_reactor_lag_seconds{mode=\"offload\",quantile=\"0.99\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // Every sample line is `name{labels} number`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
