//! The CSV front end: an RFC 4180 record parser and the parallel chunking around it.
//
// Implementation: the body after the header is cut into ~256 KiB chunks at record
// boundaries. A newline ends a record only outside quotes, and in RFC 4180 text the quote
// count before a byte tells whether it is inside quotes (an escaped `""` counts twice). So
// each nominal cut point gets its quote parity from per-segment quote counts (computed in
// parallel), then moves forward to the first newline outside quotes. The chunk size is fixed,
// not derived from the thread count, so the rows parsed (even in skip mode on malformed
// quoting) are the same on any number of threads. Rayon folds each run of consecutive chunks
// it hands one thread into one `Partial`: small chunks for balance at the end, without a
// partial (and its first sight of every date) per chunk. Sums are exact whatever the grouping.
//
// Hostile input stays linear: a cut point's scan never goes back over bytes an earlier scan
// passed (a body without a line break is scanned once, not once per cut point), and a record
// never holds more fields than the header, so text without line breaks (CR-only line ends
// included) cannot grow the field list. The header itself is capped at `MAX_COLUMNS`.

use std::borrow::Cow;

use memchr::{memchr, memchr_iter, memchr2};
use rayon::prelude::*;

use super::agg::{AddError, Field, Options, Partial, Totals, merge};
use super::error::{ReportError, RowError, RowErrorKind};
use super::types::OnBadRow;

const CHUNK: usize = 1 << 18;

/// Most columns a header may have; a longer one fails with [`ReportError::TooManyColumns`].
pub(crate) const MAX_COLUMNS: usize = 1024;

/// One field of a record: byte range inside the input, and whether it holds `""` escapes.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

/// Why a record did not parse: the field index, the problem, and where to resume.
#[derive(Debug)]
struct RecordError {
    field: usize,
    kind: RowErrorKind,
    resume: usize,
}

/// Parses one record starting at `pos` into `fields`; returns the position after it.
///
/// A record with more than `max_fields` fields fails with `ExtraField` as soon as the extra
/// field starts, so `fields` never grows past `max_fields`.
#[inline]
fn parse_record(
    data: &[u8],
    mut pos: usize,
    fields: &mut Vec<Span>,
    max_fields: usize,
) -> Result<usize, RecordError> {
    fields.clear();
    let n = data.len();
    let resume_after = |at: usize| memchr(b'\n', &data[at.min(n)..]).map_or(n, |i| at + i + 1);
    loop {
        if fields.len() >= max_fields {
            return Err(RecordError {
                field: fields.len(),
                kind: RowErrorKind::ExtraField,
                resume: resume_after(pos),
            });
        }
        if pos < n && data[pos] == b'"' {
            let start = pos + 1;
            let mut i = start;
            let mut escaped = false;
            let end = loop {
                match memchr(b'"', &data[i.min(n)..]) {
                    None => {
                        return Err(RecordError {
                            field: fields.len(),
                            kind: RowErrorKind::UnterminatedQuote,
                            resume: n,
                        });
                    }
                    Some(off) => {
                        let q = i + off;
                        if data.get(q + 1) == Some(&b'"') {
                            escaped = true;
                            i = q + 2;
                        } else {
                            break q;
                        }
                    }
                }
            };
            fields.push(Span {
                start,
                end,
                escaped,
            });
            pos = end + 1;
            match data.get(pos) {
                None => return Ok(n),
                Some(b',') => pos += 1,
                Some(b'\n') => return Ok(pos + 1),
                Some(b'\r') if data.get(pos + 1) == Some(&b'\n') => return Ok(pos + 2),
                Some(_) => {
                    return Err(RecordError {
                        field: fields.len() - 1,
                        kind: RowErrorKind::MisplacedQuote,
                        resume: resume_after(pos),
                    });
                }
            }
        } else {
            let start = pos;
            let i = find_special(data, pos);
            match data.get(i) {
                Some(b',') => {
                    fields.push(Span {
                        start,
                        end: i,
                        escaped: false,
                    });
                    pos = i + 1;
                }
                Some(b'"') => {
                    return Err(RecordError {
                        field: fields.len(),
                        kind: RowErrorKind::MisplacedQuote,
                        resume: resume_after(i),
                    });
                }
                // A newline or the end of input.
                _ => {
                    let end = if i > start && data[i - 1] == b'\r' {
                        i - 1
                    } else {
                        i
                    };
                    fields.push(Span {
                        start,
                        end,
                        escaped: false,
                    });
                    return Ok((i + 1).min(n));
                }
            }
        }
    }
}

/// Index of the first `,`, `\n` or `"` at or after `from`, or `data.len()`.
///
/// Eight bytes at a time: for each target byte `t`, `(x ^ t) - 0x01..` sets a byte's top bit
/// where `x` held `t`; only the lowest hit is exact, which is the one we want.
#[inline]
fn find_special(data: &[u8], from: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let hits = |x: u64, t: u8| {
        let y = x ^ (LO * u64::from(t));
        y.wrapping_sub(LO) & !y & HI
    };
    let mut i = from;
    while let Some(chunk) = data.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let m = hits(x, b',') | hits(x, b'\n') | hits(x, b'"');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < data.len() {
        let b = data[i];
        if b == b',' || b == b'\n' || b == b'"' {
            return i;
        }
        i += 1;
    }
    i
}

/// The field's text with `""` turned into `"`.
fn unescape(data: &[u8], s: Span) -> Cow<'_, [u8]> {
    let raw = &data[s.start..s.end];
    if !s.escaped {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        out.push(raw[i]);
        i += if raw[i] == b'"' { 2 } else { 1 };
    }
    Cow::Owned(out)
}

/// Column positions of the fields the report needs, and every header name for errors.
#[derive(Debug)]
struct Columns {
    names: Vec<String>,
    date: usize,
    category: usize,
    quantity: usize,
    unit_price: usize,
}

impl Columns {
    fn name(&self, index: usize) -> String {
        self.names
            .get(index)
            .cloned()
            .unwrap_or_else(|| "*".to_owned())
    }

    fn of(&self, field: Field) -> usize {
        match field {
            Field::Date => self.date,
            Field::Category => self.category,
            Field::Quantity => self.quantity,
            Field::UnitPrice => self.unit_price,
        }
    }
}

/// A partial's failure; `row` counts from the partial's first row (1-based).
#[derive(Debug)]
enum ChunkError {
    Row {
        row: u64,
        column: String,
        kind: RowErrorKind,
    },
    TooManyRows,
}

/// Parses one chunk of whole records into `partial`.
fn parse_chunk<'a>(
    partial: &mut Partial<'a>,
    data: &'a [u8],
    cols: &Columns,
    opts: &Options,
) -> Result<(), ChunkError> {
    let mut fields = Vec::with_capacity(cols.names.len());
    let mut pos = 0;
    let n = data.len();
    let want = cols.names.len();
    while pos < n {
        // Blank lines are not records.
        if data[pos] == b'\n' {
            pos += 1;
            continue;
        }
        if data[pos] == b'\r' && data.get(pos + 1) == Some(&b'\n') {
            pos += 2;
            continue;
        }
        partial.rows += 1;
        if partial.rows > opts.limits.max_rows {
            return Err(ChunkError::TooManyRows);
        }
        let failure = match parse_record(data, pos, &mut fields, want) {
            Err(e) => {
                pos = e.resume;
                Some((cols.name(e.field), e.kind))
            }
            Ok(next) => {
                pos = next;
                if fields.len() < want {
                    Some((cols.name(fields.len()), RowErrorKind::MissingField))
                } else if fields.len() > want {
                    Some(("*".to_owned(), RowErrorKind::ExtraField))
                } else {
                    let span = |i: usize| &data[fields[i].start..fields[i].end];
                    let category = unescape(data, fields[cols.category]);
                    match partial.add(
                        span(cols.date),
                        category,
                        span(cols.quantity),
                        span(cols.unit_price),
                    ) {
                        Ok(()) => None,
                        Err(AddError(field, kind)) => Some((cols.name(cols.of(field)), kind)),
                    }
                }
            }
        };
        if let Some((column, kind)) = failure {
            match opts.on_bad_row {
                OnBadRow::Skip => partial.skipped += 1,
                OnBadRow::Fail => {
                    let row = partial.rows;
                    return Err(ChunkError::Row { row, column, kind });
                }
            }
        }
    }
    Ok(())
}

/// Parses CSV bytes and merges every group's totals.
pub(crate) fn totals(data: &[u8], opts: &Options) -> Result<Totals, ReportError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut header = Vec::new();
    let body_start = if data.is_empty() {
        return Err(ReportError::MissingColumn("date".to_owned()));
    } else {
        parse_record(data, 0, &mut header, MAX_COLUMNS).map_err(|e| match e.kind {
            RowErrorKind::ExtraField => ReportError::TooManyColumns { limit: MAX_COLUMNS },
            kind => ReportError::Row(RowError {
                row: 0,
                column: "*".to_owned(),
                kind,
            }),
        })?
    };
    let names: Vec<String> = header
        .iter()
        .map(|&s| {
            String::from_utf8_lossy(&unescape(data, s))
                .trim()
                .to_owned()
        })
        .collect();
    let find = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| ReportError::MissingColumn(name.to_owned()))
    };
    let cols = Columns {
        date: find("date")?,
        category: find("category")?,
        quantity: find("quantity")?,
        unit_price: find("unit_price")?,
        names,
    };
    let body = &data[body_start..];
    let bounds = chunk_bounds(body);
    let results: Vec<Result<Partial<'_>, ChunkError>> = bounds
        .par_windows(2)
        .fold(
            || Ok(Partial::new(opts.period)),
            |partial, w| {
                let mut partial = partial?;
                parse_chunk(&mut partial, &body[w[0]..w[1]], &cols, opts)?;
                Ok(partial)
            },
        )
        .collect();
    let mut partials = Vec::with_capacity(results.len());
    let mut rows_before = 0u64;
    for r in results {
        match r {
            Ok(p) => {
                rows_before += p.rows;
                partials.push(p);
            }
            Err(ChunkError::Row { row, column, kind }) => {
                return Err(ReportError::Row(RowError {
                    row: rows_before + row,
                    column,
                    kind,
                }));
            }
            Err(ChunkError::TooManyRows) => {
                return Err(ReportError::TooManyRows {
                    limit: opts.limits.max_rows,
                });
            }
        }
    }
    if rows_before > opts.limits.max_rows {
        return Err(ReportError::TooManyRows {
            limit: opts.limits.max_rows,
        });
    }
    Ok(merge(partials))
}

/// Chunk boundaries (first 0, last `body.len()`), each at the start of a record.
fn chunk_bounds(body: &[u8]) -> Vec<usize> {
    let segments: Vec<&[u8]> = body.chunks(CHUNK).collect();
    let odd: Vec<bool> = segments
        .par_iter()
        .map(|s| memchr_iter(b'"', s).count() % 2 == 1)
        .collect();
    let mut bounds = vec![0];
    let mut in_quotes = false;
    // Where the last scan stopped: a nominal point before it would find the same cut.
    let mut scanned_to = 0;
    for (k, seg_odd) in odd
        .iter()
        .enumerate()
        .take(segments.len().saturating_sub(1))
    {
        in_quotes ^= seg_odd;
        let nominal = (k + 1) * CHUNK;
        if nominal < scanned_to {
            continue;
        }
        let cut = cut_after(body, nominal, in_quotes);
        scanned_to = cut;
        if cut > *bounds.last().unwrap_or(&0) && cut < body.len() {
            bounds.push(cut);
        }
    }
    bounds.push(body.len());
    bounds
}

/// The position after the first newline outside quotes at or after `from` (which is inside
/// quotes when `in_quotes`), or `body.len()`.
fn cut_after(body: &[u8], from: usize, mut in_quotes: bool) -> usize {
    let mut pos = from;
    loop {
        let Some(i) = memchr2(b'"', b'\n', &body[pos..]) else {
            return body.len();
        };
        pos += i + 1;
        if body[pos - 1] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(s: &str) -> Result<Vec<String>, RowErrorKind> {
        let mut f = Vec::new();
        parse_record(s.as_bytes(), 0, &mut f, 8).map_err(|e| e.kind)?;
        Ok(f.iter()
            .map(|&sp| {
                String::from_utf8(unescape(s.as_bytes(), sp).into_owned()).unwrap_or_default()
            })
            .collect())
    }

    #[test]
    fn rfc4180_quoting() {
        assert_eq!(record("a,b,c\n").unwrap_or_default(), ["a", "b", "c"]);
        assert_eq!(
            record("a,\"b,1\",\"say \"\"hi\"\"\"\r\nx").unwrap_or_default(),
            ["a", "b,1", "say \"hi\""]
        );
        assert_eq!(
            record("\"line\nbreak\",,").unwrap_or_default(),
            ["line\nbreak", "", ""]
        );
        assert_eq!(record("a,b").unwrap_or_default(), ["a", "b"]);
        assert_eq!(record("\"open"), Err(RowErrorKind::UnterminatedQuote));
        assert_eq!(record("\"a\"b,c"), Err(RowErrorKind::MisplacedQuote));
        assert_eq!(record("a\"b,c"), Err(RowErrorKind::MisplacedQuote));
        assert_eq!(record("1,2,3,4,5,6,7,8,9\n"), Err(RowErrorKind::ExtraField));
        assert_eq!(record("1,2,3,4,5,6,7,8\n").map(|f| f.len()), Ok(8));
    }

    #[test]
    fn find_special_matches_a_plain_scan() {
        let data = b"abc,defghijklmnop\"qrstuvwxyz\n0123456789abcdefgh,,\n\"x";
        for from in 0..data.len() {
            let want = data[from..]
                .iter()
                .position(|&b| matches!(b, b',' | b'\n' | b'"'))
                .map_or(data.len(), |p| p + from);
            assert_eq!(find_special(data, from), want, "from {from}");
        }
        // Bytes just above and below the targets never match.
        let near = [b'+', b'-', b'\t', b'\x0b', b'!', b'#', 0x80 | b',', 0xff];
        assert_eq!(find_special(&near, 0), near.len());
    }

    #[test]
    fn bounds_of_a_body_without_line_breaks() {
        let body = vec![b'x'; 5 * CHUNK];
        assert_eq!(chunk_bounds(&body), [0, body.len()]);
        // One line break, late: every earlier nominal point finds the same cut, once.
        let mut body = vec![b'x'; 5 * CHUNK];
        body[4 * CHUNK + 7] = b'\n';
        assert_eq!(chunk_bounds(&body), [0, 4 * CHUNK + 8, body.len()]);
        // An unclosed quote: nothing after it is a record boundary.
        let mut body = b"a\n\"".to_vec();
        body.extend(std::iter::repeat_n(b"x\n", 2 * CHUNK).flatten());
        assert_eq!(chunk_bounds(&body), [0, body.len()]);
    }

    #[test]
    fn bounds_skip_newlines_inside_quotes() {
        let mut body = Vec::new();
        while body.len() < 3 * CHUNK {
            body.extend_from_slice(b"2024-01-01,\"multi\nline \"\"x\"\"\nfield\",r,d,1,1.00\n");
        }
        let bounds = chunk_bounds(&body);
        assert!(bounds.len() >= 3);
        for &b in &bounds[1..bounds.len() - 1] {
            assert!(body[b..].starts_with(b"2024-01-01"), "cut at {b}");
        }
    }
}
