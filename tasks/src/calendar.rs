//! The civil calendar on day numbers (days since 1970-01-01): ISO dates in and out, weekdays
//! and ISO weeks. The one piece of date arithmetic the report and pdf modules share.
//
// Implementation: the civil-from-days / days-from-civil conversions follow the well-known
// era-based formulas (400-year cycles), exact for every year 0000..=9999 accepted here.

/// Parses an ISO `YYYY-MM-DD` date into days since 1970-01-01.
///
/// Returns `None` for anything else, including impossible days such as `2023-02-29`.
pub(crate) fn parse_iso_date(s: &[u8]) -> Option<i32> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let digit = |i: usize| -> Option<i32> {
        let b = s[i];
        b.is_ascii_digit().then_some(i32::from(b - b'0'))
    };
    let year = digit(0)? * 1000 + digit(1)? * 100 + digit(2)? * 10 + digit(3)?;
    let month = digit(5)? * 10 + digit(6)?;
    let day = digit(8)? * 10 + digit(9)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// The ISO `YYYY-MM-DD` text of a day number (the inverse of [`parse_iso_date`] for years
/// 0000..=9999).
pub(crate) fn iso_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid civil date.
pub(crate) fn days_from_civil(year: i32, month: i32, day: i32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number.
pub(crate) fn civil_from_days(days: i32) -> (i32, i32, i32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// Monday = 0 .. Sunday = 6.
pub(crate) fn weekday(days: i32) -> i32 {
    (days + 3).rem_euclid(7)
}

/// The ISO 8601 `(year, week)` of a day: weeks start on Monday, and a week belongs to the
/// year of its Thursday.
pub(crate) fn iso_week(days: i32) -> (i32, i32) {
    let thursday = days - weekday(days) + 3;
    let (iso_year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1;
    (iso_year, week)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_day_of_four_centuries() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 12, 31);
        for d in start..=end {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
            let s = iso_date(d);
            assert_eq!(s, format!("{y:04}-{m:02}-{day:02}"));
            assert_eq!(parse_iso_date(s.as_bytes()), Some(d));
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-1-01",
            "20240101",
            "2024-01-0a",
        ] {
            assert_eq!(parse_iso_date(bad.as_bytes()), None, "{bad}");
        }
        assert!(parse_iso_date(b"2024-02-29").is_some());
        assert_eq!(parse_iso_date(b"1970-01-01"), Some(0));
    }

    #[test]
    fn weekdays_and_iso_weeks_at_year_edges() {
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        let week = |y, m, d| iso_week(days_from_civil(y, m, d));
        assert_eq!(week(2021, 1, 3), (2020, 53));
        assert_eq!(week(2021, 1, 4), (2021, 1));
        assert_eq!(week(2024, 12, 30), (2025, 1));
        assert_eq!(week(2026, 11, 26), (2026, 48));
        assert_eq!(week(2015, 12, 31), (2015, 53));
    }
}
