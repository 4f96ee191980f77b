//! Output sizes and crop rectangles for the three fit modes, in whole-pixel arithmetic.

use super::Fit;

/// What to cut from the source and how large to make it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    /// Output width.
    pub(crate) out_w: u32,
    /// Output height.
    pub(crate) out_h: u32,
    /// Source region (left, top, width, height), in source pixels; always centred.
    pub(crate) crop: Crop,
}

/// A centred source region in (possibly fractional) source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Crop {
    pub(crate) left: f64,
    pub(crate) top: f64,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

impl Crop {
    fn centred(src_w: u32, src_h: u32, width: f64, height: f64) -> Self {
        Self {
            left: (f64::from(src_w) - width) / 2.0,
            top: (f64::from(src_h) - height) / 2.0,
            width,
            height,
        }
    }

    fn full(src_w: u32, src_h: u32) -> Self {
        Self::centred(src_w, src_h, f64::from(src_w), f64::from(src_h))
    }

    pub(crate) fn is_full(&self, src_w: u32, src_h: u32) -> bool {
        self.left == 0.0
            && self.top == 0.0
            && self.width == f64::from(src_w)
            && self.height == f64::from(src_h)
    }
}

impl Plan {
    /// The same plan for the source resampled by `sx` x `sy` (a shrunk decode).
    pub(crate) fn scaled(self, sx: f64, sy: f64) -> Self {
        Self {
            crop: Crop {
                left: self.crop.left * sx,
                top: self.crop.top * sy,
                width: self.crop.width * sx,
                height: self.crop.height * sy,
            },
            ..self
        }
    }

    /// The same plan for the image turned a quarter (width and height swapped).
    pub(crate) fn transposed(self) -> Self {
        Self {
            out_w: self.out_h,
            out_h: self.out_w,
            crop: Crop {
                left: self.crop.top,
                top: self.crop.left,
                width: self.crop.height,
                height: self.crop.width,
            },
        }
    }
}

/// `round(a * b / c)` without floating point; `c > 0`, result at least 1.
fn mul_div_round(a: u32, b: u32, c: u32) -> u32 {
    let (a, b, c) = (u64::from(a), u64::from(b), u64::from(c));
    let q = (2 * a * b + c) / (2 * c);
    u32::try_from(q.max(1)).unwrap_or(u32::MAX)
}

/// Computes the output size and source crop.
///
/// All dimensions must be non-zero (checked by the caller).
pub(crate) fn plan(
    src_w: u32,
    src_h: u32,
    box_w: u32,
    box_h: u32,
    fit: Fit,
    upscale: bool,
) -> Plan {
    // The box is relatively wider than the source when box_w / box_h >= src_w / src_h.
    let box_wider = u64::from(box_w) * u64::from(src_h) >= u64::from(box_h) * u64::from(src_w);
    match fit {
        Fit::Inside => {
            let (w, h) = if box_wider {
                (mul_div_round(src_w, box_h, src_h).min(box_w), box_h)
            } else {
                (box_w, mul_div_round(src_h, box_w, src_w).min(box_h))
            };
            let (out_w, out_h) = if !upscale && (w > src_w || h > src_h) {
                (src_w, src_h)
            } else {
                (w, h)
            };
            Plan {
                out_w,
                out_h,
                crop: Crop::full(src_w, src_h),
            }
        }
        Fit::Cover => {
            if !upscale && (box_w > src_w || box_h > src_h) {
                // Filling the box would enlarge: keep the scale at 1 and cut what overflows.
                let (w, h) = (box_w.min(src_w), box_h.min(src_h));
                return Plan {
                    out_w: w,
                    out_h: h,
                    crop: Crop::centred(src_w, src_h, f64::from(w), f64::from(h)),
                };
            }
            let (crop_w, crop_h) = if box_wider {
                // Width fills the box; cut top and bottom.
                let h = f64::from(box_h) * f64::from(src_w) / f64::from(box_w);
                (f64::from(src_w), h.min(f64::from(src_h)))
            } else {
                let w = f64::from(box_w) * f64::from(src_h) / f64::from(box_h);
                (w.min(f64::from(src_w)), f64::from(src_h))
            };
            Plan {
                out_w: box_w,
                out_h: box_h,
                crop: Crop::centred(src_w, src_h, crop_w, crop_h),
            }
        }
        Fit::Exact => {
            let (out_w, out_h) = if upscale {
                (box_w, box_h)
            } else {
                (box_w.min(src_w), box_h.min(src_h))
            };
            Plan {
                out_w,
                out_h,
                crop: Crop::full(src_w, src_h),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_landscape_photo() {
        let p = plan(6028, 3391, 256, 256, Fit::Inside, false);
        assert_eq!((p.out_w, p.out_h), (256, 144));
        assert!(p.crop.is_full(6028, 3391));
    }

    #[test]
    fn inside_portrait_and_rounding() {
        // 3391 * 256 / 6028 = 144.01 -> 144; 2 * 256 / 3 = 170.67 -> 171.
        assert_eq!(plan(3391, 6028, 256, 256, Fit::Inside, false).out_w, 144);
        let p = plan(300, 200, 256, 256, Fit::Inside, false);
        assert_eq!((p.out_w, p.out_h), (256, 171));
        // A very thin image still gets one pixel.
        let p = plan(10000, 1, 100, 100, Fit::Inside, false);
        assert_eq!((p.out_w, p.out_h), (100, 1));
    }

    #[test]
    fn inside_no_upscale_unless_asked() {
        let p = plan(100, 50, 256, 256, Fit::Inside, false);
        assert_eq!((p.out_w, p.out_h), (100, 50));
        let p = plan(100, 50, 256, 256, Fit::Inside, true);
        assert_eq!((p.out_w, p.out_h), (256, 128));
    }

    #[test]
    fn cover_crops_centre() {
        let p = plan(400, 200, 100, 100, Fit::Cover, false);
        assert_eq!((p.out_w, p.out_h), (100, 100));
        assert_eq!(
            p.crop,
            Crop {
                left: 100.0,
                top: 0.0,
                width: 200.0,
                height: 200.0
            }
        );
        let p = plan(200, 400, 100, 50, Fit::Cover, false);
        assert_eq!(
            p.crop,
            Crop {
                left: 0.0,
                top: 150.0,
                width: 200.0,
                height: 100.0
            }
        );
    }

    #[test]
    fn cover_without_upscale_cuts_at_scale_one() {
        let p = plan(100, 80, 200, 50, Fit::Cover, false);
        assert_eq!((p.out_w, p.out_h), (100, 50));
        assert_eq!(
            p.crop,
            Crop {
                left: 0.0,
                top: 15.0,
                width: 100.0,
                height: 50.0
            }
        );
    }

    #[test]
    fn exact_stretches() {
        let p = plan(400, 200, 100, 100, Fit::Exact, false);
        assert_eq!((p.out_w, p.out_h), (100, 100));
        let p = plan(40, 20, 100, 100, Fit::Exact, false);
        assert_eq!((p.out_w, p.out_h), (40, 20));
        let p = plan(40, 20, 100, 100, Fit::Exact, true);
        assert_eq!((p.out_w, p.out_h), (100, 100));
    }
}
