//! Shrink-on-load at 1/8 from the DC coefficients alone, for baseline Huffman JPEG.
//!
//! At 1/8 scale each 8x8 block becomes one pixel, the block's mean: its DC coefficient. A
//! general decoder still decodes every AC coefficient to throw it away, and at that scale
//! that Huffman work is nearly all of the time (88% of a libjpeg-turbo decode of a 20
//! megapixel photo, `perf`). Here the AC coefficients are only skipped: one table lookup gives
//! the length of a coefficient's code and value bits together, and of the next one's too when
//! both fit in the lookup, so skipping one or two is a shift; nothing is stored, dequantised
//! or transformed. On that photo this is 1.2-1.27x libjpeg-turbo's (without SIMD) 1/8
//! decode; README's thumbnail section has the comparison with sharp, before and after.
//!
//! Only the common layout takes this path: one baseline scan (SOF0/SOF1, 8-bit) holding
//! every component of the image, grey or YCbCr, with or without restart intervals.
//! Anything else, and anything unexpected in a file of that layout (a code no table has,
//! data that ends early, a wrong restart marker, no end marker after the scan), returns
//! `None`: the general decoder then decodes the file or refuses it with its typed error,
//! so this path never accepts a file the general decoder would refuse.
//!
//! The output is libjpeg's own 1/8 decode, sample for sample: the same rounding of the DC
//! value, the same colour conversion, and chroma with fewer blocks than luma replicated as
//! libjpeg does at that scale. Where libjpeg does more (a component with half the blocks of
//! the largest both ways, as 4:2:0 chroma, which it decodes at 1/4 with a 2x2 inverse DCT)
//! or refuses (sampling factors that do not divide the largest), the file is left to it.
//!
//! Memory is one byte per block plus a copy of one entropy-coded segment (at most the
//! input); the block count comes from the header, so this relies on the caller's checks
//! that the pixel count is within the limits and that the data can hold the first scan
//! (`jpeg::decode_scaled`).

use super::super::raster::Raster;
use super::segments;

/// Bits the lookup tables index by. Codes and code + value pairs longer than this take the
/// slow path (rare in photos: short codes are the frequent ones by construction).
const LOOKUP_BITS: u32 = 11;
const LOOKUP: usize = 1 << LOOKUP_BITS;

/// Decodes `bytes` at 1/8 scale, or `None` when the file is not in the layout this path
/// handles or is not well-formed (see the module docs).
pub(super) fn decode(bytes: &[u8]) -> Option<Raster> {
    let file = File::parse(bytes)?;
    let planes = file.decode_planes(bytes)?;
    Some(file.to_rgb(&planes))
}

/// A Huffman table (ITU T.81 annex C), with the lookups this decoder uses.
struct Table {
    /// By the next [`LOOKUP_BITS`] bits: `length << 8 | symbol`, or 0 when the code is longer.
    symbol: Box<[u16; LOOKUP]>,
    /// For AC skipping, by the next [`LOOKUP_BITS`] bits: one coefficient's code and value
    /// bits, and when a second one fits in the rest of the lookup, both. Packed as
    /// `first_bits | first_advance << 8 | both_bits << 16 | both_advance << 24`, where
    /// `advance` is the run plus one (16 for ZRL, 64 for end of block); `both_*` repeat the
    /// first's when no second one fits. 0 when not even the first fits.
    skip: Box<[u32; LOOKUP]>,
    /// Canonical decoding of longer codes (F.2.2.3): per length, the largest code (or -1)
    /// and the index of its first symbol, relative to its first code.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Table {
    /// A table from a DHT segment's 16 counts and its symbols; `None` if the counts
    /// over-fill the code space.
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Table> {
        let mut table = Table {
            symbol: Box::new([0; LOOKUP]),
            skip: Box::new([0; LOOKUP]),
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: symbols.to_vec(),
        };
        // Single-coefficient skips (`bits << 8 | advance`), from which `skip` is built.
        let mut single = vec![0u16; LOOKUP];
        let mut code = 0u32;
        let mut k = 0usize;
        for length in 1..=16u32 {
            let count = u32::from(counts[length as usize - 1]);
            // Codes of `length` bits must fit in `length` bits, the all-ones code unused
            // (libjpeg refuses the table otherwise).
            if code + count >= 1 << length {
                return None;
            }
            if count > 0 {
                table.offset[length as usize] = k as i32 - code as i32;
                for _ in 0..count {
                    let symbol = *symbols.get(k)?;
                    if length <= LOOKUP_BITS {
                        let shift = LOOKUP_BITS - length;
                        let first = (code << shift) as usize;
                        let entry = (length as u16) << 8 | u16::from(symbol);
                        table.symbol[first..first + (1 << shift)].fill(entry);
                        fill_skip(&mut single, code, length, symbol);
                    }
                    code += 1;
                    k += 1;
                }
                table.max_code[length as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        table.pair_skips(&single);
        Some(table)
    }

    /// Builds `skip` from the single skips: after a coefficient that is not the end of the
    /// block, the bits left in the lookup may hold the next one whole.
    fn pair_skips(&mut self, single: &[u16]) {
        for index in 0..LOOKUP {
            let one = u32::from(single[index]);
            if one == 0 {
                continue;
            }
            let (bits, advance) = (one >> 8, one & 0xFF);
            let mut both = (bits, advance);
            if advance < 64 {
                let rest = (index << bits) & (LOOKUP - 1);
                let two = u32::from(single[rest]);
                if two != 0 && bits + (two >> 8) <= LOOKUP_BITS {
                    both = (bits + (two >> 8), (advance + (two & 0xFF)).min(64));
                }
            }
            self.skip[index] = bits | advance << 8 | both.0 << 16 | both.1 << 24;
        }
    }

    /// The next symbol, or `None` for a code the table does not have.
    #[inline(always)]
    fn decode(&self, bits: &mut Bits<'_>) -> Option<u8> {
        let entry = self.symbol[bits.peek(LOOKUP_BITS) as usize & (LOOKUP - 1)];
        if entry != 0 {
            bits.consume(u32::from(entry >> 8));
            return Some(entry as u8);
        }
        let (symbol, after) = self.decode_long(*bits);
        *bits = after;
        symbol
    }

    /// [`decode`](Self::decode) for codes longer than the lookup. The reader goes in and
    /// out by value, so that the hot loops keep theirs in registers.
    #[cold]
    #[inline(never)]
    fn decode_long<'a>(&self, mut bits: Bits<'a>) -> (Option<u8>, Bits<'a>) {
        let mut code = bits.peek(LOOKUP_BITS + 1) as i32;
        for length in LOOKUP_BITS + 1..=16 {
            if code <= self.max_code[length as usize] {
                bits.consume(length);
                let symbol = usize::try_from(code + self.offset[length as usize])
                    .ok()
                    .and_then(|index| self.symbols.get(index).copied());
                return (symbol, bits);
            }
            code = bits.peek(length + 1) as i32;
        }
        (None, bits)
    }

    /// Skips a block's AC coefficients; `None` on a code the table does not have.
    #[inline(always)]
    fn skip_ac(&self, bits: &mut Bits<'_>) -> Option<()> {
        let mut k = 1u32;
        while k < 64 {
            // Every fast step takes at most LOOKUP_BITS bits.
            if bits.count < LOOKUP_BITS {
                bits.refill();
            }
            let entry = self.skip[(bits.buffer >> (64 - LOOKUP_BITS)) as usize & (LOOKUP - 1)];
            if entry != 0 {
                // Both coefficients, unless the first already ends the block (a run up to
                // the last coefficient ends it without an end-of-block code).
                let first_end = k + ((entry >> 8) & 0xFF);
                let (n, end) = if first_end < 64 {
                    (entry >> 16 & 0xFF, k + (entry >> 24))
                } else {
                    (entry & 0xFF, first_end)
                };
                bits.buffer <<= n;
                bits.count -= n;
                k = end;
                continue;
            }
            // A code or code + value too long for the lookup.
            let symbol = self.decode(bits)?;
            k += ac_advance(symbol)?;
            bits.consume(u32::from(symbol & 15));
        }
        // An end of block, or a run that reaches or overshoots the block's end (which
        // ends it, as in libjpeg).
        Some(())
    }
}

/// How far an AC symbol moves through the block: its run plus one for a coefficient, 16
/// for ZRL, 64 for end of block. `None` for a run with no value other than ZRL, which
/// libjpeg reads as end of block: this path gives up on the file instead.
fn ac_advance(symbol: u8) -> Option<u32> {
    match (u32::from(symbol >> 4), symbol & 15) {
        (0, 0) => Some(64),
        (15, 0) => Some(16),
        (_, 0) => None,
        (run, _) => Some(run + 1),
    }
}

/// Fills the skip entries of an AC code of `length` bits: every value of the value bits
/// that follow it (their count is the symbol's low nibble) gives the same skip. Symbols
/// [`ac_advance`] refuses are left to the slow path, which refuses them too.
fn fill_skip(single: &mut [u16], code: u32, length: u32, symbol: u8) {
    let Some(advance) = ac_advance(symbol) else {
        return;
    };
    let bits = length + u32::from(symbol & 15);
    if bits > LOOKUP_BITS {
        return;
    }
    let shift = LOOKUP_BITS - length;
    let first = (code << shift) as usize;
    let entry = (bits as u16) << 8 | advance as u16;
    single[first..first + (1 << shift)].fill(entry);
}

/// A big-endian bit reader over destuffed entropy-coded data. Reading past the end yields
/// zero bits; the caller checks [`Bits::ended_with_the_data`] at the end of a segment.
#[derive(Clone, Copy)]
struct Bits<'a> {
    /// The data, then [`PADDING`] zero bytes so that refills read whole words.
    data: &'a [u8],
    /// Bytes of real data in `data`.
    len: usize,
    /// Bytes moved into `buffer`, counting the zero bytes past the end.
    at: usize,
    /// The next bits, left-aligned; below the `count` valid ones may sit copies of the
    /// bytes that follow, which the next refill ORs in again.
    buffer: u64,
    count: u32,
}

/// Zero bytes after the data of a segment (see [`Bits`]).
const PADDING: usize = 8;

impl<'a> Bits<'a> {
    /// A reader over `data`, whose last [`PADDING`] bytes are zeros added after the data.
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            len: data.len().saturating_sub(PADDING),
            at: 0,
            buffer: 0,
            count: 0,
        }
    }

    /// Tops the buffer up to at least 56 valid bits. Call it only with fewer than 57
    /// (`word >> count` needs `count < 64`); every caller does so below 24.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.at..self.at + 8) {
            let word = u64::from_be_bytes(word.try_into().unwrap_or([0; 8]));
            // Whole bytes after the valid bits; `count | 56` is `count` plus those bytes.
            self.buffer |= word >> self.count;
            self.at += ((63 - self.count) >> 3) as usize;
            self.count |= 56;
            return;
        }
        *self = self.refill_past_end();
    }

    /// [`refill`](Self::refill) once the reader is past the padding, which only a
    /// segment short of its blocks gets to: zero bytes.
    #[cold]
    #[inline(never)]
    fn refill_past_end(mut self) -> Self {
        while self.count <= 56 {
            let byte = self.data.get(self.at).copied().unwrap_or(0);
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.at += 1;
            self.count += 8;
        }
        self
    }

    /// The next `n` bits (1 to 24) without consuming them.
    #[inline(always)]
    fn peek(&mut self, n: u32) -> u32 {
        if self.count < n {
            self.refill();
        }
        (self.buffer >> (64 - n)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        if self.count < n {
            self.refill();
        }
        self.buffer <<= n;
        self.count -= n;
    }

    /// `n` bits as a value (F.2.2.1 `RECEIVE` then `EXTEND`): a signed DC difference.
    #[inline(always)]
    fn receive_extend(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        let value = self.peek(n) as i32;
        self.consume(n);
        if value < 1 << (n - 1) {
            value - (1 << n) + 1
        } else {
            value
        }
    }

    /// Whether the blocks took the data exactly, up to the padding bits of its last byte:
    /// not more (the data was cut short) and not a whole byte less (bytes left over before
    /// the marker: libjpeg reports those before a restart marker as corrupt data; before the
    /// end of the image it may drop a few silently, so this is stricter there).
    fn ended_with_the_data(&self) -> bool {
        self.consumed().div_ceil(8) == self.len as u64
    }

    /// Whether more bits were taken than the data holds (the rest came from the padding).
    fn overran(&self) -> bool {
        self.consumed() > self.len as u64 * 8
    }

    fn consumed(&self) -> u64 {
        self.at as u64 * 8 - u64::from(self.count)
    }
}

/// One frame component as the scan codes it.
struct Component {
    h: usize,
    v: usize,
    /// Its quantisation table's DC step.
    step: i32,
    dc_table: usize,
    ac_table: usize,
}

/// A frame header's component: its id, sampling factors and quantisation table.
type FrameComponent = (u8, usize, usize, usize);

/// What the headers say, for a file this path decodes.
struct File {
    width: usize,
    height: usize,
    components: Vec<Component>,
    dc_tables: [Option<Table>; 4],
    ac_tables: [Option<Table>; 4],
    restart_interval: usize,
    /// Where the entropy-coded data of the scan starts.
    data: usize,
}

impl File {
    fn parse(bytes: &[u8]) -> Option<File> {
        if bytes.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut dc_steps = [0i32; 4];
        // Tables are kept as the file states them and built only once a scan uses them
        // (as libjpeg does): a file of many tables costs a copy of each, not a build.
        let mut dc_raw: [Option<RawTable<'_>>; 4] = [None; 4];
        let mut ac_raw: [Option<RawTable<'_>>; 4] = [None; 4];
        let mut restart_interval = 0;
        let mut frame: Option<(usize, usize, Vec<FrameComponent>)> = None;
        let mut adobe_transform = None;
        // The marker segments as `jpeg::segments` walks them, which (as libjpeg) passes over
        // fill bytes and parameterless markers and stops at anything malformed.
        for (marker, payload, after) in segments(bytes) {
            match marker {
                // Baseline and extended sequential Huffman; 8-bit samples only.
                0xC0 | 0xC1 => {
                    if frame.is_some() || *payload.first()? != 8 {
                        return None;
                    }
                    let field = |i: usize| {
                        Some(usize::from(u16::from_be_bytes([
                            *payload.get(i)?,
                            *payload.get(i + 1)?,
                        ])))
                    };
                    let (height, width) = (field(1)?, field(3)?);
                    let count = usize::from(*payload.get(5)?);
                    if width == 0
                        || height == 0
                        || !(count == 1 || count == 3)
                        || payload.len() != 6 + 3 * count
                    {
                        return None;
                    }
                    let mut components = Vec::with_capacity(count);
                    for c in 0..count {
                        let spec = payload.get(6 + 3 * c..9 + 3 * c)?;
                        let (h, v) = (usize::from(spec[1] >> 4), usize::from(spec[1] & 15));
                        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || spec[2] > 3 {
                            return None;
                        }
                        if components.iter().any(|c: &FrameComponent| c.0 == spec[0]) {
                            return None;
                        }
                        components.push((spec[0], h, v, usize::from(spec[2])));
                    }
                    // libjpeg's limit on the blocks of one MCU.
                    if count > 1 && components.iter().map(|c| c.1 * c.2).sum::<usize>() > 10 {
                        return None;
                    }
                    frame = Some((width, height, components));
                }
                // Every other frame type: progressive, lossless, arithmetic, hierarchical.
                0xC2..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return None,
                0xC4 => parse_dht(payload, &mut dc_raw, &mut ac_raw)?,
                0xCC => return None,
                0xDB => parse_dqt(payload, &mut dc_steps)?,
                0xDD => {
                    let &[high, low] = payload else { return None };
                    restart_interval = usize::from(u16::from_be_bytes([high, low]));
                }
                // JFIF: libjpeg warns about (so refuses) a major version other than 1.
                0xE0 if payload.len() >= 14 && payload.starts_with(b"JFIF\0") => {
                    if payload[5] != 1 {
                        return None;
                    }
                }
                // Adobe: its transform flag says whether three components are YCbCr (1).
                // A segment too short to hold the flag is ignored, as libjpeg does.
                0xEE if payload.starts_with(b"Adobe") && payload.len() >= 12 => {
                    adobe_transform = Some(payload[11]);
                }
                0xDA => {
                    let (width, height, spec) = frame?;
                    let count = usize::from(*payload.first()?);
                    // One scan holding every component, baseline spectral selection.
                    if count != spec.len()
                        || payload.len() != 4 + 2 * count
                        || payload.get(1 + 2 * count..)? != [0, 63, 0]
                    {
                        return None;
                    }
                    // Three components are YCbCr unless an Adobe segment says otherwise or,
                    // without one, their ids are 'R' 'G' 'B' (as libjpeg reads them).
                    let rgb_ids = spec.iter().map(|c| c.0).eq(*b"RGB");
                    if spec.len() == 3 && adobe_transform.map_or(rgb_ids, |t| t != 1) {
                        return None;
                    }
                    let mut components = Vec::with_capacity(count);
                    let mut dc_tables: [Option<Table>; 4] = Default::default();
                    let mut ac_tables: [Option<Table>; 4] = Default::default();
                    for (i, &(id, h, v, quant)) in spec.iter().enumerate() {
                        let pair = payload.get(1 + 2 * i..3 + 2 * i)?;
                        if pair[0] != id {
                            return None;
                        }
                        let (dc_table, ac_table) =
                            (usize::from(pair[1] >> 4), usize::from(pair[1] & 15));
                        if dc_table > 3 || ac_table > 3 {
                            return None;
                        }
                        if dc_tables[dc_table].is_none() {
                            let (counts, symbols) = dc_raw[dc_table]?;
                            // A DC table's symbols are the bit counts of differences:
                            // libjpeg refuses one above 15, and an 8-bit image has none
                            // above 11 (a table with one is left to libjpeg).
                            if symbols.iter().any(|&s| s > 11) {
                                return None;
                            }
                            dc_tables[dc_table] = Some(Table::new(counts, symbols)?);
                        }
                        if ac_tables[ac_table].is_none() {
                            let (counts, symbols) = ac_raw[ac_table]?;
                            ac_tables[ac_table] = Some(Table::new(counts, symbols)?);
                        }
                        let step = dc_steps[quant];
                        if step == 0 {
                            return None;
                        }
                        components.push(Component {
                            h,
                            v,
                            step,
                            dc_table,
                            ac_table,
                        });
                    }
                    // libjpeg decodes a component with half the blocks of the largest both
                    // ways (4:2:0 chroma) at 1/4 instead, with a 2x2 inverse DCT of its AC
                    // coefficients: left to it, so that this path's output is always the
                    // same as libjpeg's own 1/8 decode.
                    let (max_h, max_v) = spec
                        .iter()
                        .fold((1, 1), |(h, v), c| (h.max(c.1), v.max(c.2)));
                    if spec
                        .iter()
                        .any(|c| max_h % (2 * c.1) == 0 && max_v % (2 * c.2) == 0)
                    {
                        return None;
                    }
                    // Factors that do not divide the largest (Y 3x1 with Cb 2x1): libjpeg
                    // refuses to upsample those.
                    if spec.iter().any(|c| max_h % c.1 != 0 || max_v % c.2 != 0) {
                        return None;
                    }
                    // A single-component scan is not interleaved: one block per unit.
                    if count == 1 {
                        components[0].h = 1;
                        components[0].v = 1;
                    }
                    return Some(File {
                        width,
                        height,
                        components,
                        dc_tables,
                        ac_tables,
                        restart_interval,
                        data: bytes.len() - after,
                    });
                }
                // Application data and comments are skipped.
                0xE0..=0xEF | 0xFE => {}
                // Anything else (reserved markers, DNL, a second SOI) is left to libjpeg.
                _ => return None,
            }
        }
        // Malformed, or no scan.
        None
    }

    fn max_sampling(&self) -> (usize, usize) {
        let h = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        (h, v)
    }

    /// MCUs per row and per column.
    fn mcus(&self) -> (usize, usize) {
        let (h, v) = self.max_sampling();
        (self.width.div_ceil(8 * h), self.height.div_ceil(8 * v))
    }

    /// Decodes every block's DC value into one plane per component (blocks of the whole
    /// MCU grid, padding included), already turned into 8-bit samples.
    fn decode_planes(&self, bytes: &[u8]) -> Option<Vec<Plane>> {
        let (mcus_x, mcus_y) = self.mcus();
        let mut planes: Vec<Plane> = self
            .components
            .iter()
            .map(|c| Plane {
                width: mcus_x * c.h,
                samples: vec![0; mcus_x * c.h * mcus_y * c.v],
            })
            .collect();
        let total = mcus_x.checked_mul(mcus_y)?;
        let interval = if self.restart_interval == 0 {
            total
        } else {
            self.restart_interval
        };
        // Per component: its tables, DC step, blocks per MCU and plane.
        let coding = self
            .components
            .iter()
            .map(|c| {
                let dc = self.dc_tables[c.dc_table].as_ref()?;
                let ac = self.ac_tables[c.ac_table].as_ref()?;
                Some((dc, ac, c.step, c.h, c.v))
            })
            .collect::<Option<Vec<_>>>()?;
        let mut segments = Segments::new(bytes, self.data);
        let mut mcu = 0;
        let mut expected_rst = 0u8;
        let mut destuffed = Vec::new();
        while mcu < total {
            let end_marker = segments.next_into(&mut destuffed)?;
            destuffed.extend_from_slice(&[0; PADDING]);
            let mut bits = Bits::new(&destuffed);
            let mut predictors = [0i32; 3];
            let last = (mcu + interval).min(total);
            while mcu < last {
                let (mx, my) = (mcu % mcus_x, mcu / mcus_x);
                for (c, &(dc, ac, step, h, v)) in coding.iter().enumerate() {
                    let plane = &mut planes[c];
                    for by in 0..v {
                        let row = (my * v + by) * plane.width + mx * h;
                        for bx in 0..h {
                            // At most 11 bits: checked where the table was built.
                            let size = u32::from(dc.decode(&mut bits)?);
                            // Wrapping, as in libjpeg, for corrupt data.
                            predictors[c] = predictors[c].wrapping_add(bits.receive_extend(size));
                            ac.skip_ac(&mut bits)?;
                            plane.samples[row + bx] = sample(predictors[c], step);
                        }
                    }
                }
                mcu += 1;
                // Data cut short: give up now rather than decode the padding to the end.
                if bits.overran() {
                    return None;
                }
            }
            if !bits.ended_with_the_data() {
                return None;
            }
            if mcu < total {
                // A restart marker, in sequence, ends every interval but the last.
                if end_marker != 0xD0 + expected_rst {
                    return None;
                }
                expected_rst = (expected_rst + 1) % 8;
            } else if end_marker != 0xD9 {
                // One scan, then the end of the image.
                return None;
            }
        }
        Some(planes)
    }

    /// The planes upsampled (by replication) to the 1/8 output size and converted to RGB.
    fn to_rgb(&self, planes: &[Plane]) -> Raster {
        let (out_w, out_h) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let (max_h, max_v) = self.max_sampling();
        let mut data = Vec::with_capacity(out_w * out_h * 3);
        let at = |c: usize, x: usize, y: usize| -> u8 {
            let component = &self.components[c];
            let plane = &planes[c];
            let (px, py) = (x * component.h / max_h, y * component.v / max_v);
            plane.samples[py * plane.width + px]
        };
        for y in 0..out_h {
            for x in 0..out_w {
                if self.components.len() == 1 {
                    let grey = at(0, x, y);
                    data.extend_from_slice(&[grey, grey, grey]);
                } else {
                    data.extend_from_slice(&ycbcr_to_rgb(at(0, x, y), at(1, x, y), at(2, x, y)));
                }
            }
        }
        Raster {
            width: out_w as u32,
            height: out_h as u32,
            channels: 3,
            data,
        }
    }
}

/// One component's DC samples, one per block.
struct Plane {
    width: usize,
    samples: Vec<u8>,
}

/// A block's mean as an 8-bit sample, as libjpeg's 1x1 inverse DCT makes it: the DC value
/// kept as a 16-bit coefficient (wrapping, for corrupt data), dequantised, over 8 rounded,
/// then through libjpeg's range-limit table, which clamps values up to 512 away from the
/// range and wraps beyond (so corrupt data decodes to the same samples both ways).
fn sample(dc: i32, step: i32) -> u8 {
    let value = (i32::from(dc as i16) * step + 4) >> 3;
    match value & 1023 {
        x @ 0..128 => (x + 128) as u8,
        128..512 => 255,
        512..896 => 0,
        x => (x - 896) as u8,
    }
}

/// JFIF's YCbCr to RGB, in libjpeg's 16-bit fixed point.
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const HALF: i32 = 1 << 15;
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let r = y + ((91_881 * cr + HALF) >> 16);
    let g = y + ((-22_554 * cb - 46_802 * cr + HALF) >> 16);
    let b = y + ((116_130 * cb + HALF) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

/// A Huffman table as a DHT segment states it: the code counts per length, and the symbols.
type RawTable<'a> = (&'a [u8; 16], &'a [u8]);

/// Reads the DHT segment's tables into their slots.
fn parse_dht<'a>(
    mut payload: &'a [u8],
    dc_tables: &mut [Option<RawTable<'a>>; 4],
    ac_tables: &mut [Option<RawTable<'a>>; 4],
) -> Option<()> {
    while let Some((&class_id, rest)) = payload.split_first() {
        let counts: &[u8; 16] = rest.get(..16)?.try_into().ok()?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 {
            return None;
        }
        let symbols = rest.get(16..16 + total)?;
        let id = usize::from(class_id & 15);
        match (class_id >> 4, id) {
            (0, 0..=3) => dc_tables[id] = Some((counts, symbols)),
            (1, 0..=3) => ac_tables[id] = Some((counts, symbols)),
            _ => return None,
        }
        payload = &rest[16 + total..];
    }
    Some(())
}

/// Reads each DQT table's DC step (its first entry, 8- or 16-bit).
fn parse_dqt(mut payload: &[u8], dc_steps: &mut [i32; 4]) -> Option<()> {
    while !payload.is_empty() {
        let (precision, id) = (payload[0] >> 4, usize::from(payload[0] & 15));
        let entries = if precision == 0 { 64 } else { 128 };
        let table = payload.get(1..1 + entries)?;
        if id > 3 || precision > 1 {
            return None;
        }
        dc_steps[id] = if precision == 0 {
            i32::from(table[0])
        } else {
            i32::from(u16::from_be_bytes([table[0], table[1]]))
        };
        // libjpeg keeps the steps in 16 signed bits in some builds: larger ones are left
        // to it, so the product below is the same everywhere.
        if dc_steps[id] > i32::from(i16::MAX) {
            return None;
        }
        payload = &payload[1 + entries..];
    }
    Some(())
}

/// The entropy-coded segments of a scan, each ended by a marker.
struct Segments<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Segments<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Segments<'a> {
        Segments { bytes, at }
    }

    /// Copies the next segment into `out` without its byte stuffing (`FF 00` is a data
    /// `FF`) and returns the marker that ends it; `None` if the data ends first.
    fn next_into(&mut self, out: &mut Vec<u8>) -> Option<u8> {
        out.clear();
        loop {
            let rest = self.bytes.get(self.at..)?;
            let ff = memchr::memchr(0xFF, rest)?;
            out.extend_from_slice(&rest[..ff]);
            // Fill bytes (FF FF ...) may come before a marker.
            let mut next = ff + 1;
            while rest.get(next) == Some(&0xFF) {
                next += 1;
            }
            let code = *rest.get(next)?;
            self.at += next + 1;
            if code == 0 {
                out.push(0xFF);
                continue;
            }
            return Some(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::super::{backend, read_header};
    use super::*;

    /// A deterministic photo stand-in with edges, gradients and noise, at a size that is a
    /// multiple of no MCU.
    fn picture(width: u16, height: u16) -> Vec<u8> {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let mut data = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
        for y in 0..u32::from(height) {
            for x in 0..u32::from(width) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let noise = (seed % 24) as u32;
                let edge = if (x / 37 + y / 23) % 2 == 0 { 60 } else { 0 };
                data.push(((x * 255 / u32::from(width)) / 2 + edge + noise) as u8);
                data.push(((y * 255 / u32::from(height)) / 2 + noise) as u8);
                data.push((((x + y) * 3) % 200 + noise) as u8);
            }
        }
        data
    }

    fn encode(sampling: SamplingFactor, restart: u16, grey: bool) -> Vec<u8> {
        let (width, height) = (203, 131);
        let rgb = picture(width, height);
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 85);
        encoder.set_sampling_factor(sampling);
        encoder.set_restart_interval(restart);
        if grey {
            let luma: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
            encoder
                .encode(&luma, width, height, ColorType::Luma)
                .expect("encodes");
        } else {
            encoder
                .encode(&rgb, width, height, ColorType::Rgb)
                .expect("encodes");
        }
        out
    }

    /// The general decoder's 1/8 decode of the same file.
    fn reference(bytes: &[u8]) -> Raster {
        let header = read_header(bytes).expect("header");
        backend::decode(bytes, &header, 8).expect("decodes")
    }

    #[test]
    fn its_output_is_the_general_decoders_sample_for_sample() {
        for (sampling, grey) in [
            (SamplingFactor::R_4_4_4, false),
            (SamplingFactor::R_4_4_4, true),
            (SamplingFactor::R_4_2_2, false),
            (SamplingFactor::R_4_4_0, false),
        ] {
            let bytes = encode(sampling, 0, grey);
            let fast = decode(&bytes).expect("takes a baseline file");
            let slow = reference(&bytes);
            assert_eq!((fast.width, fast.height), (slow.width, slow.height));
            assert_eq!((fast.width, fast.height), (26, 17));
            assert!(
                fast.data == slow.data,
                "{sampling:?} grey={grey}: samples differ"
            );
        }
    }

    #[test]
    fn chroma_that_libjpeg_decodes_at_a_larger_scale_is_left_to_it() {
        for bytes in [
            encode(SamplingFactor::R_4_2_0, 0, false),
            include_bytes!("../../../tests/fixtures/images/seeding_1920x1280.jpg").to_vec(),
        ] {
            assert!(decode(&bytes).is_none());
        }
    }

    #[test]
    fn restart_intervals_change_nothing_in_the_output() {
        for sampling in [SamplingFactor::R_4_2_2, SamplingFactor::R_4_4_4] {
            let plain = decode(&encode(sampling, 0, false)).expect("decodes");
            for interval in [1, 3, 7, 50] {
                let bytes = encode(sampling, interval, false);
                assert!(
                    bytes.windows(2).any(|w| w == [0xFF, 0xD1]),
                    "has restart markers"
                );
                let restarted = decode(&bytes).expect("decodes with restarts");
                assert!(
                    restarted.data == plain.data,
                    "{sampling:?} every {interval}"
                );
            }
        }
    }

    /// Headers libjpeg reads in a way this path does not reproduce: it must step aside.
    #[test]
    fn headers_libjpeg_reads_its_own_way_are_left_to_it() {
        let plain = encode(SamplingFactor::R_4_4_4, 0, false);
        // Sampling factors that do not divide the largest (Y 3x1, Cb 2x1, Cr 1x1), which
        // libjpeg refuses to upsample.
        let mut uneven = plain.clone();
        let sof = uneven
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline frame header");
        for (c, factors) in [0x31, 0x21, 0x11].into_iter().enumerate() {
            uneven[sof + 11 + 3 * c] = factors;
        }
        assert!(File::parse(&uneven).is_none());
        // No JFIF segment, an Adobe segment saying RGB (transform 0), then one too short to
        // say anything, which libjpeg ignores: the file is RGB to libjpeg.
        let app0 = 4 + usize::from(u16::from_be_bytes([plain[4], plain[5]]));
        assert_eq!(plain[2..4], [0xFF, 0xE0], "a JFIF segment to take out");
        let mut adobe = plain[..2].to_vec();
        adobe.extend_from_slice(&[0xFF, 0xEE, 0x00, 0x0E]);
        adobe.extend_from_slice(b"Adobe\x00\x64\x00\x00\x00\x00\x00");
        adobe.extend_from_slice(&[0xFF, 0xEE, 0x00, 0x07]);
        adobe.extend_from_slice(b"Adobe");
        adobe.extend_from_slice(&plain[2 + app0 - 2..]);
        let rgb = reference(&adobe);
        assert_eq!(rgb.width, 26, "the general decoder takes it");
        assert!(decode(&adobe).is_none());
    }

    #[test]
    fn other_layouts_are_left_to_the_general_decoder() {
        for bytes in [
            &include_bytes!("../../../tests/fixtures/images/astronaut_64_progressive.jpg")[..],
            &include_bytes!("../../../tests/fixtures/images/astronaut_64_arithmetic.jpg")[..],
            &include_bytes!("../../../tests/fixtures/images/astronaut_64_cmyk.jpg")[..],
        ] {
            assert!(decode(bytes).is_none());
        }
        // Components in scans of their own (jpeg-encoder writes 4:1:1 so).
        let separate = encode(SamplingFactor::R_4_1_1, 0, false);
        assert!(
            reference(&separate).width == 26,
            "the general decoder takes it"
        );
        assert!(decode(&separate).is_none());
    }

    #[test]
    fn damaged_data_is_left_to_the_general_decoder() {
        let whole = encode(SamplingFactor::R_4_2_2, 4, false);
        assert!(decode(&whole).is_some());
        // Cut anywhere inside the scan, or just before the end marker.
        let scan = File::parse(&whole).expect("parses").data;
        for cut in [scan + 10, (scan + whole.len()) / 2, whole.len() - 2] {
            assert!(
                decode(&whole[..cut]).is_none(),
                "cut at {cut} of {}",
                whole.len()
            );
        }
        // A restart marker out of sequence.
        let mut swapped = whole.clone();
        let rst = swapped
            .windows(2)
            .position(|w| w == [0xFF, 0xD1])
            .expect("a second restart marker");
        swapped[rst + 1] = 0xD5;
        assert!(decode(&swapped).is_none());
        // Something other than the end of the image after the scan.
        let mut second_scan = whole[..whole.len() - 2].to_vec();
        second_scan.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        assert!(decode(&second_scan).is_none());
        // Garbage in place of the entropy-coded data: bad codes or a short scan.
        let mut garbage = whole.clone();
        for (i, byte) in garbage[scan..whole.len() - 2].iter_mut().enumerate() {
            *byte = if i % 2 == 0 { 0xFE } else { 0x01 };
        }
        assert!(decode(&garbage).is_none());
    }

    /// The promise the fallback rests on: whatever this path accepts, the general decoder
    /// accepts too, with the same samples. Checked on damaged copies of a file (bytes
    /// changed, dropped or cut anywhere: headers, tables, entropy-coded data).
    #[test]
    fn what_it_accepts_the_general_decoder_decodes_the_same() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for (sampling, restart, grey) in [
            (SamplingFactor::R_4_2_2, 5, false),
            (SamplingFactor::R_4_4_4, 0, false),
            (SamplingFactor::R_4_4_4, 1, true),
        ] {
            let whole = encode(sampling, restart, grey);
            let (mut accepted, mut refused) = (0, 0);
            for round in 0..400 {
                let mut bytes = whole.clone();
                let mut log = Vec::new();
                for _ in 0..1 + round % 3 {
                    let at = next(bytes.len());
                    let kind = next(3);
                    log.push((kind, at));
                    match kind {
                        0 => bytes[at] = next(256) as u8,
                        1 => drop(bytes.remove(at)),
                        _ => bytes.truncate(at.max(2)),
                    }
                }
                let Some(fast) = decode(&bytes) else {
                    refused += 1;
                    continue;
                };
                accepted += 1;
                let slow = read_header(&bytes)
                    .and_then(|header| backend::decode(&bytes, &header, 8))
                    .unwrap_or_else(|e| panic!("{sampling:?}, changes {log:?}: {e}"));
                assert!(
                    fast.data == slow.data,
                    "{sampling:?}, changes {log:?}: samples differ"
                );
            }
            // Both sides were exercised.
            assert!(
                accepted > 20 && refused > 20,
                "{accepted} accepted, {refused} refused"
            );
        }
    }
}
