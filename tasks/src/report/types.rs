//! The plain-data types of a report: money, periods, the report itself and its limits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An exact amount of money in minor units (cents): `Money(1234)` is 12.34.
///
/// It serializes as the bare integer of minor units, so no float ever touches an amount.
/// [`Display`](fmt::Display) prints it as a decimal with two places.
///
/// # Examples
///
/// ```
/// use offload_tasks::report::Money;
///
/// assert_eq!(Money(-1205).to_string(), "-12.05");
/// assert_eq!(Money(7).minor_units(), 7);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    /// The amount in minor units (cents).
    pub const fn minor_units(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// The calendar bucket of the per-period table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One bucket per calendar day, labelled `2024-03-05`.
    Day,
    /// One bucket per ISO 8601 week (Monday to Sunday; week 1 holds the year's first
    /// Thursday), labelled `2024-W10`. A week's year is its Thursday's, so 2024-12-30 is in
    /// `2025-W01`.
    Week,
    /// One bucket per calendar month, labelled `2024-03`. The default.
    #[default]
    Month,
}

/// What to do with a row that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// Stop with [`ReportError::Row`](super::ReportError::Row), naming the row and column.
    /// The default.
    #[default]
    Fail,
    /// Leave the row out and count it in [`Report::skipped_rows`].
    Skip,
}

/// Limits a service sets on untrusted input. Going over one is a typed error, never a panic.
///
/// # Memory and time budget
///
/// Parsing is linear in the input whatever its shape, and what it keeps grows only with
/// the rows it aggregates, so hostile input cannot take more than legal input of its size:
///
/// - Each aggregated row keeps its amount twice (8 bytes in its category, 8 in its period)
///   for the medians and p95s: at most 16 bytes x `max_rows` (320 MB at the default),
///   plus one entry per distinct category, period and date.
/// - Each parallel partial keeps a 64 KiB date cache; rayon makes a few per pool thread.
/// - **CSV**: a record never holds more fields than the header, and a header of more than
///   1024 columns is [`ReportError::TooManyColumns`](super::ReportError::TooManyColumns),
///   so text without line breaks (CR-only line ends included) cannot grow the field list;
///   the chunk cutter reads every byte at most twice, so a body without line breaks costs
///   one scan, not one per 256 KiB chunk.
/// - **JSON**: the array is checked and counted in one streaming pass that keeps one
///   offset per 16384 elements and stops at `max_rows`
///   ([`ReportError::TooManyRows`](super::ReportError::TooManyRows)) before reading on;
///   elements are then parsed chunk by chunk in place. A body of bare values costs no
///   memory per element.
///
/// Measured (debug build, `cargo test -p offload-tasks --test hostile_report`): a 32 MB CSV
/// body without a line break fails in 0.7 s with 0.1 MB of heap (before: 71 s, 76 MB); a
/// 28 MB CSV with CR-only line ends fails on its header in 0.2 s (before: 5.6 s, 327 MB);
/// a 2 MB JSON array of bare zeros peaks at 0.1 MB (before: 17 MB, 8 bytes an input byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted input in bytes. Default: 512 MiB.
    pub max_input_bytes: usize,
    /// Largest accepted number of data rows (skipped rows included). Default: 20,000,000.
    pub max_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 512 << 20,
            max_rows: 20_000_000,
        }
    }
}

/// Count, sum, mean and extremes of every amount in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows aggregated (skipped rows excluded).
    pub count: u64,
    /// Exact sum of the amounts.
    pub sum: Money,
    /// `sum / count` rounded half away from zero to a whole minor unit; `None` when empty.
    pub mean: Option<Money>,
    /// Smallest amount; `None` when empty.
    pub min: Option<Money>,
    /// Largest amount; `None` when empty.
    pub max: Option<Money>,
}

/// Statistics of the amounts in one group (a category or a period). Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Rows in the group.
    pub count: u64,
    /// Exact sum of the amounts.
    pub sum: Money,
    /// `sum / count` rounded half away from zero to a whole minor unit.
    pub mean: Money,
    /// Nearest-rank median: the `ceil(n / 2)`-th smallest amount (the lower middle value
    /// when `n` is even). Always one of the amounts, so exact.
    pub median: Money,
    /// Nearest-rank 95th percentile: the `ceil(0.95 * n)`-th smallest amount.
    pub p95: Money,
    /// Smallest amount.
    pub min: Money,
    /// Largest amount.
    pub max: Money,
}

/// One row of the per-category table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryStats {
    /// The category as written in the input (CSV quoting removed).
    pub category: String,
    /// Its statistics.
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// One row of the per-period table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodStats {
    /// `2024-03-05`, `2024-W10` or `2024-03` (see [`Period`]).
    pub period: String,
    /// First day of the period as an ISO date (the Monday of an ISO week).
    pub start: String,
    /// Its statistics.
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// One entry of the top-categories list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopCategory {
    /// The category.
    pub category: String,
    /// Its exact total.
    pub sum: Money,
    /// Its row count.
    pub count: u64,
}

/// The result of a [`ReportTask`](super::ReportTask): plain, deterministic data.
///
/// Ordering is fixed: `categories` by name (byte order), `periods` chronologically,
/// `top_categories` by sum descending with ties broken by name. The same input gives the
/// same report whatever the thread count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The period the `periods` table is bucketed by.
    pub period: Period,
    /// Totals over every aggregated row.
    pub overall: Summary,
    /// One entry per category, sorted by name.
    pub categories: Vec<CategoryStats>,
    /// One entry per non-empty period, oldest first.
    pub periods: Vec<PeriodStats>,
    /// The `top` categories with the largest sums.
    pub top_categories: Vec<TopCategory>,
    /// Rows left out under [`OnBadRow::Skip`]; always 0 under [`OnBadRow::Fail`].
    pub skipped_rows: u64,
}
