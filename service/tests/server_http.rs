//! The service's router, driven through `tower::ServiceExt::oneshot`: every endpoint and every
//! error status.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use offload_service::{AppState, Config, Deadline, Mode};
use offload_service_support::{PHOTO, Reply, call, get, occupy, post, state};

fn csv_rows() -> String {
    let mut csv = String::from("date,category,region,description,quantity,unit_price\n");
    csv.push_str("2024-01-05,books,eu,\"novel, signed\",2,12.50\n");
    csv.push_str("2024-01-20,games,us,board game,1,40.00\n");
    csv.push_str("2024-02-03,books,us,atlas,3,7.25\n");
    csv
}

/// The thumbnail's size from the `x-width` and `x-height` headers.
fn size(reply: &Reply) -> (u32, u32) {
    let header = |name: &str| reply.headers[name].to_str().unwrap().parse().unwrap();
    (header("x-width"), header("x-height"))
}

/// A short answer that names nothing of the server's insides.
fn assert_no_internals(text: &str) {
    assert!(
        text.len() < 200 && !text.contains(".rs") && !text.contains("panicked"),
        "short, no internals: {text}"
    );
}

#[tokio::test]
async fn smoke() {
    let reply = call(&state(Mode::Offload), get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, b"ok\n");
}

#[tokio::test]
async fn thumbnails_in_every_mode() {
    for mode in [Mode::Offload, Mode::Inline, Mode::Blocking] {
        let s = state(mode);
        let reply = call(&s, post("/thumbnail?w=256&h=256", PHOTO)).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.text());
        assert_eq!(reply.headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(size(&reply), (256, 144));
        assert_eq!(&reply.body[..2], &[0xFF, 0xD8], "a JPEG");
        let reply = call(
            &s,
            post("/thumbnail?w=100&h=100&fit=cover&format=png", PHOTO),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(&reply.body[1..4], b"PNG");
        assert_eq!(size(&reply), (100, 100), "cover fills the box");
        assert_eq!(
            s.pool().metrics().tasks["thumbnail"].run.count,
            2,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn query_aliases_and_defaults_reach_the_task() {
    let s = state(Mode::Offload);
    // `fill` is `exact` (the aspect ratio is not kept), `jpg` is `jpeg`, `webp` is WebP.
    let reply = call(&s, post("/thumbnail?w=90&h=40&fit=fill&format=jpg", PHOTO)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(size(&reply), (90, 40));
    let reply = call(&s, post("/thumbnail?format=webp&q=50", PHOTO)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "image/webp");
    // No query at all: a 256x256 box, `contain`.
    let reply = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(size(&reply), (256, 144));
}

#[tokio::test]
async fn a_bad_query_is_a_400_naming_the_parameter() {
    let s = state(Mode::Offload);
    let cases = [
        ("/thumbnail?w=abc", "w", "invalid digit"),
        ("/thumbnail?h=-3", "h", "invalid digit"),
        ("/thumbnail?q=300", "q", "number too large"),
        ("/thumbnail?fit=sideways", "fit", "`contain`"),
        ("/thumbnail?format=gif", "format", "`webp`"),
        ("/report?period=fortnight", "period", "`week`"),
        ("/report.pdf?top=many", "top", "invalid digit"),
    ];
    for (uri, field, why) in cases {
        let reply = call(&s, post(uri, PHOTO)).await;
        let text = reply.text();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}: {text}");
        assert!(
            text.starts_with(&format!("invalid query: {field}: ")) && text.contains(why),
            "{uri}: {text}"
        );
        assert_no_internals(&text);
    }
    assert_eq!(s.pool().metrics().submitted, 0, "refused before any work");
}

#[tokio::test]
async fn thumbnail_errors_map_to_statuses_without_internals() {
    let s = state(Mode::Offload);
    let cases: [(&str, Vec<u8>, StatusCode); 4] = [
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
        let reply = call(&s, post(uri, body)).await;
        assert_eq!(reply.status, expected, "{uri}: {}", reply.text());
        assert_no_internals(&reply.text());
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let s = AppState::new(Config {
        max_body: 1024,
        ..Config::default()
    })
    .unwrap();
    let reply = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.pool().metrics().submitted, 0, "rejected before any work");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let s = state(Mode::Offload);
    let busy = occupy(s.pool());
    let queued: Vec<_> = (0..4).map(|_| s.pool().try_run(|| ()).unwrap()).collect();
    let reply = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.text(), "overloaded, retry later\n");
    let seconds: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds >= 1, "{seconds}");
    busy.release().await;
    for h in queued {
        h.await.unwrap();
    }
    // Refused from the forecast, before the body was read: never submitted to the pool.
    let m = s.pool().metrics();
    assert_eq!((m.submitted, m.rejected), (5, 0), "{m:?}");
}

/// A task that panics, with a secret in its message.
#[derive(serde::Serialize, serde::Deserialize)]
struct Panics;

impl offload::Task for Panics {
    type Output = u8;
    fn run(self) -> u8 {
        panic!("secret internal detail")
    }
}

#[tokio::test]
async fn a_panicking_task_is_a_500_without_the_message() {
    let s = state(Mode::Offload);
    let err = s.execute(Panics, Deadline(None)).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let response = err.into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"internal error\n");
    assert_eq!(s.pool().run(|| 1).await, Ok(1), "the pool still works");
}

#[tokio::test]
async fn reports_from_csv_and_json_agree() {
    let s = state(Mode::Offload);
    let reply = call(&s, post("/report?period=month&top=5", csv_rows())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let from_csv: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let json_rows = serde_json::json!([
        {"date": "2024-01-05", "category": "books", "region": "eu", "description": "novel, signed", "quantity": 2, "unit_price": "12.50"},
        {"date": "2024-01-20", "category": "games", "region": "us", "description": "board game", "quantity": 1, "unit_price": "40.00"},
        {"date": "2024-02-03", "category": "books", "region": "us", "description": "atlas", "quantity": 3, "unit_price": "7.25"}
    ]);
    let request = Request::post("/report?period=month&top=5")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json_rows.to_string()))
        .unwrap();
    let reply = call(&s, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let from_json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(from_csv, from_json);
    // 2 x 12.50 + 1 x 40.00 + 3 x 7.25 = 86.75 over 3 rows, in cents.
    assert_eq!(from_csv["overall"]["count"], 3);
    assert_eq!(from_csv["overall"]["sum"], 2 * 1250 + 4000 + 3 * 725);
}

#[tokio::test]
async fn report_errors_name_the_row_and_map_to_422() {
    let s = state(Mode::Offload);
    let bad = format!("{}2024-13-40,books,eu,x,1,1.00\n", csv_rows());
    let reply = call(&s, post("/report", bad)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = reply.text();
    assert!(text.contains("row 4") && text.contains("date"), "{text}");
}

#[tokio::test]
async fn report_pdf_is_a_pdf() {
    let s = state(Mode::Offload);
    let reply = call(&s, post("/report.pdf?period=week", csv_rows())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(reply.body.starts_with(b"%PDF-"));
    let m = s.pool().metrics();
    assert_eq!(
        (m.tasks["report"].run.count, m.tasks["pdf_report"].run.count),
        (1, 1)
    );
}

#[tokio::test]
async fn report_json_is_encoded_on_the_pool() {
    let s = state(Mode::Offload);
    let reply = call(&s, post("/report", csv_rows())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let report: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(report["overall"]["count"], 3);
    // One task aggregated and encoded: the JSON was written on a pool thread.
    let m = s.pool().metrics();
    assert_eq!(m.tasks["report_json"].run.count, 1, "{m:?}");
    assert!(!m.tasks.contains_key("report"), "{m:?}");
}
