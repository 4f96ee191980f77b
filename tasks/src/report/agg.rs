//! Exact aggregation: number parsing into minor units, per-chunk accumulators and the final
//! merge into a [`Report`].
//
// Implementation: every chunk of input (a slice of CSV records or of JSON elements) fills one
// `Partial`, keeping each group's amounts so the median and p95 are exact. `merge` joins the
// partials into owned `Totals` (nothing borrows the input after it), then `Totals::report`
// computes each group's order statistics in parallel with `select_nth_unstable` (linear time,
// no full sort).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use rayon::prelude::*;

use super::error::{ReportError, RowErrorKind};
use super::period::{period_key, period_label};
use super::types::{
    CategoryStats, GroupStats, Limits, Money, OnBadRow, Period, PeriodStats, Report, Summary,
    TopCategory,
};
use crate::calendar::parse_iso_date;

/// What the caller asked for, shared by the CSV and JSON front ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) period: Period,
    pub(crate) top: usize,
    pub(crate) limits: Limits,
    pub(crate) on_bad_row: OnBadRow,
}

/// The four fields a row is made of, for naming the column in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Date,
    Category,
    Quantity,
    UnitPrice,
}

/// Why `Partial::add` refused a row: the field at fault and the problem.
#[derive(Debug)]
pub(crate) struct AddError(pub(crate) Field, pub(crate) RowErrorKind);

/// Parses a whole number: optional sign, 1 to 18 ASCII digits, surrounding spaces allowed.
pub(crate) fn parse_quantity(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii();
    let (neg, digits) = split_sign(s);
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let v = digits_value(digits)?;
    Some(if neg { -v } else { v })
}

/// The value of a run of ASCII digits (at most 18, so it cannot overflow), or `None` if a
/// byte is not a digit.
fn digits_value(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |v, &b| {
        b.is_ascii_digit().then(|| v * 10 + i64::from(b - b'0'))
    })
}

/// Parses a price into cents: optional sign, 1 to 16 digits, then optionally `.` and one or
/// two digits. `12`, `12.5` and `12.50` are all 1250 cents; `12.345`, `1e3`, `.5` are errors.
pub(crate) fn parse_price(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii();
    let (neg, rest) = split_sign(s);
    let (int, frac) = match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], &rest[dot + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    if int.is_empty()
        || int.len() > 16
        || frac.len() > 2
        || (frac.is_empty() && int.len() < rest.len())
    {
        return None;
    }
    let v = digits_value(int)?;
    let mut cents = 0;
    for i in 0..2 {
        cents *= 10;
        if let Some(&b) = frac.get(i) {
            if !b.is_ascii_digit() {
                return None;
            }
            cents += i64::from(b - b'0');
        }
    }
    let v = v * 100 + cents;
    Some(if neg { -v } else { v })
}

fn split_sign(s: &[u8]) -> (bool, &[u8]) {
    match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// The eight digits of a `YYYY-MM-DD` text packed into a `u64` (dashes checked), used as a
/// cache key; the date itself is validated by `parse_iso_date` on a cache miss.
#[inline]
fn pack_date(s: &[u8]) -> Option<u64> {
    let s: &[u8; 10] = s.try_into().ok()?;
    if s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    Some(u64::from_le_bytes([
        s[0], s[1], s[2], s[3], s[5], s[6], s[8], s[9],
    ]))
}

const DATE_CACHE: usize = 4096;

#[inline]
fn date_cache_index(packed: u64) -> usize {
    // Fibonacci hashing: the top 12 bits of the product.
    (packed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize
}

/// `sum / count` rounded half away from zero.
fn mean(sum: i128, count: u64) -> Money {
    if count == 0 {
        return Money(0);
    }
    let (s, c) = (sum, i128::from(count));
    let (q, r) = (s / c, s % c);
    let q = if 2 * r.abs() >= c { q + s.signum() } else { q };
    // |mean| <= max |amount| <= i64::MAX, so this always fits.
    Money(i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX }))
}

/// FxHash: the category and period maps see one lookup per row, and SipHash would cost more
/// than the parsing. Keys come from the input, but a flooding attacker only slows their own
/// task, which the input-size limit bounds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FxBuild;

#[derive(Debug)]
pub(crate) struct FxHasher(u64);

impl BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

impl FxHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.mix(u64::from(i as u32));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // The product's low bits depend only on the input's low bits (constant year digits
        // in a packed date), and hashbrown picks buckets by low bits: bring the well-mixed
        // high bits down.
        self.0.rotate_left(26)
    }
}

/// Running statistics of one group, with its amounts kept for the order statistics.
#[derive(Debug, Default)]
pub(crate) struct Acc {
    count: u64,
    /// Exact: 128 bits cannot overflow on any input that fits in memory.
    sum: i128,
    min: i64,
    max: i64,
    amounts: Vec<i64>,
}

/// Widens `[min, max]` to include `amount`; `count` is how many amounts it held before.
#[inline]
fn widen(min: &mut i64, max: &mut i64, count: u64, amount: i64) {
    if count == 0 {
        *min = amount;
        *max = amount;
    } else {
        *min = (*min).min(amount);
        *max = (*max).max(amount);
    }
}

impl Acc {
    #[inline]
    fn add(&mut self, amount: i64) {
        self.sum += i128::from(amount);
        widen(&mut self.min, &mut self.max, self.count, amount);
        self.count += 1;
        self.amounts.push(amount);
    }
}

/// The aggregate of one chunk of rows.
#[derive(Debug)]
pub(crate) struct Partial<'a> {
    period: Period,
    cat_index: HashMap<Cow<'a, [u8]>, u32, FxBuild>,
    cats: Vec<(Cow<'a, [u8]>, Acc)>,
    period_index: HashMap<i32, u32, FxBuild>,
    periods: Vec<(i32, Acc)>,
    /// Packed date text -> period slot: most rows repeat a date seen before.
    date_slots: HashMap<u64, u32, FxBuild>,
    /// A direct-mapped cache in front of `date_slots` (`u32::MAX` = empty): one multiply
    /// and one compare per row instead of a hash-table probe.
    date_cache: Box<[(u64, u32)]>,
    /// Records seen, skipped ones included.
    pub(crate) rows: u64,
    /// Records skipped under `OnBadRow::Skip`.
    pub(crate) skipped: u64,
    count: u64,
    sum: i128,
    min: i64,
    max: i64,
}

impl<'a> Partial<'a> {
    pub(crate) fn new(period: Period) -> Self {
        Self {
            period,
            cat_index: HashMap::with_hasher(FxBuild),
            cats: Vec::new(),
            period_index: HashMap::with_hasher(FxBuild),
            periods: Vec::new(),
            date_slots: HashMap::with_hasher(FxBuild),
            date_cache: vec![(0, u32::MAX); DATE_CACHE].into_boxed_slice(),
            rows: 0,
            skipped: 0,
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
        }
    }

    /// Validates a date not seen before in this chunk and finds or creates its period.
    #[cold]
    fn new_date(&mut self, date: &[u8]) -> Option<u32> {
        let packed = pack_date(date)?;
        if let Some(&slot) = self.date_slots.get(&packed) {
            self.date_cache[date_cache_index(packed)] = (packed, slot);
            return Some(slot);
        }
        let days = parse_iso_date(date)?;
        let key = period_key(self.period, days);
        let next = self.periods.len() as u32;
        let slot = *self.period_index.entry(key).or_insert(next);
        if slot == next {
            self.periods.push((key, Acc::default()));
        }
        self.date_slots.insert(packed, slot);
        self.date_cache[date_cache_index(packed)] = (packed, slot);
        Some(slot)
    }

    /// Adds one row. Nothing changes when it returns an error.
    #[inline]
    pub(crate) fn add(
        &mut self,
        date: &[u8],
        category: Cow<'a, [u8]>,
        quantity: &[u8],
        unit_price: &[u8],
    ) -> Result<(), AddError> {
        let date = date.trim_ascii();
        let cached = pack_date(date).and_then(|k| {
            let (key, slot) = self.date_cache[date_cache_index(k)];
            (key == k && slot != u32::MAX).then_some(slot)
        });
        let period_slot = match cached {
            Some(slot) => slot,
            None => self
                .new_date(date)
                .ok_or(AddError(Field::Date, RowErrorKind::InvalidDate))?,
        };
        let q = parse_quantity(quantity)
            .ok_or(AddError(Field::Quantity, RowErrorKind::InvalidQuantity))?;
        let p = parse_price(unit_price)
            .ok_or(AddError(Field::UnitPrice, RowErrorKind::InvalidPrice))?;
        let amount = q
            .checked_mul(p)
            .ok_or(AddError(Field::UnitPrice, RowErrorKind::AmountOverflow))?;
        let cat_slot = match self.cat_index.get(category.as_ref()) {
            Some(&slot) => slot,
            None => {
                if std::str::from_utf8(&category).is_err() {
                    return Err(AddError(Field::Category, RowErrorKind::InvalidUtf8));
                }
                let slot = self.cats.len() as u32;
                self.cat_index.insert(category.clone(), slot);
                self.cats.push((category, Acc::default()));
                slot
            }
        };
        self.cats[cat_slot as usize].1.add(amount);
        self.periods[period_slot as usize].1.add(amount);
        widen(&mut self.min, &mut self.max, self.count, amount);
        self.count += 1;
        self.sum += i128::from(amount);
        Ok(())
    }
}

/// A group merged across partials, before its order statistics are computed.
#[derive(Debug, Default)]
struct Merged {
    count: u64,
    sum: i128,
    min: i64,
    max: i64,
    parts: Vec<Vec<i64>>,
}

impl Merged {
    fn absorb(&mut self, acc: Acc) {
        if acc.count == 0 {
            return;
        }
        self.sum += acc.sum;
        if self.count == 0 {
            self.min = acc.min;
            self.max = acc.max;
        } else {
            self.min = self.min.min(acc.min);
            self.max = self.max.max(acc.max);
        }
        self.count += acc.count;
        self.parts.push(acc.amounts);
    }

    /// The exact sum, if it fits the report's 64-bit minor units.
    fn sum(&self) -> Result<Money, ReportError> {
        i64::try_from(self.sum)
            .map(Money)
            .map_err(|_| ReportError::Overflow)
    }

    fn stats(self) -> Result<GroupStats, ReportError> {
        let sum = self.sum()?;
        let mut parts = self.parts;
        let mut all = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
            for p in parts {
                all.extend_from_slice(&p);
            }
            all
        };
        let n = all.len() as u64;
        // Nearest rank, 1-based: ceil(p * n); clamp keeps an empty group (never built) safe.
        let p95_rank = (n.saturating_mul(95).div_ceil(100)).max(1) as usize;
        let median_rank = n.div_ceil(2).max(1) as usize;
        let (p95, median) = if all.is_empty() {
            (0, 0)
        } else {
            let (_, &mut p95, _) = all.select_nth_unstable(p95_rank - 1);
            // Everything left of the p95 slot is <= it, and median_rank <= p95_rank.
            let (_, &mut median, _) = all[..p95_rank].select_nth_unstable(median_rank - 1);
            (p95, median)
        };
        Ok(GroupStats {
            count: self.count,
            sum,
            mean: mean(self.sum, self.count),
            median: Money(median),
            p95: Money(p95),
            min: Money(self.min),
            max: Money(self.max),
        })
    }
}

/// The partials merged: each group's totals and amounts, owned, so the input can go.
#[derive(Debug)]
pub(crate) struct Totals {
    overall: Merged,
    skipped: u64,
    cats: BTreeMap<Vec<u8>, Merged>,
    periods: BTreeMap<i32, Merged>,
}

/// Merges the partials (exact: sums are 128-bit until the report checks they fit 64).
pub(crate) fn merge(partials: Vec<Partial<'_>>) -> Totals {
    let mut overall = Merged::default();
    let mut skipped = 0u64;
    let mut cats: BTreeMap<Vec<u8>, Merged> = BTreeMap::new();
    let mut periods: BTreeMap<i32, Merged> = BTreeMap::new();
    for p in partials {
        skipped += p.skipped;
        overall.absorb(Acc {
            count: p.count,
            sum: p.sum,
            min: p.min,
            max: p.max,
            amounts: Vec::new(),
        });
        for (key, acc) in p.cats {
            match cats.get_mut(key.as_ref()) {
                Some(m) => m.absorb(acc),
                None => cats.entry(key.into_owned()).or_default().absorb(acc),
            }
        }
        for (key, acc) in p.periods {
            periods.entry(key).or_default().absorb(acc);
        }
    }
    Totals {
        overall,
        skipped,
        cats,
        periods,
    }
}

impl Totals {
    /// The report: every group's order statistics, computed in parallel.
    ///
    /// # Errors
    ///
    /// [`ReportError::Overflow`] when a sum does not fit in 64 bits of minor units.
    pub(crate) fn report(self, opts: &Options) -> Result<Report, ReportError> {
        let Self {
            overall,
            skipped,
            cats,
            periods,
        } = self;
        let period = opts.period;
        // Both tables at once, so neither waits on the other's slowest group.
        let (categories, periods) = rayon::join(
            || {
                cats.into_iter()
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|(key, m)| {
                        Ok(CategoryStats {
                            // Validated as UTF-8 when the category was first seen.
                            category: String::from_utf8_lossy(&key).into_owned(),
                            stats: m.stats()?,
                        })
                    })
                    .collect::<Result<Vec<_>, ReportError>>()
            },
            || {
                periods
                    .into_iter()
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|(key, m)| {
                        let (label, start) = period_label(period, key);
                        Ok(PeriodStats {
                            period: label,
                            start,
                            stats: m.stats()?,
                        })
                    })
                    .collect::<Result<Vec<_>, ReportError>>()
            },
        );
        let (categories, periods) = (categories?, periods?);
        let mut top: Vec<TopCategory> = categories
            .iter()
            .map(|c| TopCategory {
                category: c.category.clone(),
                sum: c.stats.sum,
                count: c.stats.count,
            })
            .collect();
        // Stable sort over name-ordered input: ties keep name order.
        top.sort_by_key(|t| std::cmp::Reverse(t.sum));
        top.truncate(opts.top);
        let empty = overall.count == 0;
        Ok(Report {
            period,
            overall: Summary {
                count: overall.count,
                sum: overall.sum()?,
                mean: (!empty).then(|| mean(overall.sum, overall.count)),
                min: (!empty).then_some(Money(overall.min)),
                max: (!empty).then_some(Money(overall.max)),
            },
            categories,
            periods,
            top_categories: top,
            skipped_rows: skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(parse_price(b"12"), Some(1200));
        assert_eq!(parse_price(b"12.5"), Some(1250));
        assert_eq!(parse_price(b"12.05"), Some(1205));
        assert_eq!(parse_price(b"-0.99"), Some(-99));
        assert_eq!(parse_price(b" 3.10 "), Some(310));
        for bad in [
            "",
            "-",
            "12.",
            ".5",
            "1.234",
            "1e3",
            "1,5",
            "12.3x",
            "--1",
            "99999999999999999",
        ] {
            assert_eq!(parse_price(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(
            parse_price(b"9999999999999999.99"),
            Some(999_999_999_999_999_999)
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity(b"7"), Some(7));
        assert_eq!(parse_quantity(b"-3"), Some(-3));
        assert_eq!(
            parse_quantity(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        for bad in ["", "1.5", "1000000000000000000", "x", "+"] {
            assert_eq!(parse_quantity(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn mean_rounds_half_away_from_zero() {
        assert_eq!(mean(5, 2), Money(3));
        assert_eq!(mean(-5, 2), Money(-3));
        assert_eq!(mean(4, 3), Money(1));
        assert_eq!(mean(i128::from(i64::MAX), 1), Money(i64::MAX));
    }

    #[test]
    fn nearest_rank() {
        let m = Merged {
            count: 4,
            sum: 10,
            min: 1,
            max: 4,
            parts: vec![vec![4, 1], vec![3, 2]],
        };
        let s = m.stats().expect("the sum fits");
        assert_eq!((s.median, s.p95), (Money(2), Money(4)));
        let m = Merged {
            count: 20,
            sum: 210,
            min: 1,
            max: 20,
            parts: vec![(1..=20).rev().collect()],
        };
        let s = m.stats().expect("the sum fits");
        assert_eq!((s.median, s.p95), (Money(10), Money(19)));
    }
}
