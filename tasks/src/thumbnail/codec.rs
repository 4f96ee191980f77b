//! PNG, WebP and GIF through the `image` crate: header-first decoding and PNG/WebP encoding.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::{WebPDecoder, WebPEncoder};
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder};

use super::raster::Raster;
use super::{Format, Limits, SourceFormat, ThumbnailError};

/// The decoders' own allocation cap never goes below this (ancillary chunks, palettes).
const MIN_ALLOC: u64 = 512 * 1024 * 1024;

/// Decodes the first frame after checking the declared size against `limits`.
///
/// Returns the raster (RGB, or RGBA when the image has alpha) and its EXIF orientation.
pub(crate) fn decode(
    bytes: &[u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<(Raster, Orientation), ThumbnailError> {
    let cursor = Cursor::new(bytes);
    match format {
        SourceFormat::Png => {
            let d = image::codecs::png::PngDecoder::new(cursor)
                .map_err(|e| ThumbnailError::undecodable(format, e))?;
            decode_with(d, format, limits)
        }
        SourceFormat::Gif => {
            let d = GifDecoder::new(cursor).map_err(|e| ThumbnailError::undecodable(format, e))?;
            decode_with(d, format, limits)
        }
        SourceFormat::WebP => {
            let d = WebPDecoder::new(cursor).map_err(|e| ThumbnailError::undecodable(format, e))?;
            decode_with(d, format, limits)
        }
        SourceFormat::Jpeg => Err(ThumbnailError::undecodable(
            format,
            "jpeg is decoded by libjpeg-turbo",
        )),
    }
}

fn decode_with(
    mut d: impl ImageDecoder,
    format: SourceFormat,
    limits: &Limits,
) -> Result<(Raster, Orientation), ThumbnailError> {
    let undecodable = |e: image::ImageError| ThumbnailError::undecodable(format, e);
    let (width, height) = d.dimensions();
    limits.check_pixels(width, height)?;
    if width == 0 || height == 0 {
        return Err(ThumbnailError::undecodable(format, "zero image dimension"));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(MIN_ALLOC));
    d.set_limits(decoder_limits).map_err(undecodable)?;
    let orientation = d.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(d).map_err(undecodable)?;
    let raster = if img.color().has_alpha() {
        let img = img.into_rgba8();
        Raster {
            width: img.width(),
            height: img.height(),
            channels: 4,
            data: img.into_raw(),
        }
    } else {
        let img = img.into_rgb8();
        Raster {
            width: img.width(),
            height: img.height(),
            channels: 3,
            data: img.into_raw(),
        }
    };
    Ok((raster, orientation))
}

fn color_type(raster: &Raster) -> ExtendedColorType {
    if raster.channels == 4 {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    }
}

/// Encodes as PNG, keeping alpha when the raster has it; no metadata chunks are written.
pub(crate) fn encode_png(raster: &Raster) -> Result<Vec<u8>, ThumbnailError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            &raster.data,
            raster.width,
            raster.height,
            color_type(raster),
        )
        .map_err(|e| ThumbnailError::encode(Format::Png, e))?;
    Ok(out)
}

/// Encodes as lossless WebP, keeping alpha when the raster has it.
pub(crate) fn encode_webp(raster: &Raster) -> Result<Vec<u8>, ThumbnailError> {
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out)
        .encode(
            &raster.data,
            raster.width,
            raster.height,
            color_type(raster),
        )
        .map_err(|e| ThumbnailError::encode(Format::WebP, e))?;
    Ok(out)
}
