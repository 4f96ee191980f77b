//! A walk over an extended WebP's chunks, so the canvas is checked before decoding.
//
// Implementation: a VP8X header declares a canvas apart from the image inside it. For a
// still image `image` allocates the canvas-sized output before the image chunk is found to
// be a different size; for an animation the decoder keeps its own canvas and a frame buffer
// besides the output. Both are checked here from the chunk headers alone.

use super::super::{Limits, SourceFormat, ThumbnailError};

/// The size an extended WebP declares, and the size of its still image if it has one.
#[derive(Debug, PartialEq, Eq)]
struct Extended {
    canvas: (u32, u32),
    animated: bool,
    /// The VP8 or VP8L bitstream's own size; `None` for an animation or a missing chunk.
    image: Option<(u32, u32)>,
}

/// Checks an extended WebP's canvas against its image and, for an animation, against half
/// of [`Limits::max_pixels`]: the decoder holds its canvas, the output and a frame at once.
///
/// A simple (non-VP8X) file or one whose chunks do not parse is left to the decoder.
pub(crate) fn check_canvas(bytes: &[u8], limits: &Limits) -> Result<(), ThumbnailError> {
    let Some(ext) = extended(bytes) else {
        return Ok(());
    };
    let (w, h) = ext.canvas;
    if ext.animated {
        let half = Limits {
            max_pixels: limits.max_pixels / 2,
            ..*limits
        };
        return half.check_pixels(w, h);
    }
    match ext.image {
        Some(image) if image != ext.canvas => Err(ThumbnailError::undecodable(
            SourceFormat::WebP,
            format!("image is {}x{} but its canvas is {w}x{h}", image.0, image.1),
        )),
        _ => Ok(()),
    }
}

fn extended(bytes: &[u8]) -> Option<Extended> {
    let u24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let mut chunks = chunks(bytes);
    let (fourcc, vp8x) = chunks.next()?;
    if fourcc != b"VP8X" || vp8x.len() < 10 {
        return None;
    }
    let canvas = (u24(&vp8x[4..7]) + 1, u24(&vp8x[7..10]) + 1);
    let animated = vp8x[0] & 0x02 != 0;
    let image = if animated {
        None
    } else {
        chunks.find_map(|(fourcc, payload)| bitstream_size(fourcc, payload))
    };
    Some(Extended {
        canvas,
        animated,
        image,
    })
}

/// The width and height a VP8 (lossy) or VP8L (lossless) bitstream header declares.
fn bitstream_size(fourcc: &[u8], payload: &[u8]) -> Option<(u32, u32)> {
    match fourcc {
        b"VP8 " => {
            let b = payload.get(6..10)?;
            let side = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi]) & 0x3FFF);
            Some((side(b[0], b[1]), side(b[2], b[3])))
        }
        b"VP8L" => {
            let b = payload.get(1..5)?;
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => None,
    }
}

/// The RIFF chunks after the `RIFF....WEBP` header: fourcc and payload, until the data ends.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 12;
    std::iter::from_fn(move || {
        let header = bytes.get(pos..pos + 8)?;
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let start = pos + 8;
        let payload = bytes.get(start..start.checked_add(len)?)?;
        pos = start + len + (len & 1);
        Some((&header[..4], payload))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RIFF....WEBP`, a VP8X chunk declaring `w` x `h` with `flags`, then `rest`.
    fn vp8x(flags: u8, w: u32, h: u32, rest: &[u8]) -> Vec<u8> {
        let mut payload = vec![flags, 0, 0, 0];
        payload.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        payload.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        let mut out = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        out.extend_from_slice(&10u32.to_le_bytes());
        out.extend(payload);
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn animation_canvas_must_fit_half_the_pixel_limit() {
        let anmf = b"ANMF\x18\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let limits = Limits {
            max_pixels: 1000,
            ..Limits::default()
        };
        assert_eq!(
            check_canvas(&vp8x(0x02, 40, 20, anmf), &limits),
            Err(ThumbnailError::TooManyPixels {
                width: 40,
                height: 20,
                max: 500
            })
        );
        assert_eq!(check_canvas(&vp8x(0x02, 25, 20, anmf), &limits), Ok(()));
    }

    #[test]
    fn still_image_must_match_its_canvas() {
        // A VP8L header declaring 3x2: 14-bit width - 1, 14-bit height - 1.
        let bits: u32 = 2 | (1 << 14);
        let mut vp8l = b"VP8L\x05\0\0\0\x2f".to_vec();
        vp8l.extend_from_slice(&bits.to_le_bytes());
        vp8l.push(0); // padding to an even length
        let limits = Limits::default();
        assert_eq!(check_canvas(&vp8x(0, 3, 2, &vp8l), &limits), Ok(()));
        let result = check_canvas(&vp8x(0, 300, 2, &vp8l), &limits);
        assert!(
            result.as_ref().is_err_and(|e| e.is_undecodable()),
            "{result:?}"
        );
        // Not extended: left to the decoder.
        assert_eq!(check_canvas(b"RIFF\0\0\0\0WEBPVP8L", &limits), Ok(()));
    }
}
