//! `POST /report` and `POST /report.pdf`: the query string, typed, and the handlers that
//! offload the aggregation, the JSON encoding and the PDF rendering.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use offload::Task;
use offload_tasks::pdf::PdfReportTask;
use offload_tasks::report::{Period, ReportError, ReportTask};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::extract::Query;
use crate::guard::Deadline;
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

/// The aggregation the posted rows ask for: JSON rows with `content-type: application/json`,
/// CSV otherwise.
fn report_task(query: ReportQuery, headers: &HeaderMap, rows: Bytes) -> ReportTask {
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
    task.by(query.period).top(query.top)
}

/// A report aggregated and encoded as JSON in one task: a report with a million categories
/// is about 130 MB of JSON, which must not be written on the reactor thread.
#[derive(Debug, Serialize, Deserialize)]
struct ReportJson(ReportTask);

/// Why [`ReportJson`] produced no JSON.
#[derive(Debug, Serialize, Deserialize)]
enum ReportJsonError {
    /// The rows did not aggregate.
    Report(ReportError),
    /// serde_json refused the report (not expected of its plain fields).
    Encode(String),
}

impl Task for ReportJson {
    type Output = Result<Vec<u8>, ReportJsonError>;

    fn run(self) -> Self::Output {
        let report = self.0.run().map_err(ReportJsonError::Report)?;
        serde_json::to_vec(&report).map_err(|e| ReportJsonError::Encode(e.to_string()))
    }

    fn name(&self) -> &'static str {
        "report_json"
    }
}

impl From<ReportJsonError> for AppError {
    fn from(e: ReportJsonError) -> AppError {
        match e {
            ReportJsonError::Report(e) => e.into(),
            ReportJsonError::Encode(cause) => AppError::internal("report encoding failed", &cause),
        }
    }
}

/// The report as JSON, aggregated and encoded on the pool.
async fn report_json(
    State(state): State<AppState>,
    deadline: Deadline,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    rows: Bytes,
) -> Result<Response, AppError> {
    let task = ReportJson(report_task(query, &headers, rows));
    let json = state.execute(task, deadline).await??;
    let content_type = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, content_type)], json).into_response())
}

/// The report as a PDF: aggregation and rendering are two tasks, one after the other, under
/// one deadline.
async fn report_pdf(
    State(state): State<AppState>,
    deadline: Deadline,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    rows: Bytes,
) -> Result<Response, AppError> {
    let report = state
        .execute(report_task(query, &headers, rows), deadline)
        .await??;
    let task = PdfReportTask::new("Transactions report", report);
    let pdf = state.execute(task, deadline).await??;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf.bytes).into_response())
}
