//! Pure Rust on the default build: `jpeg-decoder` for lossless JPEG, `jpeg-encoder` for
//! every JPEG output.

use std::panic::{self, AssertUnwindSafe};

use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::super::raster::Raster;
use super::super::{Format, ThumbnailError};
use super::{Header, cmyk_to_rgb, corrupt};

/// Runs the decoder, which is not ours, so that even a panic inside it on some malformed file
/// comes back as the typed error every other bad file gets.
fn guarded<T>(
    decode: impl FnOnce() -> Result<T, jpeg_decoder::Error>,
) -> Result<T, ThumbnailError> {
    match panic::catch_unwind(AssertUnwindSafe(decode)) {
        Ok(result) => result.map_err(corrupt),
        Err(_) => Err(corrupt("the decoder failed on malformed data")),
    }
}

pub(super) fn read_header(bytes: &[u8]) -> Result<Header, ThumbnailError> {
    let mut d = Decoder::new(bytes);
    guarded(|| d.read_info())?;
    let info = d.info().ok_or_else(|| corrupt("no frame header"))?;
    let lossless = info.coding_process == CodingProcess::Lossless;
    Header::new(bytes, info.width.into(), info.height.into(), lossless)
}

/// Decodes to RGB at 1/`denom` scale (1, 2, 4 or 8), sides rounded up.
pub(super) fn decode(bytes: &[u8], header: &Header, denom: u32) -> Result<Raster, ThumbnailError> {
    let mut d = Decoder::new(bytes);
    let want = |side: u32| u16::try_from(side.div_ceil(denom)).map_err(corrupt);
    // The decoder picks the smallest of 1/8, 1/4, 1/2, 1 that reaches the size asked for.
    let (want_w, want_h) = (want(header.width)?, want(header.height)?);
    let ((width, height), pixels) = guarded(|| Ok((d.scale(want_w, want_h)?, d.decode()?)))?;
    let info = d.info().ok_or_else(|| corrupt("no frame header"))?;
    let (width, height) = (u32::from(width), u32::from(height));
    let rgb = match info.pixel_format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::CMYK32 => cmyk_to_rgb(&pixels, false),
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        // Lossless grey of 9-16 bits: the decoder does not say how many, so no guessing.
        PixelFormat::L16 => return Err(corrupt("grey samples over 8 bits are not supported")),
    };
    let expected = (width as usize) * (height as usize) * 3;
    if rgb.len() != expected {
        return Err(corrupt("decoded size does not match the header"));
    }
    let raster = Raster {
        width,
        height,
        channels: 3,
        data: rgb,
    };
    Ok(raster)
}

/// Encodes packed RGB as a baseline 4:2:0 JPEG; the output carries no metadata.
pub(crate) fn encode(raster: &Raster, quality: u8) -> Result<Vec<u8>, ThumbnailError> {
    let err = |e: jpeg_encoder::EncodingError| ThumbnailError::encode(Format::Jpeg, e);
    let side = |v: u32| {
        u16::try_from(v).map_err(|_| ThumbnailError::encode(Format::Jpeg, "side over 65535"))
    };
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder
        .encode(
            &raster.data,
            side(raster.width)?,
            side(raster.height)?,
            ColorType::Rgb,
        )
        .map_err(err)?;
    Ok(out)
}
