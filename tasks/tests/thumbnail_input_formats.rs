//! The PNG, WebP, GIF and EXIF variants the README names, each generated here: 16-bit,
//! palette and interlaced PNG; lossy and animated WebP; a GIF whose first frame is offset
//! and partly transparent. (JPEG variants: thumbnail_jpeg_formats.rs; little-endian EXIF:
//! thumbnail_orientation.rs.)
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use image::codecs::gif::GifEncoder;
use image::{Delay, DynamicImage, Frame, ImageBuffer, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use offload_tasks::thumbnail::{Format, Thumbnail};
use offload_test_hostile::crc32;
use support::thumbnail::{UPRIGHT, decode, encode, quadrant_names, quadrants};

/// The PNG thumbnail of `src` at `w` x `h` (its own size: no resampling).
fn same_size_png(src: Vec<u8>, w: u32, h: u32) -> RgbaImage {
    let out = Thumbnail::fit(src, w, h).format(Format::Png).run().unwrap();
    assert_eq!((out.width, out.height), (w, h));
    decode(&out.bytes)
}

fn rgba(img: &RgbImage) -> RgbaImage {
    DynamicImage::ImageRgb8(img.clone()).into_rgba8()
}

#[test]
fn smoke() {
    // 16-bit RGB PNG: samples cut to 8 bits, so the thumbnail at its own size is the source.
    let src = quadrants(16, 16);
    let wide: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(16, 16, |x, y| {
        Rgb(src.get_pixel(x, y).0.map(|c| u16::from(c) * 257))
    });
    let png = encode(&DynamicImage::ImageRgb16(wide), ImageFormat::Png);
    assert_eq!(png[24], 16, "IHDR bit depth");
    assert_eq!(same_size_png(png, 16, 16), rgba(&src));
}

/// PNG chunk: length, type, data, CRC of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
}

/// An 8-bit PNG of `color_type` with `interlace` (0, or 1 for Adam7), each pixel's bytes
/// from `sample(x, y)`, rows unfiltered, and `extra` chunks before the data.
fn png(
    (w, h): (u32, u32),
    color_type: u8,
    interlace: u8,
    extra: &[(&[u8; 4], Vec<u8>)],
    sample: impl Fn(u32, u32) -> Vec<u8>,
) -> Vec<u8> {
    // Adam7 passes as (x0, y0, dx, dy); a plain image is one pass over every pixel.
    let passes: &[(u32, u32, u32, u32)] = if interlace == 1 {
        &[
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
    } else {
        &[(0, 0, 1, 1)]
    };
    let mut raw = Vec::new();
    for &(x0, y0, dx, dy) in passes {
        // A pass with no pixels has no rows, not even filter bytes.
        if x0 >= w || y0 >= h {
            continue;
        }
        for y in (y0..h).step_by(dy as usize) {
            raw.push(0);
            for x in (x0..w).step_by(dx as usize) {
                raw.extend(sample(x, y));
            }
        }
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&raw).unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, color_type, 0, 0, interlace]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        chunk(&mut out, kind, data);
    }
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn interlaced_png_decodes() {
    // 13x11: every Adam7 pass is present and the last ones are ragged.
    let src = quadrants(13, 11);
    let interlaced = png((13, 11), 2, 1, &[], |x, y| src.get_pixel(x, y).0.to_vec());
    assert_eq!(interlaced[28], 1, "IHDR interlace method");
    assert_eq!(same_size_png(interlaced, 13, 11), rgba(&src));
}

#[test]
fn palette_png_with_transparency_decodes() {
    // Four palette entries, the fourth fully transparent (tRNS).
    let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255].to_vec();
    let trns = vec![255, 255, 255, 0];
    let src = quadrants(12, 8);
    let index = |x: u32, y: u32| match src.get_pixel(x, y).0 {
        [255, 0, 0] => 0,
        [0, 255, 0] => 1,
        [0, 0, 255] => 2,
        _ => 3,
    };
    let indexed = png(
        (12, 8),
        3,
        0,
        &[(b"PLTE", palette), (b"tRNS", trns)],
        |x, y| vec![index(x, y)],
    );
    let out = same_size_png(indexed, 12, 8);
    assert_eq!(out.get_pixel(2, 2).0, [255, 0, 0, 255]);
    assert_eq!(out.get_pixel(9, 2).0, [0, 255, 0, 255]);
    assert_eq!(out.get_pixel(2, 6).0, [0, 0, 255, 255]);
    assert_eq!(out.get_pixel(9, 6).0[3], 0, "the tRNS entry is transparent");
}

#[test]
fn lossy_webp_decodes() {
    let src = quadrants(64, 32);
    let webp = webp::Encoder::from_rgb(src.as_raw(), 64, 32)
        .encode(80.0)
        .to_vec();
    assert_eq!(&webp[12..16], b"VP8 ", "a lossy bitstream");
    let out = Thumbnail::fit(webp, 32, 32).run().unwrap();
    assert_eq!((out.width, out.height), (32, 16));
    assert_eq!(quadrant_names(&out.bytes), UPRIGHT);
}

#[test]
fn animated_webp_gives_its_first_frame() {
    let config = webp::WebPConfig::new().unwrap();
    let blue = RgbImage::from_pixel(40, 20, Rgb([0, 0, 255]));
    let red = RgbImage::from_pixel(40, 20, Rgb([255, 0, 0]));
    let mut anim = webp::AnimEncoder::new(40, 20, &config);
    anim.add_frame(webp::AnimFrame::from_rgb(blue.as_raw(), 40, 20, 0));
    anim.add_frame(webp::AnimFrame::from_rgb(red.as_raw(), 40, 20, 100));
    let webp = anim.try_encode().unwrap().to_vec();
    assert!(webp.windows(4).any(|c| c == b"ANIM"), "an animation");
    let out = same_size_png(webp, 40, 20);
    let p = out.get_pixel(20, 10).0;
    assert!(p[2] > 200 && p[0] < 50, "first frame is blue, got {p:?}");
}

/// Offset of the first image descriptor (0x2C) in a GIF, after the screen, its colour
/// table and any extensions.
fn first_image_descriptor(gif: &[u8]) -> usize {
    let flags = gif[10];
    let mut at = 13
        + if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        };
    while gif[at] == 0x21 {
        at += 2; // introducer, label
        while gif[at] != 0 {
            at += usize::from(gif[at]) + 1;
        }
        at += 1;
    }
    assert_eq!(gif[at], 0x2C);
    at
}

#[test]
fn gif_first_frame_offset_and_transparent() {
    // A 20x10 frame, left half red, right half transparent, drawn at (20, 10) on a 40x20
    // screen: outside the frame and under its transparent pixels, the output is transparent.
    let frame = RgbaImage::from_fn(20, 10, |x, _| {
        if x < 10 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut gif = Vec::new();
    GifEncoder::new(&mut gif)
        .encode_frames([Frame::from_parts(
            frame,
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )])
        .unwrap();
    // Widen the logical screen and move the frame (all little-endian u16).
    gif[6..10].copy_from_slice(&[40, 0, 20, 0]);
    let image = first_image_descriptor(&gif);
    gif[image + 1..image + 5].copy_from_slice(&[20, 0, 10, 0]);
    let out = same_size_png(gif, 40, 20);
    assert_eq!(out.get_pixel(5, 5).0[3], 0, "outside the frame");
    assert_eq!(
        out.get_pixel(25, 15).0,
        [255, 0, 0, 255],
        "the frame's red half"
    );
    assert_eq!(
        out.get_pixel(35, 15).0[3],
        0,
        "the frame's transparent half"
    );
}
