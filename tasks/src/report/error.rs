//! Errors of the report task.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a [`ReportTask`](super::ReportTask) produced no report.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReportError {
    /// The input is larger than [`Limits::max_input_bytes`](super::Limits::max_input_bytes).
    #[error("input is {size} bytes, over the limit of {limit}")]
    InputTooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The input has more rows than [`Limits::max_rows`](super::Limits::max_rows).
    #[error("input has more than {limit} rows")]
    TooManyRows {
        /// The limit.
        limit: u64,
    },
    /// The CSV header has more columns than the parser accepts (1024). A file with CR-only
    /// line endings reads as one header line and usually ends here: only `\n` and `\r\n`
    /// end a line.
    #[error("csv header has more than {limit} columns (line ends must be \\n or \\r\\n)")]
    TooManyColumns {
        /// The limit.
        limit: usize,
    },
    /// The CSV header lacks a required column (or the input is empty).
    #[error("csv header has no `{0}` column")]
    MissingColumn(String),
    /// The JSON input is not an array of values.
    #[error("invalid json: {0}")]
    Json(String),
    /// A row does not parse (only under [`OnBadRow::Fail`](super::OnBadRow::Fail)).
    #[error(transparent)]
    Row(#[from] RowError),
    /// A sum does not fit in 64 bits of minor units.
    #[error("sum of amounts overflows 64 bits of minor units")]
    Overflow,
}

impl ReportError {
    /// The row error, when this is one.
    pub fn as_row(&self) -> Option<&RowError> {
        match self {
            Self::Row(e) => Some(e),
            _ => None,
        }
    }

    /// Whether a limit from [`Limits`](super::Limits) was hit.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::InputTooLarge { .. } | Self::TooManyRows { .. } | Self::TooManyColumns { .. }
        )
    }
}

/// A row that does not parse: which row, which column, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("row {row}, column `{column}`: {kind}")]
pub struct RowError {
    /// 1-based data row: row 1 is the first record after the CSV header, or the first
    /// element of the JSON array. Blank CSV lines are not counted.
    pub row: u64,
    /// The column's name from the header (`date`, `unit_price`, ...); `*` when the problem is
    /// the record as a whole.
    pub column: String,
    /// What is wrong.
    pub kind: RowErrorKind,
}

/// What is wrong with a field or row.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RowErrorKind {
    /// Not an ISO `YYYY-MM-DD` date of a real day.
    #[error("not a yyyy-mm-dd date")]
    InvalidDate,
    /// The quantity is not a whole number (an optional sign and up to 18 digits).
    #[error("not a whole number")]
    InvalidQuantity,
    /// The price is not a decimal with at most two decimal places.
    #[error("not a decimal with at most two decimal places")]
    InvalidPrice,
    /// `quantity * unit_price` does not fit in 64 bits of minor units.
    #[error("quantity times unit price overflows")]
    AmountOverflow,
    /// The category is not valid UTF-8.
    #[error("not valid utf-8")]
    InvalidUtf8,
    /// The record has fewer fields than the header; `column` is the first missing one.
    #[error("missing field")]
    MissingField,
    /// The record has more fields than the header.
    #[error("more fields than the header")]
    ExtraField,
    /// A quoted field is never closed.
    #[error("unterminated quoted field")]
    UnterminatedQuote,
    /// A `"` appears inside an unquoted field, or text follows a closing quote.
    #[error("misplaced quote")]
    MisplacedQuote,
    /// A JSON element is not an object, or a field has the wrong JSON type.
    #[error("wrong json type")]
    WrongType,
}
