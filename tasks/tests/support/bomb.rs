//! Small inputs that expand enormously: zlib streams of zeros, PNGs built around them.

use super::thumbnail::crc32;

/// Deflate writes bits from the least significant end of each byte.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    /// Writes the low `n` bits of `v`, least significant first (header fields, extra bits).
    fn put(&mut self, v: u64, n: u32) {
        self.acc |= v << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Writes a Huffman code of `n` bits, most significant bit first.
    fn code(&mut self, code: u64, n: u32) {
        for i in (0..n).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream that inflates to `n` zero bytes (`n >= 1`) at about 1000:1, the most
/// deflate allows: one dynamic-Huffman block whose codes give a 258-byte copy of the
/// previous byte two bits.
pub(crate) fn zlib_zeros(n: usize) -> Vec<u8> {
    assert!(n >= 1);
    let mut b = Bits::default();
    b.put(1, 1); // final block
    b.put(2, 2); // dynamic Huffman
    b.put(29, 5); // 286 literal/length codes
    b.put(0, 5); // 1 distance code
    b.put(14, 4); // 18 code-length codes
    // Code-length code lengths in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
    // symbol 18 (a run of zeros) gets 1 bit, lengths 1 and 2 get 2 bits.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        b.put(len, 3);
    }
    // Canonical codes of that alphabet: 18 -> 0, 1 -> 10, 2 -> 11.
    let zeros = |b: &mut Bits, run: u64| {
        b.code(0, 1);
        b.put(run - 11, 7);
    };
    // Literal/length lengths: 0 -> 2, 1..=255 -> 0, 256 -> 2, 257..=284 -> 0, 285 -> 1.
    b.code(0b11, 2);
    zeros(&mut b, 138);
    zeros(&mut b, 117);
    b.code(0b11, 2);
    zeros(&mut b, 28);
    b.code(0b10, 2);
    // Distance lengths: code 0 (distance 1) -> 1.
    b.code(0b10, 2);
    // Canonical codes: 285 -> 0, literal 0 -> 10, end of block -> 11; distance 0 -> 0.
    b.code(0b10, 2);
    let copies = (n - 1) / 258;
    for _ in 0..copies / 4 {
        // Four (length 258, distance 1) pairs are one zero byte.
        b.put(0, 8);
    }
    for _ in 0..copies % 4 {
        b.put(0, 2);
    }
    for _ in 0..(n - 1) % 258 {
        b.code(0b10, 2);
    }
    b.code(0b11, 2);
    let mut out = vec![0x78, 0x01];
    out.extend(b.finish());
    // Adler-32 of n zeros: a stays 1, b adds 1 per byte.
    let adler = ((n % 65521) as u32) << 16 | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// One PNG chunk: length, type, data, CRC.
pub(crate) fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A PNG of `w` x `h` all-zero pixels at `depth` bits and `color` type (IHDR codes), with
/// `extra` chunks (already framed by [`png_chunk`]) before the image data.
pub(crate) fn png_zeros(w: u32, h: u32, depth: u8, color: u8, extra: &[Vec<u8>]) -> Vec<u8> {
    let channels: usize = match color {
        0 => 1,
        2 => 3,
        4 => 2,
        _ => 4,
    };
    let row = 1 + (w as usize * channels * usize::from(depth)).div_ceil(8);
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    for chunk in extra {
        out.extend_from_slice(chunk);
    }
    out.extend(png_chunk(b"IDAT", &zlib_zeros(row * h as usize)));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A compressed metadata chunk whose text inflates to `n` zero bytes: `iCCP`, `zTXt` or
/// `iTXt` (compressed).
pub(crate) fn inflating_chunk(kind: &[u8; 4], n: usize) -> Vec<u8> {
    let mut data = b"bomb\0".to_vec();
    match kind {
        b"iTXt" => data.extend_from_slice(&[1, 0, 0, 0]), // compressed, deflate, no lang/key
        _ => data.push(0),                                // deflate
    }
    data.extend(zlib_zeros(n));
    png_chunk(kind, &data)
}
