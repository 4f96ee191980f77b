//! `POST /report` and `POST /report.pdf`: the query string, typed, and the handlers that
//! offload the aggregation, the JSON encoding and the PDF rendering.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use offload::Task;
use offload_cache::{Cacheable, Keep, KeyWriter};
use offload_tasks::pdf::PdfReportTask;
use offload_tasks::report::{Period, ReportError, ReportTask};
use serde::{Deserialize, Serialize};

use crate::cache::Served;
use crate::error::AppError;
use crate::extract::Query;
use crate::guard::{Deadline, Upload};
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

/// [`ReportTask`]'s `Task::name`: the first task of `/report.pdf` (and of `/report` on a
/// fleet), for the admission check made before the rows are read.
const REPORT: &str = "report";
/// [`ReportJson`]'s `Task::name`: `/report`'s task on a local backend.
const REPORT_JSON: &str = "report_json";

/// `POST /report` and `POST /report.pdf`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/report", post(report_json))
        .route("/report.pdf", post(report_pdf))
}

/// The aggregation the posted rows ask for: JSON rows with `content-type: application/json`,
/// CSV otherwise.
fn report_task(query: ReportQuery, headers: &HeaderMap, rows: Vec<u8>) -> ReportTask {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
        REPORT_JSON
    }

    /// The rows' length in bytes, as the aggregation's.
    fn cost(&self) -> u64 {
        self.0.cost()
    }
}

/// The key of the report it encodes (under its own task name, `report_json`). An aggregation
/// error follows from the input and is kept as a refusal; an encoding failure is not kept.
impl Cacheable for ReportJson {
    fn write_key(&self, key: &mut KeyWriter) {
        self.0.write_key(key);
    }

    fn keep(output: &Self::Output) -> Keep {
        Keep::result(output, |e| matches!(e, ReportJsonError::Report(_)))
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

/// The report as JSON, aggregated and encoded on the pool; with the cache on, identical
/// uploads are served from it (`x-cache`, `ETag`, 304 on `If-None-Match`).
///
/// On a fleet the workers serve the built-in tasks only (`report`, not this service's
/// `report_json`): the report is aggregated there and encoded here on tokio's blocking pool,
/// still off the reactor.
async fn report_json(
    State(state): State<AppState>,
    deadline: Deadline,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    upload: Upload,
) -> Result<Response, AppError> {
    let first = if state.fleet().is_none() {
        REPORT_JSON
    } else {
        REPORT
    };
    let rows = upload.admit(&state, first, deadline).await?;
    let task = report_task(query, &headers, rows);
    if state.fleet().is_none() {
        let served = state
            .execute_cached(ReportJson(task), deadline, &headers)
            .await?;
        return served.respond(|json| Ok(json_response(json?)));
    }
    let (report, tag) = match state.execute_cached(task, deadline, &headers).await? {
        Served::NotModified(response) => return Ok(response),
        Served::Fresh(report, tag) => (report?, tag),
    };
    let json = tokio::task::spawn_blocking(move || serde_json::to_vec(&report))
        .await
        .map_err(|e| AppError::internal("report encoding failed", &e))?
        .map_err(|e| AppError::internal("report encoding failed", &e))?;
    Ok(tag.decorate(json_response(json)))
}

fn json_response(json: Vec<u8>) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, content_type)], json).into_response()
}

/// The report as a PDF: aggregation and rendering are two tasks, one after the other, under
/// one deadline, each through the cache when it is on. The PDF's key covers the report and
/// the title (not the generation time), so an `If-None-Match` is answered 304 once the
/// aggregation is known, without rendering.
async fn report_pdf(
    State(state): State<AppState>,
    deadline: Deadline,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    upload: Upload,
) -> Result<Response, AppError> {
    let rows = upload.admit(&state, REPORT, deadline).await?;
    let aggregate = report_task(query, &headers, rows);
    // The aggregation's own validators are not the client's: it only ever saw the PDF's.
    let report = state.cached(aggregate, deadline).await?.0?;
    let task = PdfReportTask::new("Transactions report", report);
    let served = state.execute_cached(task, deadline, &headers).await?;
    served.respond(|pdf| {
        let pdf = pdf?;
        Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf.bytes).into_response())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admission_checks_name_the_tasks_the_routes_run() {
        let task = || report_task(ReportQuery::default(), &HeaderMap::new(), b"x".to_vec());
        assert_eq!(task().name(), REPORT);
        assert_eq!(ReportJson(task()).name(), REPORT_JSON);
        assert_eq!(ReportJson(task()).cost(), task().cost());
    }
}
