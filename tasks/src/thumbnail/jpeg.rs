//! JPEG: header and EXIF reading, DCT-domain shrink-on-load, encoding.
//!
//! Two builds with the same three functions. The default decodes with libjpeg-turbo's decoder
//! as MozJPEG vendors it, compiled by `cc` alone (no SIMD, no cmake, no nasm), falls back to
//! pure Rust (`jpeg-decoder`) for lossless JPEG, which that libjpeg-turbo 2 base lacks, and
//! encodes with `jpeg-encoder`. The `turbojpeg` feature uses libjpeg-turbo 3 with SIMD for
//! everything (needs cmake and nasm to build).

use image::metadata::Orientation;

use super::raster::Raster;
use super::{Limits, SourceFormat, ThumbnailError};

mod dc;
#[cfg(not(feature = "turbojpeg"))]
mod libjpeg;
#[cfg(not(feature = "turbojpeg"))]
mod pure;
#[cfg(feature = "turbojpeg")]
mod turbo;

#[cfg(not(feature = "turbojpeg"))]
use libjpeg as backend;
#[cfg(feature = "turbojpeg")]
use turbo as backend;

pub(crate) use backend::encode;

/// How much larger than the output the shrunk decode must stay, per axis.
///
/// The DCT-domain shrink is a box-like filter, so the last step is left to Lanczos3. Measured
/// against a Lanczos3 of the full decode (tests/thumbnail_quality.rs), 1920x1280 into 256 px:
/// headroom 2 decodes at 1/2 and gives 55.6 dB, 1.5 decodes at 1/4 and gives 51.8 dB in 14%
/// less time. (sharp's default `fastShrinkOnLoad` shrinks as far as the output size allows.)
const HEADROOM: f64 = 1.5;

/// More scans than this is not a real photo but a CPU bomb (a progressive file can repeat
/// scans over the whole image); libjpeg-turbo's own fuzzers use the same guard.
const SCAN_LIMIT: u32 = 500;

fn corrupt(e: impl ToString) -> ThumbnailError {
    ThumbnailError::undecodable(SourceFormat::Jpeg, e)
}

/// What the header says, read without touching the entropy-coded data.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) orientation: Orientation,
    lossless: bool,
    #[cfg(feature = "turbojpeg")]
    cmyk: bool,
    /// What the decoder must hold beside the output: see [`Frame::buffered_bytes`].
    buffered_bytes: u64,
    /// See [`Frame::data_fills_first_scan`].
    data_fills_first_scan: bool,
}

impl Header {
    /// The header of a `width` x `height` image in `bytes`, with its EXIF orientation.
    fn new(
        bytes: &[u8],
        width: usize,
        height: usize,
        lossless: bool,
    ) -> Result<Self, ThumbnailError> {
        let side = |v: usize| u32::try_from(v).map_err(corrupt);
        let (width, height) = (side(width)?, side(height)?);
        if width == 0 || height == 0 {
            return Err(corrupt("zero image dimension"));
        }
        Ok(Header {
            width,
            height,
            orientation: exif_orientation(bytes).unwrap_or(Orientation::NoTransforms),
            lossless,
            #[cfg(feature = "turbojpeg")]
            cmyk: false,
            buffered_bytes: 0,
            data_fills_first_scan: true,
        })
    }
}

/// Reads the header through the backend, after our own look at the frame header (which
/// picks the decoder for lossless files and sizes the coefficient buffer).
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, ThumbnailError> {
    let frame = Frame::parse(bytes)?;
    let mut header = backend::read_header(bytes, frame.lossless())?;
    header.buffered_bytes = frame.buffered_bytes();
    header.data_fills_first_scan = frame.data_fills_first_scan();
    Ok(header)
}

/// Coefficient memory allowed per pixel the limits allow: four full-resolution components
/// (CMYK 4:4:4) of 16-bit coefficients, so every real photo within
/// [`Limits::max_pixels`] passes and only odd sampling or component counts are refused.
const BUFFER_BYTES_PER_PIXEL: u64 = 8;

/// The budget's floor, so the block padding of a thin image under tiny limits passes.
const BUFFER_BYTES_FLOOR: u64 = 64 << 20;

/// The frame and first scan headers (ITU T.81 B.2.2, B.2.3), read by us so that the memory
/// a decode needs is known before any decoder allocates it.
#[derive(Debug)]
struct Frame {
    /// The SOF marker's low nibble: the coding process.
    process: u8,
    width: u32,
    height: u32,
    /// Horizontal and vertical sampling factors of each component.
    sampling: Vec<(u32, u32)>,
    /// Component identifiers, in the frame's order.
    ids: Vec<u8>,
    /// Indices (into `sampling`) of the components in the first scan; fewer than the
    /// frame's means several scans.
    first_scan: Vec<usize>,
    /// Bytes after the first scan's header, to the end of the input.
    data_bytes: u64,
}

impl Frame {
    fn parse(bytes: &[u8]) -> Result<Self, ThumbnailError> {
        let mut frame = None;
        for (marker, payload, rest) in segments(bytes) {
            match marker {
                // SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC).
                0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                    let at = |i: usize| payload.get(i).copied().map(u32::from);
                    let field = |i: usize| Some(at(i)? << 8 | at(i + 1)?);
                    let bad = || corrupt("short frame header");
                    let count = at(5).ok_or_else(bad)? as usize;
                    let component = |c: usize| payload.get(6 + 3 * c..6 + 3 * c + 2);
                    let (ids, sampling) = (0..count)
                        .map(|c| {
                            component(c)
                                .map(|s| (s[0], (u32::from(s[1] >> 4), u32::from(s[1] & 15))))
                        })
                        .collect::<Option<(Vec<_>, Vec<_>)>>()
                        .ok_or_else(bad)?;
                    frame = Some(Frame {
                        process: marker & 15,
                        height: field(1).ok_or_else(bad)?,
                        width: field(3).ok_or_else(bad)?,
                        sampling,
                        first_scan: (0..count).collect(),
                        ids,
                        data_bytes: 0,
                    });
                }
                0xDA => {
                    let mut frame = frame.ok_or_else(|| corrupt("scan before the frame header"))?;
                    // Ns, then Ns (selector, tables) pairs; unknown selectors are left to
                    // the decoder, which refuses them.
                    let count = payload.first().map_or(0, |&n| usize::from(n));
                    frame.first_scan = (0..count)
                        .filter_map(|i| payload.get(1 + 2 * i))
                        .filter_map(|id| frame.ids.iter().position(|c| c == id))
                        .collect();
                    frame.data_bytes = rest as u64;
                    return Ok(frame);
                }
                _ => {}
            }
        }
        Err(corrupt("no frame header and scan"))
    }

    /// SOF3, SOF7, SOF11 and SOF15: lossless, no DCT.
    fn lossless(&self) -> bool {
        self.process & 3 == 3
    }

    /// SOF2, SOF6, SOF10 and SOF14: progressive.
    fn progressive(&self) -> bool {
        self.process & 3 == 2
    }

    /// Bytes of the whole-image coefficient buffer a decoder keeps for a file of several
    /// scans (progressive, or components in separate scans): 64 16-bit coefficients per
    /// block, at the full size whatever the output scale, blocks rounded up to each
    /// component's sampling factors as libjpeg does. 0 for a single-scan file, which is
    /// decoded one row of blocks at a time.
    fn buffered_bytes(&self) -> u64 {
        let multi_scan = self.progressive() || self.first_scan.len() < self.sampling.len();
        if !multi_scan || self.lossless() {
            return 0;
        }
        let (h_max, v_max) = self.max_sampling();
        let blocks = |side: u32, factor: u32, max: u32| {
            let factor = u64::from(factor.max(1));
            let blocks = (u64::from(side) * factor).div_ceil(u64::from(max) * 8);
            blocks.next_multiple_of(factor)
        };
        self.sampling
            .iter()
            .map(|&(h, v)| blocks(self.width, h, h_max) * blocks(self.height, v, v_max) * 128)
            .sum()
    }

    fn max_sampling(&self) -> (u32, u32) {
        let max = |pick: fn(&(u32, u32)) -> u32| self.sampling.iter().map(pick).max().unwrap_or(1);
        (max(|s| s.0).max(1), max(|s| s.1).max(1))
    }

    /// Whether the bytes after the first scan's header can hold that scan. Every block of a
    /// Huffman-coded DCT scan starts with a code of at least one bit (its DC difference), so
    /// a file with fewer bits than the scan has blocks is truncated, and is refused before a
    /// decoder sizes anything from the header. Arithmetic coding can spend less than a bit
    /// on a block and lossless coding has no blocks: both pass.
    fn data_fills_first_scan(&self) -> bool {
        if self.process & 8 != 0 || self.lossless() {
            return true;
        }
        let (h_max, v_max) = self.max_sampling();
        // A component's blocks without MCU padding: a lower bound in every scan layout.
        let side = |side: u32, factor: u32, max: u32| {
            (u64::from(side) * u64::from(factor))
                .div_ceil(u64::from(max))
                .div_ceil(8)
        };
        let blocks: u64 = self
            .first_scan
            .iter()
            .filter_map(|&c| self.sampling.get(c))
            .map(|&(h, v)| side(self.width, h, h_max) * side(self.height, v, v_max))
            .sum();
        blocks <= self.data_bytes.saturating_mul(8)
    }
}

/// The marker segments up to and including the first start of scan, as (marker, payload,
/// bytes left after the segment).
fn segments(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8], usize)> {
    let mut at = 2; // after SOI
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        loop {
            // Markers may be preceded by any number of 0xFF fill bytes.
            while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            if bytes.get(at) != Some(&0xFF) {
                return None;
            }
            let marker = *bytes.get(at + 1)?;
            at += 2;
            match marker {
                // Standalone markers carry no length.
                0x01 | 0xD0..=0xD7 => continue,
                0xD9 => return None,
                _ => {}
            }
            let len = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
            if len < 2 {
                return None;
            }
            let payload = bytes.get(at + 2..at + len)?;
            at += len;
            // Metadata and tables come before the first scan: stop looking there.
            done = marker == 0xDA;
            return Some((marker, payload, bytes.len() - at));
        }
    })
}

/// The shrink-on-load denominator (1, 2, 4 or 8): the largest that still leaves
/// [`HEADROOM`] over an output of `out_w` x `out_h` cut from a `crop_w` x `crop_h` region of
/// the stored image. Lossless JPEG has no DCT to shrink in.
fn shrink(header: &Header, (crop_w, crop_h): (f64, f64), (out_w, out_h): (u32, u32)) -> u32 {
    if header.lossless {
        return 1;
    }
    [2, 4, 8]
        .into_iter()
        .take_while(|&d| {
            let factor = 1.0 / f64::from(d);
            crop_w * factor >= HEADROOM * f64::from(out_w)
                && crop_h * factor >= HEADROOM * f64::from(out_h)
        })
        .last()
        .unwrap_or(1)
}

/// Decodes at the DCT scale [`shrink`] picks for an output of `out` cut from a `crop`
/// region of the stored image.
///
/// Returns the decoded RGB raster and the scale. The raster's size is the stored size times
/// the scale, rounded up: when a side is not a multiple of the DCT block, its last row or
/// column is a partial pixel, so the scale (not the raster size) maps source coordinates.
///
/// A file too short for the blocks its first scan declares, or whose coefficient buffer
/// would be over the budget [`Limits::max_pixels`] implies, is refused before the decoder
/// allocates anything.
pub(crate) fn decode_scaled(
    bytes: &[u8],
    header: &Header,
    crop: (f64, f64),
    out: (u32, u32),
    limits: &Limits,
) -> Result<(Raster, f64), ThumbnailError> {
    let budget = limits
        .max_pixels
        .saturating_mul(BUFFER_BYTES_PER_PIXEL)
        .max(BUFFER_BYTES_FLOOR);
    if header.buffered_bytes > budget {
        return Err(corrupt(format!(
            "decoding needs a {} byte coefficient buffer, over the budget of {budget} bytes",
            header.buffered_bytes
        )));
    }
    if !header.data_fills_first_scan {
        return Err(corrupt(format!(
            "the first scan of a {}x{} image needs more data than the file holds",
            header.width, header.height
        )));
    }
    if scans(bytes) > SCAN_LIMIT as usize {
        return Err(corrupt(format!("more than {SCAN_LIMIT} scans")));
    }
    let denom = shrink(header, crop, out);
    // At 1/8 the DC coefficients are the image: the common layout skips the rest (see
    // `dc`); any other file, or one that path does not take as well-formed, goes to the
    // backend, which decodes or refuses it.
    let fast = (denom == 8).then(|| dc::decode(bytes)).flatten();
    if let Some(raster) = &fast {
        // The fast path reads the same header: a different size would be its bug.
        debug_assert_eq!((raster.width, raster.height), eighth(header));
    }
    let raster = match fast {
        Some(raster) if (raster.width, raster.height) == eighth(header) => raster,
        _ => backend::decode(bytes, header, denom)?,
    };
    Ok((raster, 1.0 / f64::from(denom)))
}

/// The size of a 1/8 decode: each side over 8, rounded up.
fn eighth(header: &Header) -> (u32, u32) {
    (header.width.div_ceil(8), header.height.div_ceil(8))
}

/// CMYK to RGB. Adobe software writes CMYK JPEGs with inverted values (ink-free is 255);
/// `inverted` says whether the samples are still that way (libjpeg-turbo hands them over as
/// stored, jpeg-decoder turns them back).
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let flip = if inverted { 0 } else { 255 };
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = u32::from(px[3] ^ flip);
        for &c in &px[..3] {
            out.push(((u32::from(c ^ flip) * k + 127) / 255) as u8);
        }
    }
    out
}

/// Finds the orientation tag in the first `APP1 Exif` segment, if any.
pub(crate) fn exif_orientation(bytes: &[u8]) -> Option<Orientation> {
    segments(bytes)
        .filter(|&(marker, _, _)| marker == 0xE1)
        .find_map(|(_, segment, _)| segment.strip_prefix(b"Exif\0\0"))
        .and_then(Orientation::from_exif_chunk)
}

/// Start-of-scan markers in the file. Entropy-coded data escapes every `0xFF` byte (as
/// `FF 00`), so each `FF DA` pair is a real marker.
fn scans(bytes: &[u8]) -> usize {
    memchr::memchr_iter(0xFF, bytes)
        .filter(|&i| bytes.get(i + 1) == Some(&0xDA))
        .count()
}
