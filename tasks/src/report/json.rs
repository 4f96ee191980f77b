//! The JSON front end: an array of row objects, parsed without ever turning money into floats.
//
// Implementation: the array is split into raw elements first (one pass that also checks the
// syntax), then elements are parsed in parallel chunks. Fields are taken as raw JSON text, so
// `12.34` is read digit by digit like CSV text and a field with the wrong type is reported
// with its column name.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::Deserialize;
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

/// Parses a JSON array of row objects and merges every group's totals.
pub(crate) fn totals(data: &[u8], opts: &Options) -> Result<Totals, ReportError> {
    let rows: Vec<&RawValue> =
        serde_json::from_slice(data).map_err(|e| ReportError::Json(e.to_string()))?;
    if rows.len() as u64 > opts.limits.max_rows {
        return Err(ReportError::TooManyRows {
            limit: opts.limits.max_rows,
        });
    }
    let results: Vec<Result<Partial<'_>, ReportError>> = rows
        .par_chunks(CHUNK_ROWS)
        .enumerate()
        .map(|(c, chunk)| {
            let mut partial = Partial::new(opts.period);
            for (i, &raw) in chunk.iter().enumerate() {
                partial.rows += 1;
                if let Err((column, kind)) = add_row(&mut partial, raw) {
                    match opts.on_bad_row {
                        OnBadRow::Skip => partial.skipped += 1,
                        OnBadRow::Fail => {
                            let row = (c * CHUNK_ROWS + i + 1) as u64;
                            return Err(ReportError::Row(RowError { row, column, kind }));
                        }
                    }
                }
            }
            Ok(partial)
        })
        .collect();
    let partials = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(merge(partials))
}
