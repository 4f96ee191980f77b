//! Output sizes of the three fit modes, checked on real decoded output.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use offload_tasks::thumbnail::{Fit, Format, Thumbnail};
use support::thumbnail::{UPRIGHT, classify, decode, fixture, jpeg, quadrant_names, quadrants};

/// `round(a * b / c)` computed independently of the library.
fn round_div(a: u32, b: u32, c: u32) -> u32 {
    (f64::from(a) * f64::from(b) / f64::from(c)).round() as u32
}

#[test]
fn smoke() {
    let out = Thumbnail::fit(fixture("seeding_1200x675.jpg"), 256, 256)
        .run()
        .unwrap();
    assert_eq!(out.format, Format::Jpeg);
    assert_eq!((out.width, out.height), (256, round_div(675, 256, 1200)));
    let img = decode(&out.bytes);
    assert_eq!(img.dimensions(), (out.width, out.height));
}

#[test]
fn documented_example_6028x3391_into_256_gives_256x144() {
    // A synthetic photo of the documented size (the real one is too big to commit).
    let src = jpeg(&quadrants(6028, 3391));
    let out = Thumbnail::fit(src, 256, 256).run().unwrap();
    assert_eq!((out.width, out.height), (256, 144));
    assert_eq!(decode(&out.bytes).dimensions(), (256, 144));
}

#[test]
fn fit_inside_many_boxes() {
    let src = fixture("seeding_1200x675.jpg");
    for (bw, bh) in [
        (256, 256),
        (100, 300),
        (300, 100),
        (640, 360),
        (1, 1),
        (1199, 1199),
    ] {
        let out = Thumbnail::fit(src.clone(), bw, bh)
            .format(Format::Png)
            .run()
            .unwrap();
        let (w, h) = if 1200 * bh >= 675 * bw {
            (bw, round_div(675, bw, 1200).max(1))
        } else {
            (round_div(1200, bh, 675).max(1), bh)
        };
        assert_eq!((out.width, out.height), (w, h), "box {bw}x{bh}");
        assert_eq!(decode(&out.bytes).dimensions(), (w, h));
    }
}

#[test]
fn never_upscales_unless_asked() {
    let src = fixture("astronaut_200.png");
    for fit in [Fit::Inside, Fit::Cover, Fit::Exact] {
        let out = Thumbnail::fit(src.clone(), 400, 400)
            .fit_mode(fit)
            .run()
            .unwrap();
        assert_eq!((out.width, out.height), (200, 200), "{fit:?}");
    }
    let out = Thumbnail::fit(src.clone(), 400, 300)
        .allow_upscale(true)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (300, 300));
    let out = Thumbnail::fit(src.clone(), 400, 300)
        .exact()
        .allow_upscale(true)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (400, 300));
    // Cover without upscaling keeps scale 1 and cuts what the box cannot hold.
    let out = Thumbnail::fit(src, 300, 100).cover().run().unwrap();
    assert_eq!((out.width, out.height), (200, 100));
}

#[test]
fn cover_fills_and_crops_centre() {
    // 400x200: red | green over blue | white. A 100x100 cover cuts 100 px from each side,
    // so the quadrant colours stay where they were, each now a quarter of the square.
    let src = jpeg(&quadrants(400, 200));
    let out = Thumbnail::fit(src, 100, 100)
        .cover()
        .format(Format::Png)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (100, 100));
    assert_eq!(quadrant_names(&out.bytes), UPRIGHT);
}

/// Three vertical bands 100 px wide on a 300x100 image: red, green, blue.
fn bands() -> image::RgbImage {
    image::RgbImage::from_fn(300, 100, |x, _| match x / 100 {
        0 => image::Rgb([255, 0, 0]),
        1 => image::Rgb([0, 255, 0]),
        _ => image::Rgb([0, 0, 255]),
    })
}

#[test]
fn cover_crop_removes_outer_columns() {
    // The 1:1 cover of the three bands keeps only the middle one.
    let out = Thumbnail::fit(jpeg(&bands()), 50, 50)
        .cover()
        .format(Format::Png)
        .run()
        .unwrap();
    let img = decode(&out.bytes);
    for x in [3, 25, 46] {
        let p = img.get_pixel(x, 25).0;
        assert!(p[1] > 200 && p[0] < 60 && p[2] < 60, "pixel {x} is {p:?}");
    }
}

#[test]
fn exact_stretches_to_the_box() {
    let src = fixture("seeding_1200x675.jpg");
    let out = Thumbnail::fit(src, 200, 200).exact().run().unwrap();
    assert_eq!((out.width, out.height), (200, 200));
    assert_eq!(decode(&out.bytes).dimensions(), (200, 200));
    // Stretched, not cropped: all three bands survive, each a third of the width.
    let out = Thumbnail::fit(jpeg(&bands()), 60, 60)
        .exact()
        .format(Format::Png)
        .run()
        .unwrap();
    let img = decode(&out.bytes);
    let colours = [10, 30, 50].map(|x| classify(img.get_pixel(x, 30).0[..3].try_into().unwrap()));
    assert_eq!(colours, ["red", "green", "blue"]);
}

#[test]
fn every_mode_and_box_gives_the_box_size() {
    // With upscaling allowed, cover and exact always give exactly the box, including extreme
    // aspect ratios where the crop is thinner than one source pixel after shrink-on-load.
    let src = fixture("seeding_1200x675.jpg");
    let boxes = [
        (1, 1),
        (1, 600),
        (600, 1),
        (7, 13),
        (150, 84),
        (333, 77),
        (1200, 675),
        (2000, 90),
    ];
    for (bw, bh) in boxes {
        for fit in [Fit::Cover, Fit::Exact] {
            let out = Thumbnail::fit(src.clone(), bw, bh)
                .fit_mode(fit)
                .allow_upscale(true)
                .format(Format::Png)
                .run()
                .unwrap_or_else(|e| panic!("{fit:?} {bw}x{bh}: {e}"));
            assert_eq!((out.width, out.height), (bw, bh), "{fit:?}");
            assert_eq!(decode(&out.bytes).dimensions(), (bw, bh), "{fit:?}");
        }
    }
}
