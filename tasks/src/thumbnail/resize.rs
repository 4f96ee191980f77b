//! Lanczos3 convolution resize with SIMD (`fast_image_resize`), alpha-aware.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, MulDiv, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::geometry::Crop;
use super::raster::Raster;
use super::{Format, ThumbnailError};

/// Resizes the `crop` region of `src` to `width` x `height` (for a `format` thumbnail, named
/// in errors).
///
/// `crop` is in `src` pixels. RGBA is premultiplied for the filter and back, so transparent
/// pixels do not bleed their colour into opaque ones. The source is premultiplied in place
/// (it is not used afterwards): the resizer's own premultiply would copy the whole source,
/// doubling the peak memory of a large RGBA image.
pub(crate) fn resize(
    mut src: Raster,
    crop: Crop,
    width: u32,
    height: u32,
    format: Format,
) -> Result<Raster, ThumbnailError> {
    if src.width == width && src.height == height && crop.is_full(src.width, src.height) {
        return Ok(src);
    }
    // A failure here means inconsistent sizes, a bug; report it rather than panic.
    let err = |e: &dyn std::fmt::Display| ThumbnailError::Encode {
        format,
        reason: format!("resize: {e}"),
    };
    let pixel_type = if src.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let alpha = src.channels == 4;
    let mul_div = MulDiv::default();
    if alpha {
        let mut view = Image::from_slice_u8(src.width, src.height, &mut src.data, pixel_type)
            .map_err(|e| err(&e))?;
        mul_div
            .multiply_alpha_inplace(&mut view)
            .map_err(|e| err(&e))?;
    }
    let src_view =
        ImageRef::new(src.width, src.height, &src.data, pixel_type).map_err(|e| err(&e))?;
    let mut dst = Image::new(width, height, pixel_type);
    // The crop is computed in floating point (and rescaled after a shrunk decode); keep
    // rounding error from pushing it a hair outside the image, which the resizer rejects.
    let (w, h) = (f64::from(src.width), f64::from(src.height));
    let left = crop.left.clamp(0.0, w - 1.0);
    let top = crop.top.clamp(0.0, h - 1.0);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(false)
        .crop(
            left,
            top,
            crop.width.min(w - left),
            crop.height.min(h - top),
        );
    Resizer::new()
        .resize(&src_view, &mut dst, &options)
        .map_err(|e| err(&e))?;
    if alpha {
        mul_div
            .divide_alpha_inplace(&mut dst)
            .map_err(|e| err(&e))?;
    }
    Ok(Raster {
        width,
        height,
        channels: src.channels,
        data: dst.into_vec(),
    })
}
