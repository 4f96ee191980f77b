//! Limits, decompression bombs, corrupt input and parameter validation give typed errors.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use offload_tasks::thumbnail::{ErrorKind, Format, Limits, Thumbnail, ThumbnailError};
use offload_test_hostile::gif_bomb;
use support::thumbnail::{fixture, jpeg_bomb, png_bomb, webp_bomb};

#[test]
fn smoke() {
    let err = Thumbnail::fit(jpeg_bomb(60000, 60000), 256, 256)
        .run()
        .unwrap_err();
    assert_eq!(
        err,
        ThumbnailError::TooManyPixels {
            width: 60000,
            height: 60000,
            max: 100_000_000
        }
    );
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[test]
fn bombs_in_every_format_fail_from_the_header() {
    let cases = [
        ("jpeg", jpeg_bomb(60000, 60000)),
        ("png", png_bomb(60000, 60000)),
        ("gif", gif_bomb(60000, 60000)),
        ("webp", webp_bomb(60000, 60000)),
    ];
    for (name, bomb) in cases {
        assert!(bomb.len() < 2000, "{name} bomb is {} bytes", bomb.len());
        match Thumbnail::fit(bomb, 256, 256).run() {
            Err(ThumbnailError::TooManyPixels { width, height, .. }) => {
                assert_eq!((width, height), (60000, 60000), "{name}");
            }
            other => panic!("{name}: expected too many pixels, got {other:?}"),
        }
    }
}

#[test]
fn pixel_limit_is_configurable() {
    let src = fixture("seeding_1200x675.jpg");
    let limits = Limits {
        max_pixels: 1200 * 675 - 1,
        ..Limits::default()
    };
    let err = Thumbnail::fit(src.clone(), 64, 64)
        .limits(limits)
        .run()
        .unwrap_err();
    assert!(err.is_too_large());
    let limits = Limits {
        max_pixels: 1200 * 675,
        ..Limits::default()
    };
    assert!(Thumbnail::fit(src, 64, 64).limits(limits).run().is_ok());
}

#[test]
fn byte_limit_is_configurable() {
    let src = fixture("astronaut_200.png");
    let len = src.len() as u64;
    let tight = Limits {
        max_input_bytes: len - 1,
        ..Limits::default()
    };
    let err = Thumbnail::fit(src.clone(), 64, 64)
        .limits(tight)
        .run()
        .unwrap_err();
    assert_eq!(
        err,
        ThumbnailError::InputTooLarge {
            size: len,
            max: len - 1
        }
    );
    let exact = Limits {
        max_input_bytes: len,
        ..Limits::default()
    };
    assert!(Thumbnail::fit(src, 64, 64).limits(exact).run().is_ok());
}

#[test]
fn default_limits() {
    let l = Limits::default();
    assert_eq!(l.max_input_bytes, 50 * 1024 * 1024);
    assert_eq!(l.max_pixels, 100_000_000);
}

#[test]
fn truncated_files_are_undecodable() {
    for name in ["seeding_1200x675.jpg", "astronaut_200.png"] {
        let full = fixture(name);
        // Cut in the header, in the middle of the pixel data, and near its end (before PNG's
        // 12-byte IEND, without which a PNG's pixels are complete).
        for cut in [10, 20, 200, full.len() / 2, full.len() - 16] {
            let err = match Thumbnail::fit(full[..cut].to_vec(), 64, 64).run() {
                Ok(_) => panic!("{name} cut at {cut} of {} decoded", full.len()),
                Err(e) => e,
            };
            assert!(
                err.is_undecodable(),
                "{name} cut at {cut}: expected undecodable, got {err:?}"
            );
        }
    }
}

#[test]
fn jpeg_without_end_marker_is_undecodable() {
    // libjpeg-turbo only warns here; the task treats every warning as corruption.
    let full = fixture("seeding_1200x675.jpg");
    assert_eq!(&full[full.len() - 2..], &[0xFF, 0xD9]);
    let err = Thumbnail::fit(full[..full.len() - 2].to_vec(), 64, 64)
        .run()
        .unwrap_err();
    assert!(err.is_undecodable(), "{err:?}");
}

#[test]
fn a_jpeg_with_hundreds_of_scans_is_refused() {
    // A progressive file can repeat scans over the whole image, each one a full pass: a
    // CPU bomb in a few kilobytes. Repeat the last scan of a real progressive photo.
    let full = fixture("astronaut_64_progressive.jpg");
    let last_scan = full.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    let end = full.len() - 2; // before EOI
    let mut bomb = full[..end].to_vec();
    for _ in 0..600 {
        bomb.extend_from_slice(&full[last_scan..end]);
    }
    bomb.extend_from_slice(&[0xFF, 0xD9]);
    let err = Thumbnail::fit(bomb, 32, 32).run().unwrap_err();
    assert!(err.is_undecodable(), "{err:?}");
}

#[test]
fn corrupt_bytes_never_panic() {
    // Overwrite a run of bytes at many places; every outcome must be Ok or a typed
    // input error, never a panic or an internal error.
    for name in ["seeding_1200x675.jpg", "astronaut_200.png"] {
        let full = fixture(name);
        for i in 0..40 {
            let mut bad = full.clone();
            let at = 2 + i * (full.len() - 40) / 40;
            for b in &mut bad[at..at + 16] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            match Thumbnail::fit(bad, 64, 64).format(Format::Png).run() {
                Ok(out) => assert_eq!(out.width, 64),
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Undecodable | ErrorKind::UnsupportedFormat | ErrorKind::TooLarge
                    ),
                    "{name} at {at}: {e:?}"
                ),
            }
        }
    }
}

#[test]
fn unsupported_formats_are_named() {
    let cases: [(&[u8], &str); 4] = [
        (b"BM\x36\0\0\0\0\0", "bmp"),
        (b"II*\0\x08\0\0\0", "tiff"),
        (b"\0\0\0\x1cftypavif", "avif"),
        (b"hello, world", "unknown"),
    ];
    for (bytes, name) in cases {
        let err = Thumbnail::fit(bytes.to_vec(), 10, 10).run().unwrap_err();
        assert_eq!(
            err,
            ThumbnailError::UnsupportedFormat {
                detected: name.into()
            }
        );
        assert_eq!(err.kind(), ErrorKind::UnsupportedFormat);
    }
    assert!(
        Thumbnail::fit(Vec::new(), 10, 10)
            .run()
            .unwrap_err()
            .is_unsupported_format()
    );
}

#[test]
fn bad_parameters_are_typed_errors() {
    let src = fixture("astronaut_200.png");
    let bad = [
        Thumbnail::fit(src.clone(), 0, 100),
        Thumbnail::fit(src.clone(), 100, 0),
        Thumbnail::fit(src.clone(), 70_000, 100),
        Thumbnail::fit(src.clone(), 100, 100).quality(0),
        Thumbnail::fit(src.clone(), 100, 100).quality(101),
        // 60000x60000 output is over the default pixel limit.
        Thumbnail::fit(src.clone(), 60_000, 60_000).allow_upscale(true),
        Thumbnail::fit(src.clone(), 20_000, 20_000)
            .allow_upscale(true)
            .format(Format::WebP),
    ];
    for task in bad {
        let shown = format!("{task:?}");
        let err = task.run().unwrap_err();
        assert!(err.is_invalid_parameter(), "{shown}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    }
    for q in [1, 100] {
        assert!(Thumbnail::fit(src.clone(), 10, 10).quality(q).run().is_ok());
    }
}

#[test]
fn errors_are_serde_data() {
    let err = Thumbnail::fit(jpeg_bomb(60000, 60000), 256, 256)
        .run()
        .unwrap_err();
    let json = serde_json::to_string(&err).unwrap();
    let back: ThumbnailError = serde_json::from_str(&json).unwrap();
    assert_eq!(back, err);
    assert_eq!(
        err.to_string(),
        "image is 60000x60000 pixels, more than the limit of 100000000 pixels"
    );
}
