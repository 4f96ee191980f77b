//! The JPEG variants the README names decode on every build, and the decoder stays strict:
//! arithmetic coding, lossless, 12-bit (refused), warnings and the coefficient budget.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use image::{DynamicImage, ImageFormat, RgbImage};
use offload_tasks::thumbnail::{Format, Limits, Thumbnail};
use support::thumbnail::{UPRIGHT, decode, encode, fixture, psnr, quadrant_names, quadrants};

/// The PNG thumbnail of `bytes` at 32x32.
fn thumb32(bytes: Vec<u8>) -> image::RgbaImage {
    let out = Thumbnail::fit(bytes, 32, 32)
        .format(Format::Png)
        .run()
        .unwrap();
    decode(&out.bytes)
}

#[test]
fn smoke() {
    // `cjpeg -arithmetic -quality 90` of the 64x64 astronaut (see the fixtures' README).
    let arithmetic = fixture("astronaut_64_arithmetic.jpg");
    assert!(arithmetic.windows(2).any(|m| m == [0xFF, 0xC9]), "SOF9");
    let png = fixture("astronaut_64.png");
    let db = psnr(&thumb32(arithmetic), &thumb32(png));
    assert!(db > 30.0, "arithmetic JPEG vs its source: {db:.1} dB");
}

#[test]
fn truncated_arithmetic_jpeg_is_undecodable() {
    let full = fixture("astronaut_64_arithmetic.jpg");
    for cut in [full.len() / 2, full.len() - 2] {
        let err = Thumbnail::fit(full[..cut].to_vec(), 32, 32)
            .run()
            .unwrap_err();
        assert!(err.is_undecodable(), "cut at {cut}: {err:?}");
    }
}

/// A lossless JPEG (SOF3, predictor 1, 8 bits, RGB) of `img`, written here because the usual
/// tools (libjpeg-turbo 2's `cjpeg`, `image`) cannot make one.
fn lossless_jpeg(img: &RgbImage) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let mut out = vec![0xFF, 0xD8];
    let mut segment = |marker: u8, payload: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
    };
    // Adobe, transform 0: the components are R, G, B, not YCbCr.
    segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00");
    let mut sof = vec![8];
    sof.extend_from_slice(&u16::try_from(h).unwrap().to_be_bytes());
    sof.extend_from_slice(&u16::try_from(w).unwrap().to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    segment(0xC3, &sof);
    // One table: difference categories 0-8, each a 4-bit code equal to the category.
    let mut dht = vec![0x00, 0, 0, 0, 9];
    dht.extend_from_slice(&[0; 12]);
    dht.extend(0..=8u8);
    segment(0xC4, &dht);
    // Three components on table 0, predictor 1 (left), no point transform.
    segment(0xDA, &[3, 1, 0, 2, 0, 3, 0, 1, 0, 0]);

    let mut bits = BitWriter::default();
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let sample = |x: u32, y: u32| i32::from(img.get_pixel(x, y)[c]);
                let predicted = match (x, y) {
                    (0, 0) => 128,
                    (0, _) => sample(0, y - 1),
                    _ => sample(x - 1, y),
                };
                let diff = sample(x, y) - predicted;
                let category = 32 - diff.unsigned_abs().leading_zeros();
                bits.put(category, 4);
                // Negative differences are sent as diff - 1 in `category` bits.
                let extra = if diff < 0 { diff - 1 } else { diff };
                bits.put(extra as u32 & ((1 << category) - 1), category);
            }
        }
    }
    out.extend(bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Entropy-coded bits, most significant first, with 0xFF bytes stuffed.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u32,
    len: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.acc = self.acc << 1 | (value >> i & 1);
            self.len += 1;
            if self.len == 8 {
                let byte = self.acc as u8;
                self.bytes.push(byte);
                if byte == 0xFF {
                    self.bytes.push(0);
                }
                self.acc = 0;
                self.len = 0;
            }
        }
    }

    /// Pads the last byte with 1 bits, as the standard asks.
    fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.put(u32::MAX, 8 - self.len);
        }
        self.bytes
    }
}

#[test]
fn lossless_jpeg_decodes() {
    let src = quadrants(48, 32);
    let jpeg = lossless_jpeg(&src);
    let out = Thumbnail::fit(jpeg.clone(), 24, 24).run().unwrap();
    assert_eq!((out.width, out.height), (24, 16));
    assert_eq!(quadrant_names(&out.bytes), UPRIGHT);
    // Lossless: at its own size the thumbnail (PNG) is the source exactly.
    let same = Thumbnail::fit(jpeg, 48, 32)
        .format(Format::Png)
        .run()
        .unwrap();
    let png = encode(&DynamicImage::ImageRgb8(src), ImageFormat::Png);
    assert_eq!(decode(&same.bytes), decode(&png));
}

#[test]
fn twelve_bit_jpeg_is_refused_with_a_typed_error() {
    // The default build's libjpeg-turbo 2 decodes 8-bit samples only, as does jpeg-decoder's
    // DCT path: a 12-bit frame (SOF1) is an undecodable input, not a panic.
    let mut jpeg = support::thumbnail::jpeg(&quadrants(16, 16));
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 1] = 0xC1;
    jpeg[sof + 4] = 12;
    let result = Thumbnail::fit(jpeg, 8, 8).run();
    if cfg!(feature = "turbojpeg") {
        // libjpeg-turbo 3 reads 12-bit files; these 8-bit tables make it fail or succeed.
        if let Err(e) = result {
            assert!(e.is_undecodable(), "{e:?}");
        }
    } else {
        assert!(result.unwrap_err().is_undecodable());
    }
}

#[test]
fn garbage_between_segments_is_undecodable() {
    // libjpeg only warns about bytes that are not a marker between segments; the task treats
    // every warning as corruption.
    let full = fixture("seeding_1200x675.jpg");
    let dqt = full.windows(2).position(|m| m == [0xFF, 0xDB]).unwrap();
    let mut bad = full[..dqt].to_vec();
    bad.extend_from_slice(b"junk");
    bad.extend_from_slice(&full[dqt..]);
    let err = Thumbnail::fit(bad, 64, 64).run().unwrap_err();
    assert!(err.is_undecodable(), "{err:?}");
}

/// A progressive frame header of `components` full-resolution components declaring
/// `w` x `h`, the first scan's header, and no image data.
fn progressive_header(w: u16, h: u16, components: u8) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC2];
    out.extend_from_slice(&(8 + 3 * u16::from(components)).to_be_bytes());
    out.push(8);
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.push(components);
    for id in 1..=components {
        out.extend_from_slice(&[id, 0x11, 0]);
    }
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[test]
fn progressive_coefficient_buffer_over_the_budget_is_refused() {
    // Within the pixel limit, but five full-resolution components of 16-bit coefficients
    // need 10 bytes a pixel, over the budget of 8 per allowed pixel: refused from the
    // headers, before any decoder allocates 160 MB.
    let limits = Limits {
        max_pixels: 4000 * 4000,
        ..Limits::default()
    };
    let err = Thumbnail::fit(progressive_header(4000, 4000, 5), 64, 64)
        .limits(limits)
        .run()
        .unwrap_err();
    assert!(err.is_undecodable(), "{err:?}");
    // libjpeg-turbo 3's header reader (feature `turbojpeg`) refuses five components before
    // that: it finds no colour space for them.
    if !cfg!(feature = "turbojpeg") {
        assert!(err.to_string().contains("coefficient buffer"), "{err}");
    }
}
