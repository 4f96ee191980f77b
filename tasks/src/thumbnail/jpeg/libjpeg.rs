//! The default build's decoder: libjpeg-turbo as MozJPEG 4 vendors it, through `mozjpeg`.
//!
//! libjpeg reports a fatal error through a callback that must not return, and a warning
//! (truncated data, garbage between segments, a corrupt Huffman code) through another after
//! which it carries on with grey blocks. Both callbacks here unwind with a [`Refusal`]
//! (`mozjpeg-sys` compiles the C code with unwinding tables for that), and [`guarded`] turns
//! the unwind into a typed error at the boundary: a warning is as fatal as an error, as in
//! the `turbojpeg` build.

use std::io;
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use super::super::ThumbnailError;
use super::super::raster::Raster;
use super::{Header, cmyk_to_rgb, corrupt, pure};

pub(crate) use pure::encode;

/// Why libjpeg stopped, carried by the unwind from its callbacks to [`guarded`].
#[derive(Debug)]
enum Refusal {
    Error { in_header: bool },
    Warning,
}

/// libjpeg's `global_state` once the header is read (`DSTATE_READY`); below it the decoder is
/// still in the headers.
const STATE_READY: c_int = 202;

extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    let in_header = cinfo.global_state < STATE_READY;
    panic::resume_unwind(Box::new(Refusal::Error { in_header }));
}

extern "C-unwind" fn emit_message(_: &mut jpeg_common_struct, level: c_int) {
    // Negative levels are warnings; the others are trace messages.
    if level < 0 {
        panic::resume_unwind(Box::new(Refusal::Warning));
    }
}

extern "C-unwind" fn ignore(_: &mut jpeg_common_struct) {}

/// An error manager whose every callback is ours: libjpeg's message table is not needed, as
/// no message is formatted.
fn error_manager() -> jpeg_error_mgr {
    jpeg_error_mgr {
        error_exit: Some(error_exit),
        emit_message: Some(emit_message),
        output_message: Some(ignore),
        format_message: None,
        reset_error_mgr: Some(ignore),
        msg_code: 0,
        msg_parm: Default::default(),
        trace_level: 0,
        num_warnings: 0,
        jpeg_message_table: ptr::null(),
        last_jpeg_message: 0,
        addon_message_table: ptr::null(),
        first_addon_message: 0,
        last_addon_message: 0,
    }
}

/// Runs libjpeg so that its errors and warnings, and any panic in the wrapper, come back as
/// the typed error every other bad file gets.
fn guarded<T>(decode: impl FnOnce() -> io::Result<T>) -> Result<T, ThumbnailError> {
    match panic::catch_unwind(AssertUnwindSafe(decode)) {
        Ok(result) => result.map_err(corrupt),
        Err(payload) => Err(corrupt(match payload.downcast_ref::<Refusal>() {
            Some(Refusal::Error { in_header: true }) => "libjpeg-turbo rejected the headers",
            Some(Refusal::Error { in_header: false }) => "libjpeg-turbo rejected the image data",
            Some(Refusal::Warning) => "corrupt or truncated image data",
            None => "the decoder failed on malformed data",
        })),
    }
}

/// Reads the headers up to the first scan.
fn open(bytes: &[u8]) -> io::Result<Decompress<&[u8]>> {
    Decompress::builder()
        .with_err(error_manager())
        .from_mem(bytes)
}

pub(super) fn read_header(bytes: &[u8], lossless: bool) -> Result<Header, ThumbnailError> {
    if lossless {
        return pure::read_header(bytes);
    }
    let (width, height) = guarded(|| open(bytes).map(|d| d.size()))?;
    Header::new(bytes, width, height, false)
}

/// Decodes to RGB at 1/`denom` scale (1, 2, 4 or 8), sides rounded up.
pub(super) fn decode(bytes: &[u8], header: &Header, denom: u32) -> Result<Raster, ThumbnailError> {
    if header.lossless {
        return pure::decode(bytes, header, denom);
    }
    let eighths = u8::try_from(8 / denom.clamp(1, 8)).map_err(corrupt)?;
    let (width, height, pixels, cmyk) = guarded(|| {
        let mut d = open(bytes)?;
        d.scale(eighths);
        // libjpeg-turbo 2 has no CMYK to RGB conversion: take CMYK and convert here.
        let cmyk = matches!(d.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
        let mut started = if cmyk {
            d.to_colorspace(ColorSpace::JCS_CMYK)?
        } else {
            d.rgb()?
        };
        let (width, height) = (started.width(), started.height());
        let pixels = started.read_scanlines::<u8>()?;
        // Reads up to the end marker, so a file cut after the last row is refused too.
        started.finish()?;
        Ok((width, height, pixels, cmyk))
    })?;
    let rgb = if cmyk {
        cmyk_to_rgb(&pixels, true)
    } else {
        pixels
    };
    if rgb.len() != width * height * 3 {
        return Err(corrupt("decoded size does not match the header"));
    }
    Ok(Raster {
        width: u32::try_from(width).map_err(corrupt)?,
        height: u32::try_from(height).map_err(corrupt)?,
        channels: 3,
        data: rgb,
    })
}
