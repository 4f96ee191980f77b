//! PNG decoding straight into the 8-bit raster, with every side allocation bounded.
//
// Implementation: `image`'s PNG decoder is built without limits, inflates `iCCP` whatever
// its size, and decodes 16-bit images at 16 bits before a second 8-bit copy. Here the `png`
// crate skips the ancillary chunks the thumbnail never uses (`iCCP`, `tEXt`, `zTXt`,
// `iTXt`), strips 16-bit samples row by row while decoding, and writes into the one buffer
// the raster keeps; grey input is widened to RGB in place, back to front.

use std::io::Cursor;

use image::metadata::Orientation;

use super::super::raster::Raster;
use super::super::{Limits, SourceFormat, ThumbnailError};

/// What the `png` crate may allocate besides the pixels: one ancillary chunk (`eXIf`, a
/// palette) and its row buffers. A 65535-pixel-wide 16-bit RGBA row is 512 KiB.
const SIDE_BYTES: usize = 16 * 1024 * 1024;

fn undecodable(e: impl ToString) -> ThumbnailError {
    ThumbnailError::undecodable(SourceFormat::Png, e)
}

/// Decodes the first frame; returns the RGB or RGBA raster and the `eXIf` orientation.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Raster, Orientation), ThumbnailError> {
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: SIDE_BYTES });
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_ignore_text_chunk(true);
    let header = decoder.read_header_info().map_err(undecodable)?;
    let (width, height) = (header.width, header.height);
    limits.check_pixels(width, height)?;
    if width == 0 || height == 0 {
        return Err(undecodable("zero image dimension"));
    }
    // Palettes become RGB(A), `tRNS` becomes alpha, 16-bit samples keep their high byte.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(undecodable)?;
    let (color, _) = reader.output_color_type();
    let (decoded_channels, channels) = match color {
        png::ColorType::Grayscale => (1, 3),
        png::ColorType::GrayscaleAlpha => (2, 4),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (4, 4),
        png::ColorType::Indexed => return Err(undecodable("palette left unexpanded")),
    };
    let pixels = width as usize * height as usize;
    let decoded_len = reader
        .output_buffer_size()
        .filter(|&n| n == pixels * decoded_channels)
        .ok_or_else(|| undecodable("unexpected output row size"))?;
    let mut data = vec![0u8; pixels * channels];
    reader
        .next_frame(&mut data[..decoded_len])
        .map_err(undecodable)?;
    widen_in_place(&mut data, decoded_channels, channels);
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let raster = Raster {
        width,
        height,
        channels,
        data,
    };
    Ok((raster, orientation))
}

/// Turns grey (1 byte a pixel) into RGB, or grey+alpha (2) into RGBA, in the same buffer.
///
/// The decoded pixels fill the front of `data`; walking from the last pixel down, each
/// write lands at or after the pixel it reads, so nothing is overwritten before it is read.
fn widen_in_place(data: &mut [u8], from: usize, to: usize) {
    if from == to {
        return;
    }
    let pixels = data.len() / to;
    for i in (0..pixels).rev() {
        let grey = data[i * from];
        let alpha = (from == 2).then(|| data[i * from + 1]);
        data[i * to..i * to + 3].fill(grey);
        if let Some(a) = alpha {
            data[i * to + 3] = a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_grey_and_grey_alpha() {
        let mut grey = vec![1, 2, 0, 0, 0, 0];
        widen_in_place(&mut grey, 1, 3);
        assert_eq!(grey, [1, 1, 1, 2, 2, 2]);
        let mut ga = vec![1, 10, 2, 20, 0, 0, 0, 0];
        widen_in_place(&mut ga, 2, 4);
        assert_eq!(ga, [1, 1, 1, 10, 2, 2, 2, 20]);
    }
}
