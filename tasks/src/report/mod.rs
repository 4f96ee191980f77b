//! Transaction reports: exact money aggregation over CSV or JSON rows.
//!
//! A [`ReportTask`] reads rows with the columns `date`, `category`, `region`,
//! `description`, `quantity`, `unit_price` (CSV with a header, in any order, extra columns
//! ignored; or a JSON array of objects with those keys) and returns a [`Report`]:
//! overall count, sum, mean, min and max; per category and per [`Period`] the count, sum,
//! mean, median and p95; and the top N categories by sum.
//!
//! # Definitions
//!
//! - **Amount** of a row = `quantity × unit_price`, in minor units (cents), computed with
//!   checked 64-bit integer arithmetic. `quantity` is a **whole number** (optional sign, up
//!   to 18 digits; negative for returns): decimal quantities are rejected rather than
//!   rounded, so every amount is exact. `unit_price` is a decimal with at most two decimal
//!   places (`12`, `12.5`, `12.50`, `-3.99`); no exponent, no thousands separators. In JSON
//!   both may be numbers or strings and are read from their text, never through `f64`.
//! - **Mean** = sum / count rounded half away from zero to a whole minor unit.
//! - **Median** and **p95** use the nearest-rank method: the `ceil(p × n)`-th smallest
//!   amount, so they are always one of the amounts (the median of an even count is the
//!   lower middle value).
//! - **Dates** are ISO `YYYY-MM-DD`; weeks are ISO 8601 weeks (see [`Period::Week`]).
//! - A sum that does not fit in `i64` minor units is [`ReportError::Overflow`], never a wrap.
//!
//! # Errors and limits
//!
//! A row that does not parse stops the task with [`ReportError::Row`], naming the 1-based
//! data row and the column; with [`OnBadRow::Skip`] it is left out and counted in
//! [`Report::skipped_rows`]. [`Limits`] caps input bytes and rows. No input makes the task
//! panic, and no input takes time or memory beyond what legal input of its size takes: see
//! the budget on [`Limits`].
//!
//! # Parallelism
//!
//! CSV input is cut into ~256 KiB chunks parsed with rayon, so on an `offload` pool the
//! work spreads over the pool's threads (called inline outside a pool, rayon's global pool
//! is used). Results do not depend on the thread count: sums are exact 128-bit integers until
//! the end, so only a final total that does not fit `i64` is an overflow.
//!
//! # Examples
//!
//! ```
//! use offload::Task;
//! use offload_tasks::report::{Money, Period, ReportTask};
//!
//! let csv = "date,category,region,description,quantity,unit_price\n\
//!            2024-03-01,Books,EU,\"novel, paperback\",2,9.99\n\
//!            2024-03-15,Games,EU,board game,1,35.00\n\
//!            2024-04-02,Books,US,atlas,1,20.10\n";
//! let report = ReportTask::from_csv(csv).by(Period::Month).top(1).run()?;
//! assert_eq!(report.overall.sum, Money(7508));
//! assert_eq!(report.periods[0].period, "2024-03");
//! assert_eq!(report.top_categories[0].category, "Books");
//! # Ok::<(), offload_tasks::report::ReportError>(())
//! ```

mod agg;
mod csv;
mod error;
mod json;
mod period;
#[doc(hidden)]
pub mod synth;
mod types;

use std::fmt;

use offload::Task;
use serde::{Deserialize, Serialize};

pub use self::error::{ReportError, RowError, RowErrorKind};
pub use self::types::{
    CategoryStats, GroupStats, Limits, Money, OnBadRow, Period, PeriodStats, Report, Summary,
    TopCategory,
};

/// The rows to aggregate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// CSV (RFC 4180 quoting, `\n` or `\r\n` line ends) with a header row.
    Csv(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A JSON array of objects.
    Json(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Csv(b) => write!(f, "Csv(<{} bytes>)", b.len()),
            Self::Json(b) => write!(f, "Json(<{} bytes>)", b.len()),
        }
    }
}

/// Builds a [`Report`] from transaction rows; the task named `"report"`.
///
/// Run it on a pool with `pool.run(task).await??`, or inline with [`Task::run`] /
/// [`ReportTask::compute`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTask {
    /// The rows.
    pub input: Input,
    /// Bucket of the per-period table. Default: [`Period::Month`].
    pub period: Period,
    /// Length of the top-categories list. Default: 10.
    pub top: usize,
    /// Input limits. Default: [`Limits::default`].
    pub limits: Limits,
    /// Fail on a bad row, or skip and count it. Default: [`OnBadRow::Fail`].
    pub on_bad_row: OnBadRow,
}

impl ReportTask {
    /// A report over CSV bytes with the defaults (monthly, top 10, failing on bad rows).
    pub fn from_csv(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(Input::Csv(bytes.into()))
    }

    /// A report over a JSON array of row objects, with the defaults.
    pub fn from_json(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(Input::Json(bytes.into()))
    }

    fn new(input: Input) -> Self {
        Self {
            input,
            period: Period::Month,
            top: 10,
            limits: Limits::default(),
            on_bad_row: OnBadRow::Fail,
        }
    }

    /// Buckets the per-period table by `period`. Default: [`Period::Month`].
    pub fn by(mut self, period: Period) -> Self {
        self.period = period;
        self
    }

    /// Keeps the `n` categories with the largest sums in the top list. Default: 10.
    pub fn top(mut self, n: usize) -> Self {
        self.top = n;
        self
    }

    /// Sets the input limits. Default: [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Chooses what a bad row does. Default: [`OnBadRow::Fail`].
    pub fn on_bad_row(mut self, policy: OnBadRow) -> Self {
        self.on_bad_row = policy;
        self
    }

    /// Builds the report on the current thread (and rayon's threads for large input).
    ///
    /// # Errors
    ///
    /// [`ReportError`]: a limit is exceeded, the CSV header lacks a needed column, the JSON
    /// is malformed, a row is bad (unless skipped), or a sum overflows.
    pub fn compute(&self) -> Result<Report, ReportError> {
        let opts = self.options();
        self.totals(&opts)?.report(&opts)
    }

    fn options(&self) -> agg::Options {
        agg::Options {
            period: self.period,
            top: self.top,
            limits: self.limits,
            on_bad_row: self.on_bad_row,
        }
    }

    /// Checks the input size, parses it and merges the groups.
    fn totals(&self, opts: &agg::Options) -> Result<agg::Totals, ReportError> {
        let bytes = match &self.input {
            Input::Csv(b) | Input::Json(b) => b,
        };
        if bytes.len() > self.limits.max_input_bytes {
            return Err(ReportError::InputTooLarge {
                size: bytes.len(),
                limit: self.limits.max_input_bytes,
            });
        }
        match &self.input {
            Input::Csv(b) => csv::totals(b, opts),
            Input::Json(b) => json::totals(b, opts),
        }
    }
}

impl Task for ReportTask {
    type Output = Result<Report, ReportError>;

    /// [`ReportTask::compute`], except that the input is freed while the order statistics
    /// are computed: unmapping tens of megabytes takes milliseconds, which a second thread
    /// hides.
    fn run(self) -> Self::Output {
        let opts = self.options();
        let totals = self.totals(&opts)?;
        let input = self.input;
        let (report, ()) = rayon::join(|| totals.report(&opts), move || drop(input));
        report
    }

    fn name(&self) -> &'static str {
        "report"
    }

    /// The input's length in bytes, for a pool's
    /// [`queue_cost_limit`](offload::Builder::queue_cost_limit).
    fn cost(&self) -> u64 {
        match &self.input {
            Input::Csv(bytes) | Input::Json(bytes) => bytes.len() as u64,
        }
    }
}
