//! PDF reports: a [`Report`] (and optional tables of rows) rendered with printpdf.
//!
//! The document has a title, the generation time, a summary block, a bar chart of the top
//! categories drawn with vector shapes (at most [`MAX_BARS`]), the per-category and per-period tables, then any
//! extra [`Table`]s. Tables flow over as many A4 pages as they need with their header row
//! repeated on every page, and every page carries a "Page i of n" footer.
//!
//! # Fonts and text
//!
//! Only the built-in Helvetica is used, so no font files are needed or embedded. Helvetica
//! is shown through WinAnsi (Windows-1252): Latin-1 letters, `€`, typographic quotes and
//! dashes work; CJK, emoji and other scripts do not. Such characters are never dropped
//! silently: by default each is written as its code point (`<U+4E2D>`) and counted in
//! [`RenderedPdf::replaced_chars`]; [`Unencodable`] chooses `?` instead or an error.
//! Control characters (newlines, tabs) become spaces. `(`, `)` and `\` in data are safe:
//! such strings are written as hex strings. Text too wide for its cell is cut with `...`.
//!
//! # Determinism
//!
//! The generation time is a field ([`PdfReportTask::generated_at`], seconds since the Unix
//! epoch, UTC); with it fixed, the same input gives byte-identical output.
//!
//! # Examples
//!
//! ```
//! use offload::Task;
//! use offload_tasks::pdf::{Column, PdfReportTask, Table};
//! use offload_tasks::report::ReportTask;
//!
//! let csv = "date,category,region,description,quantity,unit_price\n\
//!            2024-03-01,Books,EU,novel,2,9.99\n";
//! let report = ReportTask::from_csv(csv).run()?;
//! let table = Table::new("Rows", vec![Column::left("Category"), Column::right("Amount")])
//!     .row(["Books", "19.98"]);
//! let pdf = PdfReportTask::new("March sales", report)
//!     .generated_at(1_700_000_000)
//!     .table(table)
//!     .run()?;
//! assert!(pdf.bytes.starts_with(b"%PDF"));
//! assert_eq!(pdf.pages, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod layout;
#[doc(hidden)]
pub mod synth;
mod text;

use offload::Task;
use printpdf::{Mm, PdfDocument, PdfPage, PdfSaveOptions};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use self::layout::{Align, ColumnSpec, Flow, PAGE_H, PAGE_W};
use self::text::sanitize;
use crate::calendar;
use crate::report::{Money, Period, Report};

/// Most bars the chart draws (the first [`Report::top_categories`]); more would not fit on a
/// page.
pub const MAX_BARS: usize = 30;

/// What to do with text that Helvetica's WinAnsi encoding cannot show (CJK, emoji, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unencodable {
    /// Write each such character as its code point, `<U+4E2D>`, and count it. The default.
    #[default]
    Codepoint,
    /// Write `?` for each such character, and count it.
    Replace,
    /// Fail with [`PdfError::Unencodable`].
    Fail,
}

/// A table column: its header text, alignment and relative width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Header text.
    pub name: String,
    /// Right-aligned (numbers) rather than left-aligned.
    pub right: bool,
    /// Share of the table width relative to the other columns. Default: 1.
    pub weight: f32,
}

impl Column {
    /// A left-aligned column of weight 1.
    pub fn left(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            right: false,
            weight: 1.0,
        }
    }

    /// A right-aligned column of weight 1, for numbers.
    pub fn right(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            right: true,
            weight: 1.0,
        }
    }

    /// Sets the relative width.
    pub fn weight(mut self, weight: f32) -> Self {
        self.weight = weight;
        self
    }
}

/// A table of text rows rendered after the report's own tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Heading above the table.
    pub title: String,
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows; each must have one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            title: title.into(),
            columns,
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row<S: Into<String>>(mut self, cells: impl IntoIterator<Item = S>) -> Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }
}

/// The rendered document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedPdf {
    /// The PDF file.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// Its page count.
    pub pages: u32,
    /// Characters replaced under [`Unencodable::Codepoint`] or [`Unencodable::Replace`].
    pub replaced_chars: u64,
}

/// Why no PDF was produced.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PdfError {
    /// Text holds a character Helvetica cannot show, under [`Unencodable::Fail`].
    #[error("character {character:?} cannot be shown in helvetica (in {text:?})")]
    Unencodable {
        /// The character.
        character: char,
        /// The start of the text holding it.
        text: String,
    },
    /// More table rows (report tables included) than [`PdfReportTask::max_rows`].
    #[error("{rows} table rows, over the limit of {limit}")]
    TooManyRows {
        /// Rows asked for.
        rows: usize,
        /// The limit.
        limit: usize,
    },
    /// Writing the document failed (not expected when writing to memory).
    #[error("writing the pdf failed: {0}")]
    Write(String),
    /// A row of an extra table has the wrong number of cells.
    #[error("table {table:?}, row {row}: {cells} cells for {columns} columns")]
    RaggedRow {
        /// The table's title.
        table: String,
        /// 1-based row.
        row: usize,
        /// Cells in the row.
        cells: usize,
        /// Columns in the table.
        columns: usize,
    },
}

/// Renders a [`Report`] into a PDF; the task named `"pdf_report"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdfReportTask {
    /// Document title, on the first page and in the metadata.
    pub title: String,
    /// Generation time printed under the title and stored as the creation date, in seconds
    /// since the Unix epoch (UTC). [`PdfReportTask::new`] sets the current time.
    pub generated_at: i64,
    /// The report to render.
    pub report: Report,
    /// Extra tables after the report's own.
    pub tables: Vec<Table>,
    /// Policy for text Helvetica cannot show. Default: [`Unencodable::Codepoint`].
    pub unencodable: Unencodable,
    /// Compress the page streams with zlib (about 5x smaller, roughly half the render
    /// time). Default: true.
    pub compress: bool,
    /// Largest total number of table rows (report tables included). Default: 200,000.
    pub max_rows: usize,
}

impl PdfReportTask {
    /// A task rendering `report` under `title`, stamped with the current time.
    pub fn new(title: impl Into<String>, report: Report) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Self {
            title: title.into(),
            generated_at: now,
            report,
            tables: Vec::new(),
            unencodable: Unencodable::Codepoint,
            compress: true,
            max_rows: 200_000,
        }
    }

    /// Sets the generation time (seconds since the Unix epoch, UTC).
    pub fn generated_at(mut self, unix_seconds: i64) -> Self {
        self.generated_at = unix_seconds;
        self
    }

    /// Appends a table after the report's tables.
    pub fn table(mut self, table: Table) -> Self {
        self.tables.push(table);
        self
    }

    /// Sets the policy for text Helvetica cannot show.
    pub fn unencodable(mut self, policy: Unencodable) -> Self {
        self.unencodable = policy;
        self
    }

    /// Turns stream compression on or off.
    pub fn compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Renders the document on the current thread.
    ///
    /// # Errors
    ///
    /// [`PdfError`]: too many rows, a ragged extra-table row, or unencodable text under
    /// [`Unencodable::Fail`].
    pub fn render(&self) -> Result<RenderedPdf, PdfError> {
        let r = &self.report;
        let rows = r.categories.len()
            + r.periods.len()
            + self.tables.iter().map(|t| t.rows.len()).sum::<usize>();
        if rows > self.max_rows {
            return Err(PdfError::TooManyRows {
                rows,
                limit: self.max_rows,
            });
        }
        for t in &self.tables {
            if let Some((i, row)) = t
                .rows
                .iter()
                .enumerate()
                .find(|(_, row)| row.len() != t.columns.len())
            {
                return Err(PdfError::RaggedRow {
                    table: t.title.clone(),
                    row: i + 1,
                    cells: row.len(),
                    columns: t.columns.len(),
                });
            }
        }
        let policy = self.unencodable;
        let mut replaced = 0u64;
        let mut clean = |s: &str| sanitize(s, policy, &mut replaced);

        let title = clean(&self.title)?;
        let mut flow = Flow::new();
        flow.title(
            &title,
            &format!("Generated {}", format_time(self.generated_at)),
        );
        let o = &r.overall;
        let opt = |m: Option<Money>| m.map_or_else(|| "-".to_owned(), money);
        let (period_word, period_heading) = match r.period {
            Period::Day => ("Days", "By day"),
            Period::Week => ("ISO weeks", "By ISO week"),
            Period::Month => ("Months", "By month"),
        };
        flow.summary(&[
            ("Rows", group_digits(&o.count.to_string())),
            ("Total", money(o.sum)),
            ("Mean", opt(o.mean)),
            ("Skipped rows", group_digits(&r.skipped_rows.to_string())),
            ("Minimum", opt(o.min)),
            ("Maximum", opt(o.max)),
            ("Categories", group_digits(&r.categories.len().to_string())),
            (period_word, group_digits(&r.periods.len().to_string())),
        ]);
        if !r.top_categories.is_empty() {
            let bars = r
                .top_categories
                .iter()
                .take(MAX_BARS)
                .map(|t| Ok((clean(&t.category)?, t.sum.0, money(t.sum))))
                .collect::<Result<Vec<_>, PdfError>>()?;
            flow.bar_chart(&format!("Top {} categories by sum", bars.len()), &bars);
        }
        let stat_columns = |first: &str| {
            let mut cols = vec![ColumnSpec {
                name: first.to_owned(),
                align: Align::Left,
                weight: 2.2,
            }];
            for name in ["Rows", "Sum", "Mean", "Median", "P95"] {
                let weight = if name == "Rows" { 0.8 } else { 1.3 };
                cols.push(ColumnSpec {
                    name: name.to_owned(),
                    align: Align::Right,
                    weight,
                });
            }
            cols
        };
        let stats_row = |label: String, s: &crate::report::GroupStats| {
            vec![
                label,
                group_digits(&s.count.to_string()),
                money(s.sum),
                money(s.mean),
                money(s.median),
                money(s.p95),
            ]
        };
        let cat_rows = r
            .categories
            .iter()
            .map(|c| Ok(stats_row(clean(&c.category)?, &c.stats)))
            .collect::<Result<Vec<_>, PdfError>>()?;
        flow.table("By category", &stat_columns("Category"), cat_rows);
        let period_rows = r
            .periods
            .iter()
            .map(|p| stats_row(p.period.clone(), &p.stats));
        flow.table(period_heading, &stat_columns("Period"), period_rows);
        for t in &self.tables {
            let cols = t
                .columns
                .iter()
                .map(|c| {
                    Ok(ColumnSpec {
                        name: clean(&c.name)?,
                        align: if c.right { Align::Right } else { Align::Left },
                        weight: if c.weight.is_finite() { c.weight } else { 1.0 },
                    })
                })
                .collect::<Result<Vec<_>, PdfError>>()?;
            let rows = t
                .rows
                .iter()
                .map(|row| row.iter().map(|s| clean(s)).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()?;
            let heading = clean(&t.title)?;
            flow.table(&heading, &cols, rows);
        }

        let pages: Vec<PdfPage> = flow
            .finish()
            .into_iter()
            .map(|ops| {
                PdfPage::new(
                    Mm::from(printpdf::Pt(PAGE_W)),
                    Mm::from(printpdf::Pt(PAGE_H)),
                    ops,
                )
            })
            .collect();
        let page_count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        let mut doc = PdfDocument::new(&title);
        if let Ok(t) = printpdf::OffsetDateTime::from_unix_timestamp(self.generated_at) {
            doc.metadata.info.creation_date = t;
            doc.metadata.info.modification_date = t;
            doc.metadata.info.metadata_date = t;
        }
        doc.metadata.info.producer = "offload-tasks".to_owned();
        doc.with_pages(pages);
        let bytes = serialize(&doc, self.compress)?;
        Ok(RenderedPdf {
            bytes,
            pages: page_count,
            replaced_chars: replaced,
        })
    }
}

impl Task for PdfReportTask {
    type Output = Result<RenderedPdf, PdfError>;

    fn run(self) -> Self::Output {
        self.render()
    }

    fn name(&self) -> &'static str {
        "pdf_report"
    }
}

/// Writes the document. printpdf's own `save` compresses with zlib's best (slowest) level
/// and stamps a trailer `/ID` drawn from a process-wide counter; this converts to lopdf,
/// compresses page streams at zlib's default level instead of its slowest one, and derives the
/// `/ID` from the page contents so output is deterministic.
fn serialize(doc: &PdfDocument, compress: bool) -> Result<Vec<u8>, PdfError> {
    use std::io::Write as _;

    use flate2::{Compression, write::ZlibEncoder};
    use lopdf::{Object, StringFormat};
    use rayon::prelude::*;

    let opts = PdfSaveOptions {
        optimize: false,
        ..PdfSaveOptions::default()
    };
    let mut warnings = Vec::new();
    let mut lo = printpdf::serialize::to_lopdf_doc(doc, &opts, &mut warnings);
    // Pages compress independently: on a pool, rayon spreads them over its threads.
    let mut streams: Vec<&mut lopdf::Stream> = lo
        .objects
        .values_mut()
        .filter_map(|o| {
            if let Object::Stream(s) = o {
                Some(s)
            } else {
                None
            }
        })
        .collect();
    let results: Vec<Result<(u64, u64), PdfError>> = streams
        .par_iter_mut()
        .map(|stream| {
            let mut h = (0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64);
            for &b in &stream.content {
                h.0 = (h.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                h.1 = (h.1 ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3);
            }
            if compress && stream.allows_compression && stream.dict.get(b"Filter").is_err() {
                let mut z = ZlibEncoder::new(
                    Vec::with_capacity(stream.content.len() / 4),
                    Compression::default(),
                );
                let packed = z.write_all(&stream.content).and_then(|()| z.finish());
                let packed = packed.map_err(|e| PdfError::Write(e.to_string()))?;
                if packed.len() < stream.content.len() {
                    stream.dict.set("Filter", "FlateDecode");
                    stream.set_content(packed);
                }
            }
            Ok(h)
        })
        .collect();
    let mut hash = (0u64, 0u64);
    for r in results {
        let (a, b) = r?;
        hash = (hash.0.rotate_left(5) ^ a, hash.1.rotate_left(5) ^ b);
    }
    let id: Vec<u8> = (0..32)
        .map(|i| {
            let word = if i < 16 { hash.0 } else { hash.1 };
            b'A' + ((word >> ((i % 16) * 4)) & 0xF) as u8
        })
        .collect();
    lo.trailer.set(
        "ID",
        Object::Array(vec![
            Object::String(id.clone(), StringFormat::Literal),
            Object::String(id, StringFormat::Literal),
        ]),
    );
    let mut bytes = Vec::new();
    lo.save_to(&mut bytes)
        .map_err(|e| PdfError::Write(e.to_string()))?;
    Ok(bytes)
}

/// `1234567` -> `1,234,567` (the text may start with `-`).
fn group_digits(s: &str) -> String {
    let (sign, digits) = s.strip_prefix('-').map_or(("", s), |d| ("-", d));
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money with thousands separators: `-1,234.50`.
fn money(m: Money) -> String {
    let s = m.to_string();
    match s.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", group_digits(int)),
        None => s,
    }
}

/// `2026-11-26 17:50:00 UTC`.
fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    match i32::try_from(days) {
        Ok(d) => {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                calendar::iso_date(d),
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )
        }
        Err(_) => format!("{unix} seconds after 1970-01-01 UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(group_digits("1234567"), "1,234,567");
        assert_eq!(group_digits("-123"), "-123");
        assert_eq!(money(Money(-123_456_789)), "-1,234,567.89");
        assert_eq!(money(Money(5)), "0.05");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
