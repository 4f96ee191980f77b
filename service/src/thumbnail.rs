//! `POST /thumbnail`: the query string, typed, and the handler that offloads the resize.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use offload_tasks::thumbnail::{Fit, Format, Thumbnail};
use serde::Deserialize;

use crate::error::AppError;
use crate::extract::Query;
use crate::guard::{Deadline, Upload};
use crate::state::AppState;

/// `?w=&h=&fit=&format=&q=`, each optional.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct ThumbnailQuery {
    /// Box width. Default 256.
    w: u32,
    /// Box height. Default 256.
    h: u32,
    /// `contain` (also `inside`, `fit`; the default), `cover`, or `exact` (also `fill`).
    #[serde(with = "FitParam")]
    fit: Fit,
    /// `jpeg` (also `jpg`; the default), `png` or `webp`.
    #[serde(with = "FormatParam")]
    format: Format,
    /// JPEG and WebP quality, 1 to 100 (the task checks the range). Default 80.
    q: u8,
}

impl Default for ThumbnailQuery {
    fn default() -> Self {
        ThumbnailQuery {
            w: 256,
            h: 256,
            fit: Fit::Inside,
            format: Format::Jpeg,
            q: 80,
        }
    }
}

// The service's names for `Fit` and `Format` values. `offload_tasks` derives `Deserialize`
// with the Rust variant names (`Inside`, `WebP`); a query string keeps the lowercase names
// (and CSS-like aliases) it has always accepted. Remote derives: serde builds the tasks' own
// enums, and a variant added there without a name here fails to compile.
#[derive(Deserialize)]
#[serde(remote = "Fit", rename_all = "lowercase")]
enum FitParam {
    #[serde(rename = "contain", alias = "inside", alias = "fit")]
    Inside,
    Cover,
    #[serde(alias = "fill")]
    Exact,
}

#[derive(Deserialize)]
#[serde(remote = "Format", rename_all = "lowercase")]
enum FormatParam {
    #[serde(alias = "jpg")]
    Jpeg,
    Png,
    WebP,
}

impl ThumbnailQuery {
    fn into_task(self, image: Vec<u8>) -> Thumbnail {
        Thumbnail::fit(image, self.w, self.h)
            .fit_mode(self.fit)
            .format(self.format)
            .quality(self.q)
    }
}

/// The name of the task this route runs ([`Thumbnail`]'s `Task::name`), for the admission
/// check made before the upload is read.
const TASK: &str = "thumbnail";

/// `POST /thumbnail`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/thumbnail", post(thumbnail))
}

/// The thumbnail as the response body, its media type and its size (`x-width`,
/// `x-height`) in the headers; with the cache on, `x-cache`, `ETag` and `Cache-Control`
/// too, or a bare 304 when `If-None-Match` already holds the result's key. An overloaded
/// pool refuses before the upload is read.
async fn thumbnail(
    State(state): State<AppState>,
    deadline: Deadline,
    Query(query): Query<ThumbnailQuery>,
    request: HeaderMap,
    upload: Upload,
) -> Result<Response, AppError> {
    let image = upload.admit(&state, TASK, deadline).await?;
    let task = query.into_task(image);
    let served = state.execute_cached(task, deadline, &request).await?;
    served.respond(|thumb| {
        let thumb = thumb?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(thumb.format.mime_type()),
        );
        for (name, value) in [("x-width", thumb.width), ("x-height", thumb.height)] {
            headers.insert(name, HeaderValue::from(value));
        }
        Ok((headers, thumb.bytes).into_response())
    })
}

#[cfg(test)]
mod tests {
    use offload::Task as _;

    use super::*;

    #[test]
    fn the_admission_check_names_the_task_the_route_runs() {
        assert_eq!(ThumbnailQuery::default().into_task(Vec::new()).name(), TASK);
    }
}
