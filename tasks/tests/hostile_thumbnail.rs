//! Hostile images: small files that declare or inflate to huge sizes stay within the memory
//! budget documented on `Limits`, and fail (or finish) fast.
//!
//! Each test measures its task's peak heap with a counting allocator; the bounds are far
//! below what the decoders used before the budget (figures in the messages and the PR).
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use offload_tasks::thumbnail::{Format, ThumbnailError, ThumbnailOptions, thumbnail};
use offload_test_hostile::{gif_bomb, inflating_chunk, png_zeros};
use support::alloc::{Counting, INSTRUMENTED_SYSTEM, MB, QUICK, mb, measure};
use support::thumbnail::{decode, webp_bomb};

#[global_allocator]
static ALLOC: Counting = &INSTRUMENTED_SYSTEM;

const GIB: usize = 1 << 30;

fn png_options() -> ThumbnailOptions {
    let mut options = ThumbnailOptions::new(256, 256);
    options.format = Format::Png;
    options
}

#[test]
fn smoke() {
    // A 1x1 PNG whose colour profile inflates to 1 GiB: the profile is never inflated.
    let png = || png_zeros(1, 1, 8, 2, &[inflating_chunk(b"iCCP", GIB)]);
    let run = measure(png, |png| {
        assert!(png.len() < 1_100_000, "{} bytes", png.len());
        thumbnail(png, &png_options())
    });
    eprintln!(
        "png with 1 GiB iCCP: {:?}, peak {:.1} MB",
        run.elapsed,
        mb(run.peak)
    );
    let out = run.value.unwrap();
    assert_eq!((out.width, out.height), (1, 1));
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    assert!(run.peak < 20 * MB, "peak {:.1} MB", mb(run.peak));
}

#[test]
fn png_text_chunks_are_not_inflated() {
    let png = || {
        let chunks = [inflating_chunk(b"zTXt", GIB), inflating_chunk(b"iTXt", GIB)];
        png_zeros(2, 2, 8, 6, &chunks)
    };
    let run = measure(png, |png| thumbnail(png, &png_options()));
    eprintln!(
        "png with 1 GiB zTXt and iTXt: {:?}, peak {:.1} MB",
        run.elapsed,
        mb(run.peak)
    );
    let out = run.value.unwrap();
    assert_eq!((out.width, out.height), (2, 2));
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    assert!(run.peak < 20 * MB, "peak {:.1} MB", mb(run.peak));
}

#[test]
fn sixteen_bit_png_decodes_once_at_eight_bits() {
    // 16-bit RGBA from a tiny zlib stream of zero rows. At 10000x10000 (under 1 MB of
    // PNG) that is 800 MB at 16 bits and 400 MB at 8; the unoptimised decoder of a debug
    // build needs minutes for that, so `cargo test --release` runs the full size.
    let side = if cfg!(debug_assertions) {
        3_000
    } else {
        10_000
    };
    let (w, h) = (side, side);
    let png = || png_zeros(w, h, 16, 6, &[]);
    let run = measure(png, |png| {
        assert!(png.len() < MB, "{} bytes", png.len());
        thumbnail(png, &png_options())
    });
    let out = run.value.unwrap();
    eprintln!(
        "16-bit {side}x{side}: {:?}, peak {:.1} MB",
        run.elapsed,
        mb(run.peak)
    );
    assert_eq!((out.width, out.height), (256, 256));
    assert!(decode(&out.bytes).pixels().all(|p| p.0 == [0, 0, 0, 0]));
    // The RGBA raster plus rows, the resizer's buffers and the output; before the budget
    // the 16-bit image, its 8-bit copy and a premultiplied copy were alive at once (16 bytes
    // a pixel).
    let raster = w as usize * h as usize * 4;
    assert!(
        run.peak < raster + raster / 4 + 8 * MB,
        "peak {:.1} MB",
        mb(run.peak)
    );
}

/// Thumbnails `bomb`, which must be refused as undecodable with a reason that contains
/// `reason`, within 100 ms and under 1 MB of heap.
fn refused_before_allocating(what: &str, bomb: Vec<u8>, reason: &str) {
    let run = measure(move || bomb, |bytes| thumbnail(bytes, &png_options()));
    eprintln!("{what}: {:?}, peak {:.1} MB", run.elapsed, mb(run.peak));
    match run.value {
        Err(ThumbnailError::Undecodable { reason: got, .. }) => {
            assert!(got.contains(reason), "{got}");
        }
        other => panic!("expected undecodable, got {other:?}"),
    }
    assert!(
        run.elapsed < Duration::from_millis(100),
        "took {:?}",
        run.elapsed
    );
    assert!(run.peak < MB, "peak {:.1} MB", mb(run.peak));
}

#[test]
fn gif_declaring_a_huge_screen_fails_before_allocating() {
    let gif = gif_bomb(10_000, 10_000);
    assert!(gif.len() < 50, "{} bytes", gif.len());
    refused_before_allocating("40-byte gif of 10000x10000", gif, "10000x10000");
}

#[test]
fn webp_canvas_larger_than_its_image_fails_before_allocating() {
    refused_before_allocating(
        "webp canvas 10000x10000 around 1x1",
        webp_bomb(10_000, 10_000),
        "canvas is 10000x10000",
    );
}
