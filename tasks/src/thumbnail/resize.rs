//! Lanczos3 convolution resize with SIMD (`fast_image_resize`), alpha-aware.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::geometry::Crop;
use super::raster::Raster;
use super::{Format, ThumbnailError};

/// Resizes the `crop` region of `src` to `width` x `height`.
///
/// `crop` is in `src` pixels. RGBA is premultiplied for the filter and back, so transparent
/// pixels do not bleed their colour into opaque ones.
pub(crate) fn resize(
    src: Raster,
    crop: Crop,
    width: u32,
    height: u32,
) -> Result<Raster, ThumbnailError> {
    if src.width == width && src.height == height && crop.is_full(src.width, src.height) {
        return Ok(src);
    }
    // A failure here means inconsistent sizes, a bug; report it rather than panic.
    let err = |e: &dyn std::fmt::Display| ThumbnailError::Encode {
        format: Format::Jpeg,
        reason: format!("resize: {e}"),
    };
    let pixel_type = if src.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let src_view =
        ImageRef::new(src.width, src.height, &src.data, pixel_type).map_err(|e| err(&e))?;
    let mut dst = Image::new(width, height, pixel_type);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(crop.left, crop.top, crop.width, crop.height);
    Resizer::new()
        .resize(&src_view, &mut dst, &options)
        .map_err(|e| err(&e))?;
    Ok(Raster {
        width,
        height,
        channels: src.channels,
        data: dst.into_vec(),
    })
}
