//! Helpers for the thumbnail tests: fixtures, generated inputs, decoding and PSNR.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use offload_test_hostile::crc32;

/// Reads a committed fixture from `tasks/tests/fixtures/images`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Decodes any output (format sniffed by `image`) to RGBA.
pub(crate) fn decode(bytes: &[u8]) -> RgbaImage {
    image::load_from_memory(bytes).unwrap().into_rgba8()
}

/// The format `image` itself sniffs from the bytes.
pub(crate) fn sniffed(bytes: &[u8]) -> ImageFormat {
    image::guess_format(bytes).unwrap()
}

pub(crate) fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG of `img` at quality 95.
pub(crate) fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(img)
        .unwrap();
    out
}

/// Four flat quadrants, `w` x `h`: red top-left, green top-right, blue bottom-left,
/// white bottom-right. Any rotation or flip moves the colours to different corners.
pub(crate) fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| match (x < w / 2, y < h / 2) {
        (true, true) => Rgb([255, 0, 0]),
        (false, true) => Rgb([0, 255, 0]),
        (true, false) => Rgb([0, 0, 255]),
        (false, false) => Rgb([255, 255, 255]),
    })
}

/// What [`quadrant_names`] gives for [`quadrants`] shown the right way up.
pub(crate) const UPRIGHT: [&str; 4] = ["red", "green", "blue", "white"];

/// The nearest quadrant colour at the centre of each quadrant of a decoded output:
/// [top-left, top-right, bottom-left, bottom-right].
pub(crate) fn quadrant_names(bytes: &[u8]) -> [&'static str; 4] {
    quadrant_colours(&decode(bytes)).map(classify)
}

/// The colour at the centre of each quadrant: [top-left, top-right, bottom-left, bottom-right].
fn quadrant_colours(img: &RgbaImage) -> [[u8; 3]; 4] {
    let (w, h) = img.dimensions();
    let at = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        [p[0], p[1], p[2]]
    };
    [
        at(w / 4, h / 4),
        at(3 * w / 4, h / 4),
        at(w / 4, 3 * h / 4),
        at(3 * w / 4, 3 * h / 4),
    ]
}

/// Nearest of the four quadrant colours, to absorb JPEG error.
pub(crate) fn classify(c: [u8; 3]) -> &'static str {
    let named = [
        ("red", [255, 0, 0]),
        ("green", [0, 255, 0]),
        ("blue", [0, 0, 255]),
        ("white", [255, 255, 255]),
    ];
    let dist = |a: [u8; 3], b: [u8; 3]| {
        a.iter()
            .zip(b)
            .map(|(&x, y)| (i32::from(x) - i32::from(y)).pow(2))
            .sum::<i32>()
    };
    named.iter().min_by_key(|(_, v)| dist(c, *v)).unwrap().0
}

/// The stored image that a viewer applying `o` shows as `upright`.
pub(crate) fn stored_for(upright: &RgbImage, o: Orientation) -> RgbImage {
    let inverse = match o {
        Orientation::Rotate90 => Orientation::Rotate270,
        Orientation::Rotate270 => Orientation::Rotate90,
        other => other, // flips, half turn, transpose and transverse are their own inverse
    };
    let mut img = DynamicImage::ImageRgb8(upright.clone());
    img.apply_orientation(inverse);
    img.into_rgb8()
}

/// The byte order of a TIFF block: `MM` (Motorola) or `II` (Intel).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ByteOrder {
    Big,
    Little,
}

/// A TIFF block in `order` with one IFD0 entry: Orientation (0x0112) = `value`.
fn exif_tiff(value: u16, order: ByteOrder) -> Vec<u8> {
    let big = matches!(order, ByteOrder::Big);
    let u16_bytes = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32_bytes = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let magic: &[u8] = if big { b"MM\0\x2a" } else { b"II\x2a\0" };
    let mut t = magic.to_vec();
    t.extend_from_slice(&u32_bytes(8)); // IFD0 offset
    t.extend_from_slice(&u16_bytes(1)); // one entry
    t.extend_from_slice(&u16_bytes(0x0112)); // Orientation
    t.extend_from_slice(&u16_bytes(3)); // SHORT
    t.extend_from_slice(&u32_bytes(1)); // count
    t.extend_from_slice(&u16_bytes(value));
    t.extend_from_slice(&[0, 0]); // value padding
    t.extend_from_slice(&u32_bytes(0)); // no next IFD
    t
}

/// Inserts an `APP1 Exif` segment (big-endian TIFF) with the given orientation right after
/// SOI.
pub(crate) fn with_exif_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
    with_exif_orientation_in(jpeg, value, ByteOrder::Big)
}

/// [`with_exif_orientation`] with the TIFF block in `order`.
pub(crate) fn with_exif_orientation_in(jpeg: &[u8], value: u16, order: ByteOrder) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(exif_tiff(value, order));
    let len = u16::try_from(payload.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A `w` x `h` RGBA image: an opaque red disc on a fully transparent *black* background, so
/// compositing on black instead of the background colour shows.
pub(crate) fn red_disc_on_transparent(w: u32, h: u32) -> RgbaImage {
    let (cx, cy, r) = (w as f32 / 2.0, h as f32 / 2.0, w.min(h) as f32 / 4.0);
    RgbaImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        if dx * dx + dy * dy <= r * r {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

/// A PNG signature and a valid IHDR declaring `w` x `h` RGB, then nothing.
pub(crate) fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&w.to_be_bytes());
    chunk.extend_from_slice(&h.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive, no interlace
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    // An IDAT with a few bytes of a deflate stream, as a real bomb would carry.
    let idat = b"IDAT\x78\x9c\x63\x00\x00";
    out.extend_from_slice(&5u32.to_be_bytes());
    out.extend_from_slice(idat);
    out.extend_from_slice(&crc32(idat).to_be_bytes());
    out
}

/// A real small JPEG whose SOF0 is patched to declare `w` x `h`.
pub(crate) fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = jpeg(&quadrants(16, 16));
    let sof = jpeg
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

/// An extended WebP (VP8X) whose canvas declares `w` x `h`, with a tiny lossless image chunk.
pub(crate) fn webp_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut vp8x = Vec::new();
    vp8x.extend_from_slice(&[0, 0, 0, 0]); // no flags
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let small = encode(
        &DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([0, 0, 0, 255]))),
        ImageFormat::WebP,
    );
    // Reuse the lossless image chunk (everything after "RIFF" size "WEBP").
    let image_chunk = &small[12..];
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&vp8x);
    body.extend_from_slice(image_chunk);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    out.extend(body);
    out
}

/// Peak signal-to-noise ratio over RGB, in dB; images must have the same size.
pub(crate) fn psnr(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut sum = 0f64;
    for (p, q) in a.pixels().zip(b.pixels()) {
        for c in 0..3 {
            let d = f64::from(p[c]) - f64::from(q[c]);
            sum += d * d;
        }
    }
    let mse = sum / (f64::from(a.width()) * f64::from(a.height()) * 3.0);
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
