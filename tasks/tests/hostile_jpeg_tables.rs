//! A JPEG that restates its Huffman tables hundreds of thousands of times costs a copy of
//! each, not a lookup-table build of each.
//!
//! A photo wide enough to be decoded at 1/8 goes through the DC-only fast path, which reads
//! the tables itself. It builds lookup tables (a few thousand entries each) only for the
//! tables a scan uses, as libjpeg does; built eagerly, the 200,000 redefinitions here would
//! cost about 400 million table writes.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use offload_tasks::thumbnail::Thumbnail;
use support::thumbnail::quadrants;

/// Segments of one DHT each: luminance AC table 0, one 1-bit code for the symbol 0x01.
fn redefinitions(count: usize) -> Vec<u8> {
    let mut counts = [0u8; 16];
    counts[0] = 1;
    let mut segment = vec![0xFF, 0xC4, 0x00, 0x14, 0x10];
    segment.extend_from_slice(&counts);
    segment.push(0x01);
    segment.repeat(count)
}

#[test]
fn a_flood_of_table_redefinitions_is_read_in_linear_time() {
    // 3072 px wide: at 256 px out, the 1/8 scale (see `jpeg::shrink`).
    let src = quadrants(3072, 256);
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, 80);
    encoder.set_sampling_factor(SamplingFactor::R_4_4_4);
    encoder
        .encode(src.as_raw(), 3072, 256, ColorType::Rgb)
        .unwrap();
    // After SOI, before the encoder's own tables (which the scan then uses).
    let flood = redefinitions(200_000);
    let mut hostile = jpeg[..2].to_vec();
    hostile.extend_from_slice(&flood);
    hostile.extend_from_slice(&jpeg[2..]);
    assert!(hostile.len() > 4_000_000, "{} bytes", hostile.len());

    let start = Instant::now();
    let out = Thumbnail::fit(hostile, 256, 256).run().unwrap();
    let elapsed = start.elapsed();
    assert_eq!((out.width, out.height), (256, 21));
    // A debug build parses the 4 MB of segments in well under a second here.
    assert!(
        elapsed < Duration::from_secs(3),
        "took {elapsed:?} for 200,000 table redefinitions"
    );
}
