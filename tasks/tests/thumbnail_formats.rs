//! Input formats are sniffed from the bytes; output formats, alpha and background.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use offload_tasks::thumbnail::{Format, SourceFormat, Thumbnail, ThumbnailError};
use support::thumbnail::{decode, encode, fixture, psnr, red_disc_on_transparent, sniffed};

#[test]
fn smoke() {
    let out = Thumbnail::fit(fixture("astronaut_200.png"), 64, 64)
        .run()
        .unwrap();
    assert_eq!(out.format, Format::Jpeg);
    assert_eq!(sniffed(&out.bytes), ImageFormat::Jpeg);
    assert_eq!((out.width, out.height), (64, 64));
}

#[test]
fn every_output_format_is_what_it_says() {
    let src = fixture("seeding_1200x675.jpg");
    for (format, expected, mime) in [
        (Format::Jpeg, ImageFormat::Jpeg, "image/jpeg"),
        (Format::Png, ImageFormat::Png, "image/png"),
        (Format::WebP, ImageFormat::WebP, "image/webp"),
    ] {
        let out = Thumbnail::fit(src.clone(), 120, 120)
            .format(format)
            .run()
            .unwrap();
        assert_eq!(out.format, format);
        assert_eq!(sniffed(&out.bytes), expected);
        assert_eq!(format.mime_type(), mime);
        assert_eq!(decode(&out.bytes).dimensions(), (120, 68));
    }
}

#[test]
fn every_input_format_decodes() {
    let photo = image::load_from_memory(&fixture("astronaut_200.png")).unwrap();
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::WebP,
        ImageFormat::Gif,
    ] {
        let src = encode(&DynamicImage::ImageRgba8(photo.to_rgba8()), format);
        let out = Thumbnail::fit(src, 50, 50)
            .format(Format::Png)
            .run()
            .unwrap();
        assert_eq!((out.width, out.height), (50, 50), "{format:?}");
        // Whatever the codec, the thumbnail of the same photo looks the same: compare with
        // the PNG-sourced thumbnail.
        let reference = Thumbnail::fit(fixture("astronaut_200.png"), 50, 50)
            .format(Format::Png)
            .run()
            .unwrap();
        let db = psnr(&decode(&out.bytes), &decode(&reference.bytes));
        // GIF quantises to 256 colours, so it gets the loosest bar.
        assert!(db > 20.0, "{format:?}: {db:.1} dB");
    }
}

#[test]
fn gif_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let frame = |c: [u8; 4]| {
        Frame::from_parts(
            RgbaImage::from_pixel(40, 20, Rgba(c)),
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )
    };
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        enc.encode_frames([frame([0, 0, 255, 255]), frame([255, 0, 0, 255])])
            .unwrap();
    }
    let out = Thumbnail::fit(gif, 20, 20)
        .format(Format::Png)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (20, 10));
    let p = decode(&out.bytes).get_pixel(10, 5).0;
    assert!(p[2] > 200 && p[0] < 50, "first frame is blue, got {p:?}");
}

#[test]
fn format_comes_from_bytes_not_labels() {
    // PNG bytes whose first bytes are then damaged are no longer a PNG.
    let mut png = fixture("astronaut_200.png");
    png[1] = b'X';
    let err = Thumbnail::fit(png, 10, 10).run().unwrap_err();
    assert!(err.is_unsupported_format(), "{err}");
    // A WebP container without the WEBP form type is not WebP.
    let err = Thumbnail::fit(b"RIFF\0\0\0\0WAVEfmt ".to_vec(), 10, 10)
        .run()
        .unwrap_err();
    assert_eq!(
        err,
        ThumbnailError::UnsupportedFormat {
            detected: "unknown".into()
        }
    );
}

#[test]
fn transparent_png_to_jpeg_is_painted_on_white() {
    let src = encode(
        &DynamicImage::ImageRgba8(red_disc_on_transparent(200, 200)),
        ImageFormat::Png,
    );
    let out = Thumbnail::fit(src, 100, 100).run().unwrap();
    let img = decode(&out.bytes);
    let corner = img.get_pixel(2, 2).0;
    assert!(
        corner[..3].iter().all(|&c| c > 245),
        "corner is {corner:?}, not white"
    );
    let centre = img.get_pixel(50, 50).0;
    assert!(
        centre[0] > 230 && centre[1] < 30,
        "centre is {centre:?}, not red"
    );
}

#[test]
fn transparent_png_to_jpeg_on_chosen_background() {
    let src = encode(
        &DynamicImage::ImageRgba8(red_disc_on_transparent(200, 200)),
        ImageFormat::Png,
    );
    let out = Thumbnail::fit(src, 100, 100)
        .background([0, 0, 255])
        .run()
        .unwrap();
    let corner = decode(&out.bytes).get_pixel(2, 2).0;
    assert!(
        corner[2] > 230 && corner[0] < 30,
        "corner is {corner:?}, not blue"
    );
}

#[test]
fn png_and_webp_output_keep_alpha() {
    let src = encode(
        &DynamicImage::ImageRgba8(red_disc_on_transparent(200, 200)),
        ImageFormat::Png,
    );
    for format in [Format::Png, Format::WebP] {
        let out = Thumbnail::fit(src.clone(), 100, 100)
            .format(format)
            .run()
            .unwrap();
        let img = decode(&out.bytes);
        assert_eq!(
            img.get_pixel(2, 2).0[3],
            0,
            "{format}: corner should stay transparent"
        );
        let centre = img.get_pixel(50, 50).0;
        assert!(
            centre[0] > 230 && centre[1] < 30 && centre[2] < 30 && centre[3] == 255,
            "{format}: centre {centre:?}"
        );
    }
    // Premultiplied resizing: no dark fringe where red meets transparent black. (Checked on
    // the lossless PNG; lossy WebP's 4:2:0 chroma blurs edges by itself.)
    let out = Thumbnail::fit(src, 100, 100)
        .format(Format::Png)
        .run()
        .unwrap();
    for px in decode(&out.bytes).pixels().filter(|p| p[3] > 0) {
        assert!(px[0] > 200 && px[1] < 20, "fringe pixel {px:?}");
    }
}

#[test]
fn undecodable_error_names_the_sniffed_format() {
    let mut png = fixture("astronaut_200.png");
    png.truncate(100);
    match Thumbnail::fit(png, 10, 10).run() {
        Err(ThumbnailError::Undecodable { format, .. }) => assert_eq!(format, SourceFormat::Png),
        other => panic!("expected undecodable, got {other:?}"),
    }
}

#[test]
fn cmyk_progressive_and_grey_jpeg() {
    // Each variant of the same 64x64 picture must look like the PNG it was made from.
    let reference = Thumbnail::fit(fixture("astronaut_64.png"), 32, 32)
        .format(Format::Png)
        .run()
        .unwrap();
    let reference = decode(&reference.bytes);
    for name in ["astronaut_64_cmyk.jpg", "astronaut_64_progressive.jpg"] {
        let out = Thumbnail::fit(fixture(name), 32, 32)
            .format(Format::Png)
            .run()
            .unwrap();
        let db = psnr(&decode(&out.bytes), &reference);
        assert!(db > 25.0, "{name}: {db:.1} dB");
    }
    let grey = image::load_from_memory(&fixture("astronaut_64.png"))
        .unwrap()
        .to_luma8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&grey)
        .unwrap();
    let out = Thumbnail::fit(jpeg, 32, 32)
        .format(Format::Png)
        .run()
        .unwrap();
    let img = decode(&out.bytes);
    assert_eq!(img.dimensions(), (32, 32));
    assert!(
        img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        "grey stays grey"
    );
}

#[test]
fn quality_applies_to_jpeg_and_webp() {
    let src = fixture("seeding_1200x675.jpg");
    for format in [Format::Jpeg, Format::WebP] {
        let size = |q| {
            let out = Thumbnail::fit(src.clone(), 256, 256)
                .format(format)
                .quality(q)
                .run()
                .unwrap();
            assert_eq!(decode(&out.bytes).dimensions(), (256, 144));
            out.bytes.len()
        };
        let (low, high) = (size(10), size(95));
        assert!(
            low * 2 < high,
            "{format}: quality 10 gives {low} bytes, 95 gives {high}"
        );
    }
}
