//! The libjpeg-turbo backend (feature `turbojpeg`).
//!
//! It shrinks on load like the default backend: `decode` gets the DCT scale that
//! `jpeg::shrink` picks for both, so at 1/8 the work is mostly Huffman decoding, which SIMD
//! does not speed up (see the README's thumbnail tables).

use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use super::super::raster::Raster;
use super::super::{Format, ThumbnailError};
use super::{Header, SCAN_LIMIT, cmyk_to_rgb, corrupt};

/// libjpeg-turbo 3 decodes lossless files itself, so `_lossless` picks nothing here.
pub(super) fn read_header(bytes: &[u8], _lossless: bool) -> Result<Header, ThumbnailError> {
    let mut d = Decompressor::new().map_err(corrupt)?;
    let h = d.read_header(bytes).map_err(corrupt)?;
    let mut header = Header::new(bytes, h.width, h.height, h.is_lossless)?;
    header.cmyk = matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    Ok(header)
}

/// Decodes to RGB at 1/`denom` scale (1, 2, 4 or 8), sides rounded up.
pub(super) fn decode(bytes: &[u8], header: &Header, denom: u32) -> Result<Raster, ThumbnailError> {
    let scale = match denom {
        2 => ScalingFactor::ONE_HALF,
        4 => ScalingFactor::ONE_QUARTER,
        8 => ScalingFactor::ONE_EIGHTH,
        _ => ScalingFactor::ONE,
    };
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
        pixels = cmyk_to_rgb(&pixels, true);
    }
    let raster = Raster {
        width: u32::try_from(width).map_err(corrupt)?,
        height: u32::try_from(height).map_err(corrupt)?,
        channels: 3,
        data: pixels,
    };
    Ok(raster)
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
