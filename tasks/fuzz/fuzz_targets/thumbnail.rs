//! Fuzzes `thumbnail()`: any bytes and any options must give `Ok` or a typed error, never a
//! panic, abort or runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offload_tasks::thumbnail::{Fit, Format, Limits, ThumbnailError, ThumbnailOptions, thumbnail};

fuzz_target!(|data: &[u8]| {
    // The first 4 bytes choose the options, the rest is the image.
    let Some((head, image)) = data.split_first_chunk::<4>() else {
        return;
    };
    let mut options = ThumbnailOptions::new(u32::from(head[0] % 64), u32::from(head[1] % 64));
    options.fit = [Fit::Inside, Fit::Cover, Fit::Exact][usize::from(head[2] % 3)];
    options.format = [Format::Jpeg, Format::Png, Format::WebP][usize::from(head[2] / 3 % 3)];
    options.allow_upscale = head[2] & 0x80 != 0;
    options.quality = head[3] % 110; // sometimes out of range on purpose
    // Small limits keep each run fast; the bomb checks are what is under test.
    options.limits = Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    match thumbnail(image, &options) {
        Ok(out) => {
            assert!(out.width >= 1 && out.height >= 1);
            assert!(!out.bytes.is_empty());
        }
        // Encoding a thumbnail of a decoded image is not supposed to fail.
        Err(e @ ThumbnailError::Encode { .. }) => panic!("{e}"),
        Err(_) => {}
    }
});
