//! A decoded 8-bit RGB or RGBA pixel buffer, and the EXIF orientation transform on it.

use image::metadata::Orientation;

/// Packed 8-bit pixels, 3 (RGB) or 4 (RGBA, straight alpha) bytes each, rows without padding.
#[derive(Debug, Clone)]
pub(crate) struct Raster {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) channels: usize,
    pub(crate) data: Vec<u8>,
}

/// `true` when the orientation swaps width and height.
pub(crate) fn transposes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

impl Raster {
    /// Turns the stored image upright as the EXIF orientation asks.
    pub(crate) fn orient(self, o: Orientation) -> Raster {
        if o == Orientation::NoTransforms {
            return self;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let (ow, oh) = if transposes(o) { (h, w) } else { (w, h) };
        let c = self.channels;
        let mut out = vec![0u8; self.data.len()];
        // For each output pixel (x, y), the stored pixel it comes from.
        let source = |x: usize, y: usize| -> (usize, usize) {
            match o {
                Orientation::NoTransforms => (x, y),
                Orientation::FlipHorizontal => (w - 1 - x, y),
                Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
                Orientation::FlipVertical => (x, h - 1 - y),
                Orientation::Rotate90 => (y, h - 1 - x),
                Orientation::Rotate270 => (w - 1 - y, x),
                Orientation::Rotate90FlipH => (y, x),
                Orientation::Rotate270FlipH => (w - 1 - y, h - 1 - x),
            }
        };
        for (y, row) in out.chunks_exact_mut(ow * c).enumerate().take(oh) {
            for (x, px) in row.chunks_exact_mut(c).enumerate() {
                let (sx, sy) = source(x, y);
                let at = (sy * w + sx) * c;
                if let Some(src) = self.data.get(at..at + c) {
                    px.copy_from_slice(src);
                }
            }
        }
        Raster {
            width: ow as u32,
            height: oh as u32,
            channels: c,
            data: out,
        }
    }

    /// Paints straight-alpha RGBA over an opaque background, giving RGB.
    pub(crate) fn flatten(self, background: [u8; 3]) -> Raster {
        if self.channels != 4 {
            return self;
        }
        let mut out = Vec::with_capacity(self.data.len() / 4 * 3);
        for px in self.data.chunks_exact(4) {
            let a = u32::from(px[3]);
            for (&c, &bg) in px[..3].iter().zip(&background) {
                let v = (u32::from(c) * a + u32::from(bg) * (255 - a) + 127) / 255;
                out.push(v as u8);
            }
        }
        Raster {
            width: self.width,
            height: self.height,
            channels: 3,
            data: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 grey image whose pixel values are their stored index.
    fn numbered() -> Raster {
        Raster {
            width: 3,
            height: 2,
            channels: 1,
            data: vec![0, 1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn all_orientations() {
        // Stored:   0 1 2
        //           3 4 5
        let cases = [
            (Orientation::FlipHorizontal, 3, vec![2, 1, 0, 5, 4, 3]),
            (Orientation::Rotate180, 3, vec![5, 4, 3, 2, 1, 0]),
            (Orientation::FlipVertical, 3, vec![3, 4, 5, 0, 1, 2]),
            // Clockwise: the left column, read bottom-up, becomes the top row.
            (Orientation::Rotate90, 2, vec![3, 0, 4, 1, 5, 2]),
            (Orientation::Rotate270, 2, vec![2, 5, 1, 4, 0, 3]),
            (Orientation::Rotate90FlipH, 2, vec![0, 3, 1, 4, 2, 5]),
            (Orientation::Rotate270FlipH, 2, vec![5, 2, 4, 1, 3, 0]),
        ];
        for (o, width, want) in cases {
            let r = numbered().orient(o);
            assert_eq!((r.width, r.data), (width, want), "{o:?}");
        }
    }

    #[test]
    fn flatten_blends_on_background() {
        let r = Raster {
            width: 3,
            height: 1,
            channels: 4,
            data: vec![0, 0, 0, 0, 10, 20, 30, 255, 0, 0, 0, 128],
        }
        .flatten([255, 255, 255]);
        assert_eq!(r.data, vec![255, 255, 255, 10, 20, 30, 127, 127, 127]);
    }
}
