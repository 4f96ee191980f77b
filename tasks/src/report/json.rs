//! The JSON front end: an array of row objects, parsed without ever turning money into floats.
//
// Implementation: one streaming pass checks the syntax, counts the elements (stopping at the
// row limit) and notes where every `CHUNK_ROWS`-th element starts; nothing per row is kept,
// so a body of a million bare zeros costs no more memory than one of ten rows. Then chunks
// are parsed in parallel, each walking its elements again from its start offset. Fields are
// taken as raw JSON text, so `12.34` is read digit by digit like CSV text and a field with
// the wrong type is reported with its column name.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use rayon::prelude::*;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::agg::{AddError, Field, Options, Partial, Totals, merge};
use super::error::{ReportError, RowError, RowErrorKind};
use super::types::OnBadRow;

const CHUNK_ROWS: usize = 16_384;

#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    date: Option<&'a RawValue>,
    #[serde(borrow, default)]
    category: Option<&'a RawValue>,
    #[serde(borrow, default)]
    quantity: Option<&'a RawValue>,
    #[serde(borrow, default)]
    unit_price: Option<&'a RawValue>,
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Date => "date",
        Field::Category => "category",
        Field::Quantity => "quantity",
        Field::UnitPrice => "unit_price",
    }
}

/// The text of a JSON string (borrowed when it has no escapes), or `None` for other types.
fn string(raw: &RawValue) -> Option<Cow<'_, [u8]>> {
    let s = raw.get();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(s)
            .ok()
            .map(|s| Cow::Owned(s.into_bytes()))
    } else {
        Some(Cow::Borrowed(inner.as_bytes()))
    }
}

/// A number's literal text, or the content of a string holding one.
fn number(raw: &RawValue) -> &[u8] {
    let s = raw.get();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .as_bytes()
}

fn add_row<'a>(partial: &mut Partial<'a>, raw: &'a RawValue) -> Result<(), (String, RowErrorKind)> {
    // Not an object: known without building a serde error, which a body of a million bare
    // values in skip mode would otherwise build a million times.
    if !raw.get().starts_with('{') {
        return Err(("*".to_owned(), RowErrorKind::WrongType));
    }
    let row: Row<'a> =
        serde_json::from_str(raw.get()).map_err(|_| ("*".to_owned(), RowErrorKind::WrongType))?;
    let need = |v: Option<&'a RawValue>, f: Field| {
        v.ok_or_else(|| (field_name(f).to_owned(), RowErrorKind::MissingField))
    };
    let date = need(row.date, Field::Date)?;
    let category = need(row.category, Field::Category)?;
    let quantity = need(row.quantity, Field::Quantity)?;
    let unit_price = need(row.unit_price, Field::UnitPrice)?;
    let wrong = |f: Field| (field_name(f).to_owned(), RowErrorKind::WrongType);
    let date = string(date).ok_or_else(|| wrong(Field::Date))?;
    let category = string(category).ok_or_else(|| wrong(Field::Category))?;
    partial
        .add(&date, category, number(quantity), number(unit_price))
        .map_err(|AddError(f, kind)| (field_name(f).to_owned(), kind))
}

/// Where the element chunks start in the input, and how many elements there are.
#[derive(Debug)]
struct Index {
    starts: Vec<usize>,
    rows: u64,
}

/// Why the first pass stopped before the end of the array.
#[derive(Debug)]
enum Stop {
    /// More elements than the row limit.
    OverLimit,
    /// An element is not an object, and bad rows fail the report: known without reading
    /// the rest (a body of millions of bare values fails at once). Holds the index of the
    /// elements before it, whose own errors (if any) come first.
    NotAnObject(Index),
}

/// The first pass: a visitor over the top-level array that keeps only [`Index`].
struct Indexer<'a, 'de> {
    data: &'de [u8],
    max_rows: u64,
    /// Stop at the first element that is not an object (bad rows fail the report).
    fail_fast: bool,
    stop: &'a Cell<Option<Stop>>,
}

impl<'de> DeserializeSeed<'de> for Indexer<'_, 'de> {
    type Value = Index;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Index, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Indexer<'_, 'de> {
    type Value = Index;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of row objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Index, A::Error> {
        let mut index = Index {
            starts: Vec::new(),
            rows: 0,
        };
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if index.rows == self.max_rows {
                self.stop.set(Some(Stop::OverLimit));
                return Err(de::Error::custom("too many rows"));
            }
            if self.fail_fast && !raw.get().starts_with('{') {
                self.stop.set(Some(Stop::NotAnObject(index)));
                return Err(de::Error::custom("not a row object"));
            }
            if index.rows.is_multiple_of(CHUNK_ROWS as u64) {
                index.starts.push(offset(self.data, raw));
            }
            index.rows += 1;
        }
        Ok(index)
    }
}

/// Where `raw` (borrowed from `data`) starts in `data`.
fn offset(data: &[u8], raw: &RawValue) -> usize {
    raw.get().as_ptr().addr() - data.as_ptr().addr()
}

/// The `n` array elements starting at `start`, which the first pass found well formed.
fn elements(data: &[u8], start: usize, n: usize) -> impl Iterator<Item = &RawValue> {
    let mut pos = start;
    (0..n).map_while(move |_| {
        let mut de = serde_json::Deserializer::from_slice(&data[pos..]);
        let raw = <&RawValue>::deserialize(&mut de).ok()?;
        pos = offset(data, raw) + raw.get().len();
        // Past the whitespace and the comma before the next element.
        pos += data[pos..]
            .iter()
            .position(|&b| b == b',')
            .map_or(data.len() - pos, |i| i + 1);
        Some(raw)
    })
}

/// Parses a JSON array of row objects and merges every group's totals.
pub(crate) fn totals(data: &[u8], opts: &Options) -> Result<Totals, ReportError> {
    let stop = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(data);
    let indexer = Indexer {
        data,
        max_rows: opts.limits.max_rows,
        fail_fast: matches!(opts.on_bad_row, OnBadRow::Fail),
        stop: &stop,
    };
    let index = match indexer
        .deserialize(&mut de)
        .and_then(|i| de.end().map(|()| i))
    {
        Ok(index) => index,
        Err(e) => {
            return Err(match stop.take() {
                Some(Stop::OverLimit) => ReportError::TooManyRows {
                    limit: opts.limits.max_rows,
                },
                Some(Stop::NotAnObject(before)) => {
                    // The error the second pass gives a non-object row (see `add_row`),
                    // unless a row before it has one of its own.
                    let row = before.rows + 1;
                    match aggregate(data, &before, opts) {
                        Err(earlier) => earlier,
                        Ok(_) => ReportError::Row(RowError {
                            row,
                            column: "*".to_owned(),
                            kind: RowErrorKind::WrongType,
                        }),
                    }
                }
                None => ReportError::Json(e.to_string()),
            });
        }
    };
    aggregate(data, &index, opts)
}

/// The second pass: parses the indexed elements in parallel chunks and merges every group's
/// totals.
fn aggregate(data: &[u8], index: &Index, opts: &Options) -> Result<Totals, ReportError> {
    let rows = index.rows as usize;
    // Rayon folds each run of chunks it hands one thread into one partial, as for CSV.
    let results: Vec<Result<Partial<'_>, ReportError>> = index
        .starts
        .par_iter()
        .enumerate()
        .fold(
            || Ok(Partial::new(opts.period)),
            |partial, (c, &start)| {
                let mut partial = partial?;
                let first = c * CHUNK_ROWS;
                let n = CHUNK_ROWS.min(rows - first);
                for (i, raw) in elements(data, start, n).enumerate() {
                    partial.rows += 1;
                    if let Err((column, kind)) = add_row(&mut partial, raw) {
                        match opts.on_bad_row {
                            OnBadRow::Skip => partial.skipped += 1,
                            OnBadRow::Fail => {
                                let row = (first + i + 1) as u64;
                                return Err(ReportError::Row(RowError { row, column, kind }));
                            }
                        }
                    }
                }
                Ok(partial)
            },
        )
        .collect();
    let partials = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(merge(partials))
}
