//! PNG, WebP and GIF: header-first decoding within the memory budget, PNG/WebP encoding.

mod gif_frame;
mod png_decode;
mod webp_canvas;

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPDecoder;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder};

use super::raster::Raster;
use super::{Format, Limits, SourceFormat, ThumbnailError};

/// Decodes the first frame after checking the declared sizes against `limits`.
///
/// Returns the raster (RGB, or RGBA when the image has alpha) and its EXIF orientation.
/// The pixel buffers held at once stay within the budget in [`Limits`]' docs.
pub(crate) fn decode(
    bytes: &[u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<(Raster, Orientation), ThumbnailError> {
    let cursor = Cursor::new(bytes);
    match format {
        SourceFormat::Png => png_decode::decode(bytes, limits),
        SourceFormat::Gif => {
            let d = GifDecoder::new(cursor).map_err(|e| ThumbnailError::undecodable(format, e))?;
            decode_with(d, format, limits, || {
                gif_frame::check_first_frame(bytes, limits)
            })
        }
        SourceFormat::WebP => {
            let d = WebPDecoder::new(cursor).map_err(|e| ThumbnailError::undecodable(format, e))?;
            decode_with(d, format, limits, || {
                webp_canvas::check_canvas(bytes, limits)
            })
        }
        SourceFormat::Jpeg => Err(ThumbnailError::undecodable(
            format,
            "jpeg is decoded by libjpeg-turbo",
        )),
    }
}

/// Decodes through `image` once the declared size passes `limits` and then `check`, the
/// format's own header checks.
fn decode_with(
    mut d: impl ImageDecoder,
    format: SourceFormat,
    limits: &Limits,
    check: impl FnOnce() -> Result<(), ThumbnailError>,
) -> Result<(Raster, Orientation), ThumbnailError> {
    let undecodable = |e: image::ImageError| ThumbnailError::undecodable(format, e);
    let (width, height) = d.dimensions();
    limits.check_pixels(width, height)?;
    if width == 0 || height == 0 {
        return Err(ThumbnailError::undecodable(format, "zero image dimension"));
    }
    check()?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.decode_budget());
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

/// Encodes as lossy WebP at `quality`, keeping alpha when the raster has it.
pub(crate) fn encode_webp(raster: &Raster, quality: u8) -> Result<Vec<u8>, ThumbnailError> {
    // The encoder checks that the buffer holds width x height pixels, which a Raster does.
    let encoder = if raster.channels == 4 {
        webp::Encoder::from_rgba(&raster.data, raster.width, raster.height)
    } else {
        webp::Encoder::from_rgb(&raster.data, raster.width, raster.height)
    };
    let memory = encoder
        .encode_simple(false, f32::from(quality))
        .map_err(|e| ThumbnailError::encode(Format::WebP, format!("{e:?}")))?;
    Ok(memory.to_vec())
}
