//! Output quality against a Lanczos3 resize of the full-resolution decode.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma};
use offload_tasks::thumbnail::{Format, Thumbnail};
use support::thumbnail::{decode, encode, fixture, psnr};

/// Lanczos3 of the full decode by a different library (`image`), the reference.
fn reference(src: &[u8], w: u32, h: u32) -> image::RgbaImage {
    let full = image::load_from_memory(src).unwrap().to_rgba8();
    imageops::resize(&full, w, h, FilterType::Lanczos3)
}

#[test]
fn smoke() {
    let src = fixture("seeding_1200x675.jpg");
    let out = Thumbnail::fit(src.clone(), 256, 256).run().unwrap();
    let db = psnr(&decode(&out.bytes), &reference(&src, out.width, out.height));
    assert!(db >= 30.0, "{db:.2} dB");
}

#[test]
fn psnr_at_every_shrink_on_load_scale() {
    // 1200x675 into these boxes decodes at 1/8, 1/4, 1/2 and full scale respectively.
    let src = fixture("seeding_1200x675.jpg");
    for box_side in [64, 128, 256, 600, 1000] {
        for format in [Format::Png, Format::Jpeg] {
            let out = Thumbnail::fit(src.clone(), box_side, box_side)
                .format(format)
                .run()
                .unwrap();
            let db = psnr(&decode(&out.bytes), &reference(&src, out.width, out.height));
            eprintln!("box {box_side} {format}: {db:.2} dB");
            assert!(db >= 30.0, "box {box_side} {format}: {db:.2} dB");
        }
    }
}

#[test]
fn psnr_of_the_bench_photo() {
    // 1920x1280 into 256x256 shrinks by 7.5: decoded at 1/4 (480x320), then Lanczos3.
    let src = fixture("seeding_1920x1280.jpg");
    for format in [Format::Png, Format::Jpeg] {
        let out = Thumbnail::fit(src.clone(), 256, 256)
            .format(format)
            .run()
            .unwrap();
        assert_eq!((out.width, out.height), (256, 171));
        let db = psnr(&decode(&out.bytes), &reference(&src, 256, 171));
        eprintln!("1920x1280 -> 256 {format}: {db:.2} dB");
        assert!(db >= 30.0, "{format}: {db:.2} dB");
    }
}

#[test]
fn psnr_for_png_input() {
    // PNG output measures the resampling alone: on a 64 px crop of a detailed picture,
    // JPEG quality 80 by itself costs a few dB.
    let src = fixture("astronaut_200.png");
    let out = Thumbnail::fit(src.clone(), 64, 64)
        .format(Format::Png)
        .run()
        .unwrap();
    let db = psnr(&decode(&out.bytes), &reference(&src, 64, 64));
    assert!(db >= 30.0, "{db:.2} dB");
}

#[test]
fn fine_stripes_do_not_alias() {
    // One-pixel black/white lines: a point-sampling resizer returns stripes, moire or a flat
    // black or white; a proper low-pass filter returns an even mid grey.
    let stripes = GrayImage::from_fn(999, 999, |_, y| Luma([if y % 2 == 0 { 0 } else { 255 }]));
    let png = encode(
        &image::DynamicImage::ImageLuma8(stripes),
        image::ImageFormat::Png,
    );
    let out = Thumbnail::fit(png, 100, 100)
        .format(Format::Png)
        .run()
        .unwrap();
    let img = decode(&out.bytes);
    for p in img.pixels() {
        assert!((110..=145).contains(&p[0]), "aliased pixel {p:?}");
    }
}
