//! Text for the built-in Helvetica: WinAnsi coverage, the unencodable-text policy, and
//! glyph widths for alignment and truncation.
//
// Implementation: the standard 14 fonts are written with `/WinAnsiEncoding`, a single-byte
// encoding. printpdf encodes `&str` to WinAnsi itself and turns anything it cannot map into
// `?` without a word; we map such characters first, by the caller's policy, so nothing is
// lost silently. printpdf writes strings holding `(`, `)` or `\` as hex strings, so data
// cannot break out of a string operand.

use super::{PdfError, Unencodable};

/// Whether WinAnsi (CP1252) can show `c`.
pub(crate) fn win_ansi(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0xFF)
        || matches!(
            c,
            '\u{20AC}'
                | '\u{201A}'
                | '\u{0192}'
                | '\u{201E}'
                | '\u{2026}'
                | '\u{2020}'
                | '\u{2021}'
                | '\u{02C6}'
                | '\u{2030}'
                | '\u{0160}'
                | '\u{2039}'
                | '\u{0152}'
                | '\u{017D}'
                | '\u{2018}'
                | '\u{2019}'
                | '\u{201C}'
                | '\u{201D}'
                | '\u{2022}'
                | '\u{2013}'
                | '\u{2014}'
                | '\u{02DC}'
                | '\u{2122}'
                | '\u{0161}'
                | '\u{203A}'
                | '\u{0153}'
                | '\u{017E}'
                | '\u{0178}'
        )
}

/// Makes `s` showable in Helvetica: control characters become spaces, and characters
/// outside WinAnsi follow `policy`. Adds the number of replaced characters to `replaced`.
pub(crate) fn sanitize(
    s: &str,
    policy: Unencodable,
    replaced: &mut u64,
) -> Result<String, PdfError> {
    if s.chars().all(win_ansi) {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if win_ansi(c) {
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            match policy {
                Unencodable::Codepoint => {
                    *replaced += 1;
                    out.push_str(&format!("<U+{:04X}>", c as u32));
                }
                Unencodable::Replace => {
                    *replaced += 1;
                    out.push('?');
                }
                Unencodable::Fail => {
                    return Err(PdfError::Unencodable {
                        character: c,
                        text: s.chars().take(60).collect(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Helvetica advance widths (1/1000 em) for ASCII 0x20..=0x7E, from Adobe's AFM.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584,
    556, // '0'..'?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722,
    778, // '@'..'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
    556, // 'P'..'_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556,
    556, // '`'..'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p'..'~'
];

/// Helvetica-Bold advance widths for ASCII 0x20..=0x7E.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, //
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, //
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, //
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, //
];

fn char_width(c: char, bold: bool) -> u16 {
    let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
    match c as u32 {
        cp @ 0x20..=0x7E => table[(cp - 0x20) as usize],
        // Latin-1 letters are close to their base letters; 556 is Helvetica's typical width.
        _ => 556,
    }
}

/// Width of `s` in points at `size`.
pub(crate) fn width(s: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = s.chars().map(|c| u32::from(char_width(c, bold))).sum();
    units as f32 * size / 1000.0
}

/// `s` cut to fit `max` points, ending in `...` when cut.
pub(crate) fn fit(s: &str, size: f32, bold: bool, max: f32) -> String {
    if width(s, size, bold) <= max {
        return s.to_owned();
    }
    let ellipsis = width("...", size, bold);
    let mut used = 0.0;
    let mut out = String::new();
    for c in s.chars() {
        let w = f32::from(char_width(c, bold)) * size / 1000.0;
        if used + w + ellipsis > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_applied() {
        let mut n = 0;
        assert_eq!(
            sanitize("caf\u{e9} (ok)", Unencodable::Codepoint, &mut n).ok(),
            Some("caf\u{e9} (ok)".to_owned())
        );
        assert_eq!(
            sanitize("\u{4e2d}x\n", Unencodable::Codepoint, &mut n).ok(),
            Some("<U+4E2D>x ".to_owned())
        );
        assert_eq!(
            sanitize("a\u{1F600}", Unencodable::Replace, &mut n).ok(),
            Some("a?".to_owned())
        );
        assert_eq!(n, 2);
        assert!(sanitize("\u{4e2d}", Unencodable::Fail, &mut n).is_err());
    }

    #[test]
    fn fitting() {
        assert_eq!(fit("short", 9.0, false, 100.0), "short");
        let cut = fit("a much longer piece of text than fits", 9.0, false, 60.0);
        assert!(
            cut.ends_with("...") && width(&cut, 9.0, false) <= 60.0,
            "{cut}"
        );
    }
}
