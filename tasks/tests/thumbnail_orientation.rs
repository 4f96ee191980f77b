//! EXIF orientation is applied and metadata is not copied.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use image::metadata::Orientation;
use offload_tasks::thumbnail::{Format, Thumbnail};
use support::thumbnail::{
    ByteOrder, UPRIGHT, decode, jpeg, quadrant_names, quadrants, stored_for, with_exif_orientation,
    with_exif_orientation_in,
};

const ALL: [Orientation; 8] = [
    Orientation::NoTransforms,
    Orientation::FlipHorizontal,
    Orientation::Rotate180,
    Orientation::FlipVertical,
    Orientation::Rotate90FlipH,
    Orientation::Rotate90,
    Orientation::Rotate270FlipH,
    Orientation::Rotate270,
];

/// Fits a 2:1 picture of [`quadrants`] into 100x100 as PNG and checks it comes out upright.
fn assert_upright_in_100_box(src: Vec<u8>) {
    let out = Thumbnail::fit(src, 100, 100)
        .format(Format::Png)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (100, 50));
    assert_eq!(quadrant_names(&out.bytes), UPRIGHT);
}

#[test]
fn smoke() {
    // A sideways photo: stored turned a quarter counter-clockwise, tagged "rotate 90 CW".
    let upright = quadrants(320, 160);
    let stored = stored_for(&upright, Orientation::Rotate90);
    assert_eq!(stored.dimensions(), (160, 320));
    assert_upright_in_100_box(with_exif_orientation(&jpeg(&stored), 6));
}

#[test]
fn little_endian_exif_is_read() {
    // Phones write Intel-order ("II") TIFF as often as Motorola-order ("MM").
    let stored = stored_for(&quadrants(320, 160), Orientation::Rotate90);
    assert_upright_in_100_box(with_exif_orientation_in(
        &jpeg(&stored),
        6,
        ByteOrder::Little,
    ));
}

#[test]
fn every_orientation_comes_out_upright() {
    let upright = quadrants(320, 160);
    for o in ALL {
        let stored = stored_for(&upright, o);
        let src = with_exif_orientation(&jpeg(&stored), u16::from(o.to_exif()));
        for format in [Format::Jpeg, Format::Png] {
            let out = Thumbnail::fit(src.clone(), 128, 128)
                .format(format)
                .run()
                .unwrap();
            assert_eq!((out.width, out.height), (128, 64), "{o:?} {format}");
            assert_eq!(decode(&out.bytes).dimensions(), (128, 64));
            assert_eq!(quadrant_names(&out.bytes), UPRIGHT, "{o:?} {format}");
        }
    }
}

#[test]
fn orientation_applies_with_cover_and_exact() {
    let upright = quadrants(300, 100);
    let stored = stored_for(&upright, Orientation::Rotate270);
    let src = with_exif_orientation(&jpeg(&stored), 8);
    // The centre square of the upright 300x100 still has the four colours in its corners;
    // the centre of the unrotated 100x300 would not.
    let out = Thumbnail::fit(src.clone(), 60, 60)
        .cover()
        .format(Format::Png)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (60, 60));
    assert_eq!(quadrant_names(&out.bytes), UPRIGHT, "cover");
    let out = Thumbnail::fit(src, 90, 20)
        .exact()
        .format(Format::Png)
        .run()
        .unwrap();
    assert_eq!((out.width, out.height), (90, 20));
    assert_eq!(quadrant_names(&out.bytes), UPRIGHT, "exact");
}

#[test]
fn invalid_orientation_value_is_ignored() {
    // Ignored, not read as some flip or half turn, which keep the size but move the colours.
    assert_upright_in_100_box(with_exif_orientation(&jpeg(&quadrants(200, 100)), 42));
}

#[test]
fn metadata_is_not_copied() {
    let src = with_exif_orientation(&jpeg(&quadrants(200, 100)), 3);
    assert!(src.windows(6).any(|w| w == b"Exif\0\0"));
    for format in [Format::Jpeg, Format::Png, Format::WebP] {
        let out = Thumbnail::fit(src.clone(), 50, 50)
            .format(format)
            .run()
            .unwrap();
        assert!(
            !out.bytes.windows(4).any(|w| w == b"Exif"),
            "{format} kept EXIF"
        );
        assert!(
            !out.bytes.windows(4).any(|w| w == b"eXIf"),
            "{format} kept eXIf"
        );
    }
}
