//! `Query`: axum's typed query-string extractor with its rejection answered through
//! [`AppError`], so a bad query reads like every other error of the service.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The query string deserialized into `T` (a `#[derive(Deserialize)]` struct); a query that
/// does not fit `T` is a 400 naming the parameter, e.g. `invalid query: w: invalid digit found
/// in string`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let axum::extract::Query(value) =
            axum::extract::Query::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}
