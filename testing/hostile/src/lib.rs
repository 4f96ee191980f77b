//! Small hostile inputs, built in memory by the tests that send them: images whose headers
//! declare huge sizes, compressed chunks that inflate about 1000:1, and report bodies with no
//! usable line breaks. Nothing here decodes anything; the encoders are written out by hand,
//! so the inputs do not depend on what a codec crate is willing to produce.

/// The CRC-32 (ISO-HDLC, as PNG uses) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

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
            self.out.push(self.acc.to_le_bytes()[0]);
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
            self.out.push(self.acc.to_le_bytes()[0]);
        }
        self.out
    }
}

/// A zlib stream that inflates to `n` zero bytes at about 1000:1, the most deflate allows:
/// one dynamic-Huffman block whose codes make a 258-byte copy of the previous byte two bits.
///
/// # Panics
///
/// If `n` is 0.
pub fn zlib_zeros(n: usize) -> Vec<u8> {
    assert!(n >= 1, "a stream of at least one byte");
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
    let adler = u32::try_from(n % 65521).unwrap_or(0) << 16 | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// One PNG chunk: length, type, data, CRC.
///
/// # Panics
///
/// If `data` is 4 GiB or longer.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let len = u32::try_from(data.len()).expect("a PNG chunk is under 4 GiB");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A PNG of `w` x `h` all-zero pixels at `depth` bits and `color` type (IHDR codes: 0 grey,
/// 2 RGB, 4 grey + alpha, 6 RGBA), with `extra` chunks (framed by [`png_chunk`]) before the
/// image data, which is one [`zlib_zeros`] stream.
pub fn png_zeros(w: u32, h: u32, depth: u8, color: u8, extra: &[Vec<u8>]) -> Vec<u8> {
    let channels: usize = match color {
        0 => 1,
        2 => 3,
        4 => 2,
        _ => 4,
    };
    let width = usize::try_from(w).unwrap_or(usize::MAX);
    let height = usize::try_from(h).unwrap_or(usize::MAX);
    let row = 1 + (width * channels * usize::from(depth)).div_ceil(8);
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    for chunk in extra {
        out.extend_from_slice(chunk);
    }
    out.extend(png_chunk(b"IDAT", &zlib_zeros(row * height)));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A compressed PNG metadata chunk whose payload inflates to `n` zero bytes: `iCCP`, `zTXt`
/// or `iTXt` (compressed).
pub fn inflating_chunk(kind: &[u8; 4], n: usize) -> Vec<u8> {
    let mut data = b"bomb\0".to_vec();
    match kind {
        b"iTXt" => data.extend_from_slice(&[1, 0, 0, 0]), // compressed, deflate, no lang/key
        _ => data.push(0),                                // deflate
    }
    data.extend(zlib_zeros(n));
    png_chunk(kind, &data)
}

/// A 1x1 PNG (8-bit RGB) carrying an `iCCP` profile that inflates to `n` bytes.
pub fn png_with_profile_bomb(n: usize) -> Vec<u8> {
    png_zeros(1, 1, 8, 2, &[inflating_chunk(b"iCCP", n)])
}

/// A GIF of about 40 bytes whose screen and first frame declare `w` x `h`, with a few bytes
/// of LZW data.
pub fn gif_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C); // image descriptor
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]); // tiny LZW data
    out.push(0x3B);
    out
}

/// A CSV report body: a header line, then `len` bytes of one field with no line break.
pub fn csv_without_line_breaks(len: usize) -> Vec<u8> {
    let mut out = b"date,category,amount\n".to_vec();
    out.resize(out.len() + len, b'7');
    out
}

/// A CSV report body of `rows` valid rows whose lines end in a bare CR (no LF anywhere).
pub fn csv_cr_only(rows: usize) -> Vec<u8> {
    let mut out = b"date,category,amount\r".to_vec();
    for i in 0..rows {
        out.extend_from_slice(format!("2026-01-01,c{},1.00\r", i % 1000).as_bytes());
    }
    out
}

/// A JSON report body: one array of `n` zeros (`[0,0,...]`), each of them an invalid row.
pub fn json_zeros(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * n + 2);
    out.push(b'[');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'0');
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn bombs_are_small() {
        assert!(zlib_zeros(1 << 30).len() < 1_100_000);
        assert!(gif_bomb(10_000, 10_000).len() < 64);
        assert_eq!(json_zeros(3), b"[0,0,0]");
        assert!(!csv_cr_only(10).contains(&b'\n'));
        assert!(!csv_without_line_breaks(100)[21..].contains(&b'\n'));
    }
}
