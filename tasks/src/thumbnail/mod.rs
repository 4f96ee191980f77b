//! Thumbnails of photos: sniff, decode with shrink-on-load, Lanczos3 resize, encode.
//!
//! [`Thumbnail`] is an [`offload::Task`]: build one with [`Thumbnail::fit`] (or
//! [`cover`](Thumbnail::cover), [`exact`](Thumbnail::exact)), chain options, and either run it
//! on a pool or call it inline.
//!
//! ```
//! use offload_tasks::thumbnail::{Format, Thumbnail};
//!
//! # let photo = offload_tasks::thumbnail::__doc_photo();
//! // `photo` is the encoded bytes of a 300x200 JPEG.
//! let thumb = Thumbnail::fit(photo, 64, 64).format(Format::Png).run()?;
//! assert_eq!((thumb.width, thumb.height), (64, 43));
//! assert_eq!(thumb.format, Format::Png);
//! assert!(thumb.bytes.starts_with(b"\x89PNG"));
//! # Ok::<(), offload_tasks::thumbnail::ThumbnailError>(())
//! ```
//!
//! On a pool, the task's output is a `Result`, so a handler writes
//! `pool.run(Thumbnail::fit(bytes, 256, 256)).await??`.
//!
//! # What it does
//!
//! - **Input** is encoded bytes; the format (JPEG, PNG, WebP, GIF first frame) is sniffed from
//!   the leading bytes and nothing else.
//! - **Size**: see [`Fit`] for the exact output size of each mode. Images are never enlarged
//!   unless [`allow_upscale`](Thumbnail::allow_upscale) is set.
//! - **Orientation**: the EXIF orientation is applied, so the output is upright; no metadata
//!   is copied to the output.
//! - **Transparency** is kept in PNG and WebP output and painted over
//!   [`background`](Thumbnail::background) (white by default) in JPEG output.
//! - **Limits**: [`Limits`] caps the input bytes and the declared pixel count; both are
//!   checked before any pixel memory is allocated.
//!
//! # Performance
//!
//! JPEG is decoded at 1/2, 1/4 or 1/8 scale inside the inverse DCT (shrink-on-load), keeping
//! at least 1.5 times the output size, and the rest is a Lanczos3 convolution with
//! AVX2/SSE4.1/NEON (`fast_image_resize`). A 6028x3391 photo decodes to 754x424 without ever
//! materialising the 20-megapixel image.
//!
//! The JPEG codec is chosen at build time, see [`JPEG_BACKEND`]. By default, libjpeg-turbo's
//! decoder as MozJPEG vendors it, compiled from C by `cc` without SIMD (so only Rust and a C
//! compiler are needed), with `jpeg-decoder` for lossless JPEG and `jpeg-encoder` for output.
//! With the `turbojpeg` feature, libjpeg-turbo 3 with SIMD for both: faster on photos of a
//! few megapixels, no faster on large ones, whose thumbnails decode at 1/8 scale where
//! Huffman decoding dominates (see the README's table); it needs cmake and nasm to build. Both give the same sizes,
//! orientation, limits and errors; pixels differ slightly, as two JPEG codecs do.

// Implementation: `sniff` picks the decoder; `jpeg` reads the header and EXIF, `geometry`
// plans the output in upright coordinates, the plan is mapped back to stored coordinates
// (swapping axes for quarter turns) so the resize runs on the stored image and only the
// small result is rotated by `raster::orient`.

mod codec;
mod error;
mod geometry;
mod jpeg;
mod raster;
mod resize;
mod sniff;

use serde::{Deserialize, Serialize};

pub use self::error::{ErrorKind, ThumbnailError};

/// The JPEG decoder this build uses: `"libjpeg-turbo"` (3, with SIMD) with the `turbojpeg`
/// feature, `"mozjpeg-nosimd"` (libjpeg-turbo 2 as MozJPEG vendors it, built without SIMD)
/// without it.
pub const JPEG_BACKEND: &str = if cfg!(feature = "turbojpeg") {
    "libjpeg-turbo"
} else {
    "mozjpeg-nosimd"
};
use self::geometry::Plan;
use self::raster::{Raster, transposes};

/// How the image is fitted into the `width` x `height` box.
///
/// Output sizes, for a `w` x `h` source and a `W` x `H` box, with upscaling allowed or the
/// source larger than the box:
///
/// | mode | output size | example: 6028x3391 in 256x256 |
/// |---|---|---|
/// | [`Inside`](Fit::Inside) | the largest size with the source's aspect ratio that fits the box; the limiting side is exactly `W` or `H`, the other is `round(h * W / w)` or `round(w * H / h)`, at least 1 | 256x144 |
/// | [`Cover`](Fit::Cover) | exactly `W` x `H`; the source is scaled to fill the box and the overflow is cut evenly from both sides (centre crop) | 256x256 |
/// | [`Exact`](Fit::Exact) | exactly `W` x `H`; each axis is scaled on its own, the aspect ratio is not kept | 256x256 |
///
/// Without [`allow_upscale`](Thumbnail::allow_upscale), nothing is enlarged: `Inside` returns
/// the source size when the source already fits; `Cover` keeps scale 1 and returns
/// `min(W, w)` x `min(H, h)` cut from the centre; `Exact` returns `min(W, w)` x `min(H, h)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Fit {
    /// Fit inside the box keeping the aspect ratio (the default).
    #[default]
    Inside,
    /// Fill the box keeping the aspect ratio, cutting the overflow from the centre.
    Cover,
    /// Stretch to the box, ignoring the aspect ratio.
    Exact,
}

/// The encoding of the thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Format {
    /// Baseline JPEG, 4:2:0 chroma, at [`quality`](Thumbnail::quality) (the default).
    #[default]
    Jpeg,
    /// PNG, RGB or RGBA; lossless, `quality` is ignored.
    Png,
    /// Lossy WebP at [`quality`](Thumbnail::quality), RGB or RGBA (libwebp).
    WebP,
}

impl Format {
    /// The media type, e.g. `"image/jpeg"`, for a `Content-Type` header.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
        })
    }
}

/// A decodable input format, as sniffed from the leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceFormat {
    /// JPEG (baseline, progressive, arithmetic or lossless; RGB, grey or CMYK).
    Jpeg,
    /// PNG, any bit depth; the first frame of an APNG.
    Png,
    /// WebP, lossy or lossless; the first frame of an animation.
    WebP,
    /// GIF, first frame.
    Gif,
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
            Self::Gif => "gif",
        })
    }
}

/// Resource limits checked before decoding.
///
/// # Memory budget
///
/// Every size below is read from the headers and checked before pixel memory is allocated,
/// so a hostile file fails in microseconds with a typed error
/// ([`TooManyPixels`](ThumbnailError::TooManyPixels) for a size over the limit,
/// [`Undecodable`](ThumbnailError::Undecodable) for a header that its data cannot back).
///
/// - The decoded image is kept as one 8-bit RGB or RGBA buffer, at most 4 bytes x
///   `max_pixels` (400 MB at the default).
/// - **PNG** decodes straight into that buffer: 16-bit samples are cut to 8 bits row by
///   row, grey is widened in place, and `iCCP`, `tEXt`, `zTXt` and `iTXt` chunks are
///   skipped without inflating them (the thumbnail carries no metadata). Other ancillary
///   data the decoder keeps is capped at 16 MiB. Peak: the RGB(A) buffer plus a few rows.
/// - **GIF**: the logical screen and the first frame must each fit `max_pixels`, and the
///   first frame must carry enough LZW data to fill the pixels it declares (LZW expands
///   a byte to at most a few thousand pixels), so a 40-byte file declaring 10000x10000
///   is refused as truncated. Peak: the screen's RGBA canvas, plus the frame when it is
///   smaller than the screen.
/// - **WebP**: a still extended (VP8X) image must have the canvas size of its bitstream;
///   an animation's canvas must fit `max_pixels / 2`, because the decoder holds its own
///   canvas and the first frame besides the output.
/// - **JPEG** is decoded at the shrink-on-load scale, so its output is small; a multi-scan
///   file (progressive, or components in separate scans) also makes the decoder hold a
///   whole-image coefficient buffer at full size, sized from the header. It must fit 8
///   bytes x `max_pixels` (at least 64 MiB), and a Huffman-coded file must carry at least
///   a bit for each block of its first scan, so a 2 KB progressive file declaring
///   10000x10000 is refused before libjpeg-turbo allocates 600 MB. (Arithmetic-coded files
///   can spend less than a bit a block and get the budget only.) At 1/8 scale a
///   single-scan baseline file is first read from its DC coefficients alone, which holds a
///   byte per block and a copy of the entropy-coded data (at most the input) besides the
///   output.
/// - The `image` decoders (GIF, WebP) run with an allocation cap of 8 bytes x
///   `max_pixels` (at least 64 MiB).
///
/// So the peak of a PNG, GIF or WebP thumbnail is at most about 8 bytes x `max_pixels`
/// plus the input, and 4 bytes x `max_pixels` plus the input for PNG (the resize
/// premultiplies alpha in place rather than in a copy).
///
/// Measured (debug build, `cargo test -p offload-tasks --test hostile_thumbnail`): a 1 MB
/// PNG whose `iCCP` inflates to 1 GiB makes its thumbnail in 40 ms with under 0.1 MB of
/// heap (before: 48 s, 1.1 GB); a 40-byte GIF declaring 10000x10000 fails in 0.3 ms
/// without allocating (before: 2.7 s, 500 MB); a 3000x3000 16-bit RGBA PNG peaks at
/// 40 MB, its 36 MB RGBA raster plus buffers (before: 108 MB).
///
/// ```
/// use offload_tasks::thumbnail::Limits;
///
/// let strict = Limits { max_pixels: 24_000_000, ..Limits::default() };
/// assert_eq!(strict.max_input_bytes, 50 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Longest accepted input, in bytes. Default: 50 MiB (52 428 800).
    pub max_input_bytes: u64,
    /// Most pixels (width x height) the input may declare, and the output may have.
    /// Default: 100 000 000.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_pixels: 100_000_000,
        }
    }
}

impl Limits {
    /// The allocation cap given to the `image` decoders; see the type's docs.
    fn decode_budget(&self) -> u64 {
        const FLOOR: u64 = 64 * 1024 * 1024;
        self.max_pixels.saturating_mul(8).max(FLOOR)
    }

    fn check_pixels(&self, width: u32, height: u32) -> Result<(), ThumbnailError> {
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(ThumbnailError::TooManyPixels {
                width: width.into(),
                height: height.into(),
                max: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// The options of a thumbnail, apart from the input bytes.
///
/// Build it through [`Thumbnail`]'s methods, or with [`ThumbnailOptions::new`] and the same
/// setters for the [`thumbnail`] function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThumbnailOptions {
    /// Box width in pixels, `1..=65535`.
    pub width: u32,
    /// Box height in pixels, `1..=65535`.
    pub height: u32,
    /// How the image fits the box. Default: [`Fit::Inside`].
    pub fit: Fit,
    /// Output encoding. Default: [`Format::Jpeg`].
    pub format: Format,
    /// JPEG and WebP quality, `1..=100`. Default: 80.
    pub quality: u8,
    /// RGB colour under transparent pixels in JPEG output. Default: white.
    pub background: [u8; 3],
    /// Whether an image smaller than the box may be enlarged. Default: `false`.
    pub allow_upscale: bool,
    /// Input limits. Default: [`Limits::default()`].
    pub limits: Limits,
}

impl ThumbnailOptions {
    /// Options fitting into a `width` x `height` box, everything else at its default.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            fit: Fit::Inside,
            format: Format::Jpeg,
            quality: 80,
            background: [255, 255, 255],
            allow_upscale: false,
            limits: Limits::default(),
        }
    }

    fn validate(&self) -> Result<(), ThumbnailError> {
        const MAX_SIDE: u32 = 65_535;
        if self.width == 0 || self.height == 0 {
            return Err(ThumbnailError::invalid(format!(
                "box {}x{} has a zero side",
                self.width, self.height
            )));
        }
        if self.width > MAX_SIDE || self.height > MAX_SIDE {
            return Err(ThumbnailError::invalid(format!(
                "box {}x{} has a side over {MAX_SIDE}",
                self.width, self.height
            )));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(ThumbnailError::invalid(format!(
                "quality {} is outside 1..=100",
                self.quality
            )));
        }
        Ok(())
    }
}

/// The encoded thumbnail.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailOutput {
    /// The encoded image, without metadata.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// Width in pixels, upright.
    pub width: u32,
    /// Height in pixels, upright.
    pub height: u32,
    /// The encoding of `bytes`.
    pub format: Format,
}

impl std::fmt::Debug for ThumbnailOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThumbnailOutput")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .finish()
    }
}

/// The thumbnail task: encoded image bytes in, a smaller encoded image out.
///
/// Run it on a pool (`pool.run(task).await??`) or inline with [`run`](Thumbnail::run).
/// Its [`name`](offload::Task::name) is `"thumbnail"`.
///
/// ```
/// use offload_tasks::thumbnail::{Format, Thumbnail};
///
/// # let photo = offload_tasks::thumbnail::__doc_photo();
/// let square = Thumbnail::fit(photo, 100, 100)
///     .cover()
///     .format(Format::WebP)
///     .run()?;
/// assert_eq!((square.width, square.height), (100, 100));
/// # Ok::<(), offload_tasks::thumbnail::ThumbnailError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    options: ThumbnailOptions,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("options", &self.options)
            .finish()
    }
}

impl Thumbnail {
    /// A thumbnail of `bytes` fitting inside `width` x `height`, keeping the aspect ratio.
    ///
    /// Parameters are validated when the task runs, so building never fails.
    pub fn fit(bytes: impl Into<Vec<u8>>, width: u32, height: u32) -> Self {
        Self {
            bytes: bytes.into(),
            options: ThumbnailOptions::new(width, height),
        }
    }

    /// A thumbnail with the given options.
    pub fn with_options(bytes: impl Into<Vec<u8>>, options: ThumbnailOptions) -> Self {
        Self {
            bytes: bytes.into(),
            options,
        }
    }

    /// Fills the box exactly, cutting the overflow from the centre ([`Fit::Cover`]).
    pub fn cover(self) -> Self {
        self.fit_mode(Fit::Cover)
    }

    /// Stretches to the box exactly, ignoring the aspect ratio ([`Fit::Exact`]).
    pub fn exact(self) -> Self {
        self.fit_mode(Fit::Exact)
    }

    /// Sets the fit mode. Default: [`Fit::Inside`].
    pub fn fit_mode(mut self, fit: Fit) -> Self {
        self.options.fit = fit;
        self
    }

    /// Sets the output encoding. Default: [`Format::Jpeg`].
    pub fn format(mut self, format: Format) -> Self {
        self.options.format = format;
        self
    }

    /// Sets the JPEG and WebP quality, `1..=100` (checked when run). Default: 80.
    pub fn quality(mut self, quality: u8) -> Self {
        self.options.quality = quality;
        self
    }

    /// Sets the RGB colour painted under transparency in JPEG output. Default: white.
    pub fn background(mut self, rgb: [u8; 3]) -> Self {
        self.options.background = rgb;
        self
    }

    /// Allows enlarging an image smaller than the box. Default: `false`.
    pub fn allow_upscale(mut self, allow: bool) -> Self {
        self.options.allow_upscale = allow;
        self
    }

    /// Sets the input limits. Default: [`Limits::default()`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.options.limits = limits;
        self
    }

    /// The options this task will run with.
    pub fn options(&self) -> &ThumbnailOptions {
        &self.options
    }

    /// The input bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Makes the thumbnail on the calling thread.
    ///
    /// # Errors
    ///
    /// See [`thumbnail`].
    pub fn run(self) -> Result<ThumbnailOutput, ThumbnailError> {
        thumbnail(&self.bytes, &self.options)
    }
}

impl offload::Task for Thumbnail {
    type Output = Result<ThumbnailOutput, ThumbnailError>;

    fn run(self) -> Self::Output {
        Thumbnail::run(self)
    }

    fn name(&self) -> &'static str {
        "thumbnail"
    }

    /// The input's length in bytes, for a pool's
    /// [`queue_cost_limit`](offload::Builder::queue_cost_limit).
    fn cost(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Makes a thumbnail of the encoded image `bytes` on the calling thread.
///
/// ```
/// use offload_tasks::thumbnail::{ThumbnailOptions, thumbnail};
///
/// # let photo = offload_tasks::thumbnail::__doc_photo();
/// let mut options = ThumbnailOptions::new(150, 150);
/// options.quality = 90;
/// let thumb = thumbnail(&photo, &options)?;
/// assert_eq!((thumb.width, thumb.height), (150, 100));
/// # Ok::<(), offload_tasks::thumbnail::ThumbnailError>(())
/// ```
///
/// # Errors
///
/// - [`InvalidParameter`](ThumbnailError::InvalidParameter): a zero or over-65535 box side,
///   a quality outside `1..=100`, an output over [`Limits::max_pixels`], or a WebP output
///   side over 16383.
/// - [`InputTooLarge`](ThumbnailError::InputTooLarge) /
///   [`TooManyPixels`](ThumbnailError::TooManyPixels): over [`Limits`], found before decoding.
/// - [`UnsupportedFormat`](ThumbnailError::UnsupportedFormat): not JPEG, PNG, WebP or GIF.
/// - [`Undecodable`](ThumbnailError::Undecodable): corrupt or truncated data. JPEG decoding
///   is strict: data libjpeg-turbo only warns about (a truncated file, garbage between
///   segments) is an error rather than a grey-filled image.
pub fn thumbnail(
    bytes: &[u8],
    options: &ThumbnailOptions,
) -> Result<ThumbnailOutput, ThumbnailError> {
    options.validate()?;
    let limits = &options.limits;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limits.max_input_bytes {
        return Err(ThumbnailError::InputTooLarge {
            size,
            max: limits.max_input_bytes,
        });
    }
    let format = sniff::sniff(bytes)?;

    // Decode; for JPEG the plan is known before decoding and picks the shrink-on-load scale.
    let (raster, plan, orientation) = if format == SourceFormat::Jpeg {
        let header = jpeg::read_header(bytes)?;
        limits.check_pixels(header.width, header.height)?;
        let plan = stored_plan(header.width, header.height, header.orientation, options)?;
        let (raster, scale) = jpeg::decode_scaled(
            bytes,
            &header,
            (plan.crop.width, plan.crop.height),
            (plan.out_w, plan.out_h),
            limits,
        )?;
        // The shrunk decode covers the same area, so the crop scales with it.
        let plan = plan.scaled(scale, scale);
        (raster, plan, header.orientation)
    } else {
        let (raster, orientation) = codec::decode(bytes, format, limits)?;
        let plan = stored_plan(raster.width, raster.height, orientation, options)?;
        (raster, plan, orientation)
    };

    let resized = resize::resize(raster, plan.crop, plan.out_w, plan.out_h, options.format)?;
    let upright = resized.orient(orientation);
    let (bytes, upright) = match options.format {
        Format::Jpeg => {
            let flat = upright.flatten(options.background);
            (jpeg::encode(&flat, options.quality)?, flat)
        }
        Format::Png => (codec::encode_png(&upright)?, upright),
        Format::WebP => (codec::encode_webp(&upright, options.quality)?, upright),
    };
    Ok(ThumbnailOutput {
        bytes,
        width: upright.width,
        height: upright.height,
        format: options.format,
    })
}

/// Plans in upright coordinates (what the user sees), then maps to stored coordinates.
fn stored_plan(
    stored_w: u32,
    stored_h: u32,
    orientation: image::metadata::Orientation,
    options: &ThumbnailOptions,
) -> Result<Plan, ThumbnailError> {
    let turned = transposes(orientation);
    let (w, h) = if turned {
        (stored_h, stored_w)
    } else {
        (stored_w, stored_h)
    };
    let plan = geometry::plan(
        w,
        h,
        options.width,
        options.height,
        options.fit,
        options.allow_upscale,
    );
    if u64::from(plan.out_w) * u64::from(plan.out_h) > options.limits.max_pixels {
        return Err(ThumbnailError::invalid(format!(
            "output {}x{} is over the limit of {} pixels",
            plan.out_w, plan.out_h, options.limits.max_pixels
        )));
    }
    if options.format == Format::WebP && plan.out_w.max(plan.out_h) > 16_383 {
        return Err(ThumbnailError::invalid(format!(
            "output {}x{} is over webp's maximum side of 16383",
            plan.out_w, plan.out_h
        )));
    }
    // Centred crops stay centred under flips, so a quarter turn only swaps the axes.
    Ok(if turned { plan.transposed() } else { plan })
}

#[doc(hidden)]
/// A 300x200 JPEG for the documentation examples.
pub fn __doc_photo() -> Vec<u8> {
    let mut rgb = Vec::with_capacity(300 * 200 * 3);
    for y in 0..200u32 {
        for x in 0..300u32 {
            rgb.extend_from_slice(&[(x * 255 / 299) as u8, (y * 255 / 199) as u8, 128]);
        }
    }
    let raster = Raster {
        width: 300,
        height: 200,
        channels: 3,
        data: rgb,
    };
    jpeg::encode(&raster, 90).unwrap_or_default()
}
