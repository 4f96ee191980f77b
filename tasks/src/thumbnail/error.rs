//! The error a thumbnail can fail with, and the coarse kind an HTTP service maps to a status.

use serde::{Deserialize, Serialize};

use super::{Format, SourceFormat};

/// Why a thumbnail could not be made.
///
/// Every failure is one of these variants; no input makes the task panic. Use
/// [`kind()`](ThumbnailError::kind) (or the `is_*` helpers) to map an error to a response:
///
/// | [`ErrorKind`] | variants | HTTP status |
/// |---|---|---|
/// | [`InvalidParameter`](ErrorKind::InvalidParameter) | [`InvalidParameter`](ThumbnailError::InvalidParameter) | 400 Bad Request |
/// | [`TooLarge`](ErrorKind::TooLarge) | [`InputTooLarge`](ThumbnailError::InputTooLarge), [`TooManyPixels`](ThumbnailError::TooManyPixels) | 413 Content Too Large |
/// | [`UnsupportedFormat`](ErrorKind::UnsupportedFormat) | [`UnsupportedFormat`](ThumbnailError::UnsupportedFormat) | 415 Unsupported Media Type |
/// | [`Undecodable`](ErrorKind::Undecodable) | [`Undecodable`](ThumbnailError::Undecodable) | 422 Unprocessable Content |
/// | [`Internal`](ErrorKind::Internal) | [`Encode`](ThumbnailError::Encode) | 500 Internal Server Error |
///
/// The error is plain serde data, so it can travel back from a worker process.
///
/// # Examples
///
/// ```
/// use offload_tasks::thumbnail::{ErrorKind, Thumbnail};
///
/// let err = Thumbnail::fit(b"not an image".to_vec(), 256, 256).run().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::UnsupportedFormat);
/// assert!(err.is_unsupported_format());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ThumbnailError {
    /// A parameter is out of range: a zero or too large box, a quality outside `1..=100`, or an
    /// output that would exceed the pixel limit or the output format's maximum size.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// The encoded input is longer than [`Limits::max_input_bytes`](super::Limits::max_input_bytes).
    #[error("input is {size} bytes, more than the limit of {max} bytes")]
    InputTooLarge {
        /// Length of the input in bytes.
        size: u64,
        /// The limit in force.
        max: u64,
    },

    /// The image header declares more pixels than [`Limits::max_pixels`](super::Limits::max_pixels).
    ///
    /// Detected from the header alone, before any pixel memory is allocated, so a
    /// decompression bomb fails in microseconds.
    #[error("image is {width}x{height} pixels, more than the limit of {max} pixels")]
    TooManyPixels {
        /// Width declared in the header.
        width: u64,
        /// Height declared in the header.
        height: u64,
        /// The limit in force.
        max: u64,
    },

    /// The bytes are not an image in a supported format (JPEG, PNG, WebP or GIF).
    ///
    /// `detected` names what was recognised (`"bmp"`, `"tiff"`, ...) or is `"unknown"`.
    #[error("unsupported image format: {detected}")]
    UnsupportedFormat {
        /// The format the leading bytes look like, or `"unknown"`.
        detected: String,
    },

    /// The bytes look like a supported format but are corrupt or truncated.
    #[error("cannot decode {format} image: {reason}")]
    Undecodable {
        /// The format sniffed from the leading bytes.
        format: SourceFormat,
        /// The decoder's description of the problem.
        reason: String,
    },

    /// Encoding the thumbnail failed; this points at a bug rather than at the input.
    #[error("cannot encode {format} thumbnail: {reason}")]
    Encode {
        /// The requested output format.
        format: Format,
        /// The encoder's description of the problem.
        reason: String,
    },
}

/// The coarse class of a [`ThumbnailError`], one per HTTP status a service would answer with.
///
/// See the table on [`ThumbnailError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's parameters are wrong (400).
    InvalidParameter,
    /// The input is too many bytes or too many pixels (413).
    TooLarge,
    /// The input is not a supported image format (415).
    UnsupportedFormat,
    /// The input is a supported format but corrupt or truncated (422).
    Undecodable,
    /// A failure that is not the input's fault (500).
    Internal,
}

impl ThumbnailError {
    /// The class of this error; see the table on [`ThumbnailError`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidParameter(_) => ErrorKind::InvalidParameter,
            Self::InputTooLarge { .. } | Self::TooManyPixels { .. } => ErrorKind::TooLarge,
            Self::UnsupportedFormat { .. } => ErrorKind::UnsupportedFormat,
            Self::Undecodable { .. } => ErrorKind::Undecodable,
            Self::Encode { .. } => ErrorKind::Internal,
        }
    }

    /// `true` for a bad parameter (400).
    pub fn is_invalid_parameter(&self) -> bool {
        self.kind() == ErrorKind::InvalidParameter
    }

    /// `true` when the input has too many bytes or pixels (413).
    pub fn is_too_large(&self) -> bool {
        self.kind() == ErrorKind::TooLarge
    }

    /// `true` when the input is not a supported format (415).
    pub fn is_unsupported_format(&self) -> bool {
        self.kind() == ErrorKind::UnsupportedFormat
    }

    /// `true` when the input is corrupt or truncated (422).
    pub fn is_undecodable(&self) -> bool {
        self.kind() == ErrorKind::Undecodable
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidParameter(reason.into())
    }

    pub(crate) fn undecodable(format: SourceFormat, reason: impl ToString) -> Self {
        Self::Undecodable {
            format,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn encode(format: Format, reason: impl ToString) -> Self {
        Self::Encode {
            format,
            reason: reason.to_string(),
        }
    }
}
