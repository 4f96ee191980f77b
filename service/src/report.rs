//! `POST /report` and `POST /report.pdf`: the query string, typed, and the handlers that
//! offload the aggregation and the PDF rendering.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use offload_tasks::pdf::PdfReportTask;
use offload_tasks::report::{Period, Report, ReportTask};
use serde::Deserialize;

use crate::error::AppError;
use crate::extract::Query;
use crate::state::AppState;

/// `?period=&top=`, each optional.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct ReportQuery {
    /// `day`, `week` or `month` (the default).
    period: Period,
    /// How many top categories to list. Default 10.
    top: usize,
}

impl Default for ReportQuery {
    fn default() -> Self {
        ReportQuery {
            period: Period::Month,
            top: 10,
        }
    }
}

/// `POST /report` and `POST /report.pdf`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/report", post(report_json))
        .route("/report.pdf", post(report_pdf))
}

/// Aggregates the posted rows: JSON with `content-type: application/json`, CSV otherwise.
async fn compute(
    state: &AppState,
    query: ReportQuery,
    headers: &HeaderMap,
    rows: Bytes,
) -> Result<Report, AppError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let rows = Vec::from(rows);
    let task = if is_json {
        ReportTask::from_json(rows)
    } else {
        ReportTask::from_csv(rows)
    };
    Ok(state
        .execute(task.by(query.period).top(query.top))
        .await??)
}

/// The report as JSON.
async fn report_json(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    rows: Bytes,
) -> Result<Json<Report>, AppError> {
    Ok(Json(compute(&state, query, &headers, rows).await?))
}

/// The report as a PDF: aggregation and rendering are two tasks, one after the other.
async fn report_pdf(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    rows: Bytes,
) -> Result<Response, AppError> {
    let report = compute(&state, query, &headers, rows).await?;
    let task = PdfReportTask::new("Transactions report", report);
    let pdf = state.execute(task).await??;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf.bytes).into_response())
}
