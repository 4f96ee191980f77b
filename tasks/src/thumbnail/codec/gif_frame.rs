//! A walk over a GIF's blocks up to its first image, so a frame is checked before decoding.
//
// Implementation: a GIF header can declare a 65535x65535 frame and carry five bytes of
// image data; `image` allocates the whole canvas and frame before the LZW decoder notices.
// LZW output is bounded by its input: the i-th code after a clear expands to at most i + 1
// pixels, never more than the 4096 entries of the code table, and a code is at least 2
// bits. So the data bytes bound the pixels they can hold, and a frame that declares more is
// truncated, which is known from the block structure alone.

use super::super::{Limits, SourceFormat, ThumbnailError};

/// The first image descriptor, and how many bytes of LZW data follow it.
#[derive(Debug, PartialEq, Eq)]
struct FirstFrame {
    width: u16,
    height: u16,
    data_bytes: u64,
}

/// Checks the first frame's size against `limits` and against the data it carries.
///
/// A file whose block structure does not parse is left to the decoder, which names the fault.
pub(crate) fn check_first_frame(bytes: &[u8], limits: &Limits) -> Result<(), ThumbnailError> {
    let Some(frame) = first_frame(bytes) else {
        return Ok(());
    };
    limits.check_pixels(frame.width.into(), frame.height.into())?;
    let pixels = u64::from(frame.width) * u64::from(frame.height);
    if pixels > max_lzw_output(frame.data_bytes) {
        return Err(ThumbnailError::undecodable(
            SourceFormat::Gif,
            format!(
                "first frame declares {}x{} pixels but carries only {} bytes of image data",
                frame.width, frame.height, frame.data_bytes
            ),
        ));
    }
    Ok(())
}

/// The most pixels `bytes` of LZW data can expand to (see the implementation note).
fn max_lzw_output(bytes: u64) -> u64 {
    const TABLE: u64 = 4096;
    let codes = bytes.saturating_mul(8) / 2;
    if codes < TABLE {
        codes * (codes + 3) / 2
    } else {
        let ramp = (TABLE - 1) * (TABLE + 2) / 2;
        ramp.saturating_add((codes - (TABLE - 1)).saturating_mul(TABLE))
    }
}

/// Reads the logical screen, skips colour tables and extensions, and sums the data
/// sub-blocks of the first image. `None` when the structure ends or breaks first.
fn first_frame(bytes: &[u8]) -> Option<FirstFrame> {
    let u16_at = |at: usize| Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
    let table_len = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let mut pos = 13 + table_len(*bytes.get(10)?);
    loop {
        match *bytes.get(pos)? {
            0x21 => pos = skip_sub_blocks(bytes, pos + 2)?.0,
            0x2C => {
                let width = u16_at(pos + 5)?;
                let height = u16_at(pos + 7)?;
                // Descriptor (10 bytes), local colour table, LZW minimum code size (1 byte).
                let data = pos + 10 + table_len(*bytes.get(pos + 9)?) + 1;
                let data_bytes = skip_sub_blocks(bytes, data).map_or_else(
                    // Truncated inside the data: count what is there.
                    || bytes.len().saturating_sub(data) as u64,
                    |(_, total)| total,
                );
                return Some(FirstFrame {
                    width,
                    height,
                    data_bytes,
                });
            }
            _ => return None,
        }
    }
}

/// Skips data sub-blocks starting at `pos`; returns the position after the terminator and
/// the payload bytes, or `None` if the input ends first.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Option<(usize, u64)> {
    let mut total = 0u64;
    loop {
        let len = usize::from(*bytes.get(pos)?);
        pos += 1;
        if len == 0 {
            return Some((pos, total));
        }
        total += len as u64;
        pos += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzw_bound_grows_with_the_table_then_linearly() {
        assert_eq!(max_lzw_output(0), 0);
        // One byte holds at most four 2-bit codes: 2 + 3 + 4 + 5 pixels.
        assert_eq!(max_lzw_output(1), 14);
        let full = max_lzw_output(1024);
        assert_eq!(max_lzw_output(1025) - full, 4 * 4096);
    }

    #[test]
    fn finds_the_first_frame_after_extensions() {
        let mut gif = b"GIF89a\x10\x00\x08\x00\x80\x00\x00".to_vec();
        gif.extend_from_slice(&[0; 6]); // 2-entry global colour table
        gif.extend_from_slice(b"\x21\xF9\x04\x00\x00\x00\x00\x00"); // graphic control
        gif.extend_from_slice(b"\x2C\x00\x00\x00\x00\x10\x00\x08\x00\x00\x02");
        gif.extend_from_slice(b"\x03abc\x02de\x00\x3B");
        assert_eq!(
            first_frame(&gif),
            Some(FirstFrame {
                width: 16,
                height: 8,
                data_bytes: 5
            })
        );
        assert_eq!(first_frame(&gif[..20]), None);
    }
}
