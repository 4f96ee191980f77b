//! JPEG: header and EXIF reading, DCT-domain shrink-on-load, encoding.
//!
//! Two backends with the same three functions: libjpeg-turbo (feature `turbojpeg`, fastest,
//! needs cmake and nasm to build) and pure Rust (`jpeg-decoder`, `jpeg-encoder`), the
//! default, so that a machine with only Rust builds the crate.

use image::metadata::Orientation;

use super::raster::Raster;
use super::{SourceFormat, ThumbnailError};

#[cfg(not(feature = "turbojpeg"))]
mod pure;
#[cfg(feature = "turbojpeg")]
mod turbo;

#[cfg(not(feature = "turbojpeg"))]
use pure as backend;
#[cfg(feature = "turbojpeg")]
use turbo as backend;

pub(crate) use backend::{encode, read_header};

/// How much larger than the output the shrunk decode must stay, per axis.
///
/// The DCT-domain shrink is a box-like filter, so the last step is left to Lanczos3. Measured
/// against a Lanczos3 of the full decode (tests/thumbnail_quality.rs), 1920x1280 into 256 px:
/// headroom 2 decodes at 1/2 and gives 55.6 dB, 1.5 decodes at 1/4 and gives 51.8 dB in 14%
/// less time. (sharp's default `fastShrinkOnLoad` shrinks as far as the output size allows.)
const HEADROOM: f64 = 1.5;

/// More scans than this is not a real photo but a CPU bomb (a progressive file can repeat
/// scans over the whole image); libjpeg-turbo's own fuzzers use the same guard.
const SCAN_LIMIT: u32 = 500;

fn corrupt(e: impl ToString) -> ThumbnailError {
    ThumbnailError::undecodable(SourceFormat::Jpeg, e)
}

/// What the header says, read without touching the entropy-coded data.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) orientation: Orientation,
    lossless: bool,
    #[cfg(feature = "turbojpeg")]
    cmyk: bool,
}

/// The shrink-on-load denominator (1, 2, 4 or 8): the largest that still leaves
/// [`HEADROOM`] over an output of `out_w` x `out_h` cut from a `crop_w` x `crop_h` region of
/// the stored image. Lossless JPEG has no DCT to shrink in.
fn shrink(header: &Header, (crop_w, crop_h): (f64, f64), (out_w, out_h): (u32, u32)) -> u32 {
    if header.lossless {
        return 1;
    }
    [2, 4, 8]
        .into_iter()
        .take_while(|&d| {
            let factor = 1.0 / f64::from(d);
            crop_w * factor >= HEADROOM * f64::from(out_w)
                && crop_h * factor >= HEADROOM * f64::from(out_h)
        })
        .last()
        .unwrap_or(1)
}

/// Decodes at the DCT scale [`shrink`] picks for an output of `out` cut from a `crop`
/// region of the stored image.
///
/// Returns the decoded RGB raster and the scale. The raster's size is the stored size times
/// the scale, rounded up: when a side is not a multiple of the DCT block, its last row or
/// column is a partial pixel, so the scale (not the raster size) maps source coordinates.
pub(crate) fn decode_scaled(
    bytes: &[u8],
    header: &Header,
    crop: (f64, f64),
    out: (u32, u32),
) -> Result<(Raster, f64), ThumbnailError> {
    let denom = shrink(header, crop, out);
    let raster = backend::decode(bytes, header, denom)?;
    Ok((raster, 1.0 / f64::from(denom)))
}

/// CMYK to RGB. Adobe software writes CMYK JPEGs with inverted values (ink-free is 255);
/// `inverted` says whether the samples are still that way (libjpeg-turbo hands them over as
/// stored, jpeg-decoder turns them back).
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let flip = if inverted { 0 } else { 255 };
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = u32::from(px[3] ^ flip);
        for &c in &px[..3] {
            out.push(((u32::from(c ^ flip) * k + 127) / 255) as u8);
        }
    }
    out
}

/// Finds the orientation tag in the first `APP1 Exif` segment, if any.
pub(crate) fn exif_orientation(bytes: &[u8]) -> Option<Orientation> {
    let mut at = 2; // after SOI
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        at += 2;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // Start of scan or end of image: metadata comes before, stop looking.
            0xDA | 0xD9 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        if len < 2 {
            return None;
        }
        let segment = bytes.get(at + 2..at + len)?;
        if marker == 0xE1
            && let Some(tiff) = segment.strip_prefix(b"Exif\0\0")
        {
            return Orientation::from_exif_chunk(tiff);
        }
        at += len;
    }
}
