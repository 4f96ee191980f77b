//! A small progressive JPEG that declares a huge image is refused before libjpeg-turbo sizes
//! its whole-image coefficient buffer from the header.
//!
//! libjpeg-turbo allocates with C `malloc`, which the counting allocator of
//! `hostile_thumbnail.rs` does not see, so this binary reads the process's peak virtual size
//! (`VmPeak` on Linux; a large `malloc` is an `mmap` and counts there whether or not it is
//! touched). The binary holds one test, so nothing else moves that peak.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use offload_tasks::thumbnail::{Limits, Thumbnail, ThumbnailError};
use support::alloc::{MB, mb};
use support::thumbnail::quadrants;

/// The process's peak virtual size in bytes, where the OS reports it.
fn vm_peak() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPeak:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A real 16x16 progressive JPEG, three full-resolution components (4:4:4), whose frame
/// header is then patched to declare `side` x `side`.
fn progressive_bomb(side: u16) -> Vec<u8> {
    let src = quadrants(16, 16);
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, 90);
    encoder.set_progressive(true);
    encoder.set_sampling_factor(SamplingFactor::R_4_4_4);
    encoder
        .encode(src.as_raw(), 16, 16, ColorType::Rgb)
        .unwrap();
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC2]).unwrap();
    // FF C2, length (2), precision (1), height (2), width (2), components (1).
    assert_eq!(jpeg[sof + 9], 3, "three components");
    jpeg[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    jpeg
}

#[test]
fn smoke() {
    // 10000x10000 is within the default pixel limit, and its coefficient buffer (3 x 10^8
    // coefficients of 2 bytes: 600 MB) within the default budget of 8 bytes a pixel; only
    // the data can show the file is not that image.
    let jpeg = progressive_bomb(10_000);
    assert!(jpeg.len() < 2_000, "{} bytes", jpeg.len());
    let before = vm_peak();
    let start = Instant::now();
    let result = Thumbnail::fit(jpeg, 256, 256)
        .limits(Limits::default())
        .run();
    let elapsed = start.elapsed();
    let grown = before.zip(vm_peak()).map(|(b, a)| a.saturating_sub(b));
    eprintln!("progressive 10000x10000 in under 2 KB: {elapsed:?}, VmPeak grew {grown:?} bytes");
    match result {
        Err(ThumbnailError::Undecodable { reason, .. }) => {
            assert!(reason.contains("more data than the file holds"), "{reason}");
        }
        other => panic!("expected undecodable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
    if let Some(grown) = grown {
        assert!(grown < 64 * MB, "VmPeak grew {:.1} MB", mb(grown));
    }
}
