//! JPEG through libjpeg-turbo: header and EXIF reading, DCT-domain shrink-on-load, encoding.

use image::metadata::Orientation;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use super::raster::Raster;
use super::{Format, SourceFormat, ThumbnailError};

/// How much larger than the output the shrunk decode must stay, per axis.
///
/// The DCT-domain shrink is a box-like filter; leaving the last factor of two to the Lanczos3
/// resize keeps the result within a fraction of a dB of a full-resolution Lanczos3 (libvips and
/// sharp leave the same headroom).
const HEADROOM: f64 = 2.0;

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
    cmyk: bool,
}

pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, ThumbnailError> {
    let mut d = Decompressor::new().map_err(corrupt)?;
    let h = d.read_header(bytes).map_err(corrupt)?;
    let width = u32::try_from(h.width).map_err(corrupt)?;
    let height = u32::try_from(h.height).map_err(corrupt)?;
    if width == 0 || height == 0 {
        return Err(corrupt("zero image dimension"));
    }
    Ok(Header {
        width,
        height,
        orientation: exif_orientation(bytes).unwrap_or(Orientation::NoTransforms),
        lossless: h.is_lossless,
        cmyk: matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK),
    })
}

/// Decodes at the smallest power-of-two DCT scale that still leaves [`HEADROOM`] over an
/// output of `out_w` x `out_h` cut from a `crop_w` x `crop_h` region of the stored image.
///
/// Returns the decoded RGB raster, whose size is the stored size times the chosen scale.
pub(crate) fn decode_scaled(
    bytes: &[u8],
    header: &Header,
    (crop_w, crop_h): (f64, f64),
    (out_w, out_h): (u32, u32),
) -> Result<Raster, ThumbnailError> {
    let mut scale = ScalingFactor::ONE;
    if !header.lossless {
        for candidate in [
            ScalingFactor::ONE_HALF,
            ScalingFactor::ONE_QUARTER,
            ScalingFactor::ONE_EIGHTH,
        ] {
            let factor = candidate.num() as f64 / candidate.denom() as f64;
            if crop_w * factor >= HEADROOM * f64::from(out_w)
                && crop_h * factor >= HEADROOM * f64::from(out_h)
            {
                scale = candidate;
            }
        }
    }
    let mut d = Decompressor::new().map_err(corrupt)?;
    d.set_scaling_factor(scale).map_err(corrupt)?;
    d.set_scan_limit(SCAN_LIMIT).map_err(corrupt)?;
    let width = scale.scale(header.width as usize);
    let height = scale.scale(header.height as usize);
    let format = if header.cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let pitch = width * format.size();
    let len = pitch
        .checked_mul(height)
        .ok_or_else(|| corrupt("image too large"))?;
    let mut pixels = vec![0u8; len];
    d.decompress(
        bytes,
        Image {
            pixels: pixels.as_mut_slice(),
            width,
            pitch,
            height,
            format,
        },
    )
    .map_err(corrupt)?;
    if header.cmyk {
        pixels = cmyk_to_rgb(&pixels);
    }
    Ok(Raster {
        width: u32::try_from(width).map_err(corrupt)?,
        height: u32::try_from(height).map_err(corrupt)?,
        channels: 3,
        data: pixels,
    })
}

/// CMYK JPEGs are written by Adobe software with inverted values, so ink-free is 255.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = u32::from(px[3]);
        for &c in &px[..3] {
            out.push(((u32::from(c) * k + 127) / 255) as u8);
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
        if marker == 0xE1 {
            if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
                return Orientation::from_exif_chunk(tiff);
            }
        }
        at += len;
    }
}

/// Encodes packed RGB as a baseline 4:2:0 JPEG; the output carries no metadata.
pub(crate) fn encode(raster: &Raster, quality: u8) -> Result<Vec<u8>, ThumbnailError> {
    let err = |e: turbojpeg::Error| ThumbnailError::encode(Format::Jpeg, e);
    let mut c = Compressor::new().map_err(err)?;
    c.set_quality(i32::from(quality)).map_err(err)?;
    c.set_subsamp(Subsamp::Sub2x2).map_err(err)?;
    let width = raster.width as usize;
    c.compress_to_vec(Image {
        pixels: raster.data.as_slice(),
        width,
        pitch: width * 3,
        height: raster.height as usize,
        format: PixelFormat::RGB,
    })
    .map_err(err)
}
