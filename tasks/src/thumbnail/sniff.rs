//! Recognises the image format from its leading bytes; names and headers are never trusted.

use super::{SourceFormat, ThumbnailError};

/// The supported format these bytes start with, or the error naming what they look like.
pub(crate) fn sniff(bytes: &[u8]) -> Result<SourceFormat, ThumbnailError> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(SourceFormat::Gif);
    }
    if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Ok(SourceFormat::WebP);
    }
    let detected = if starts(b"BM") {
        "bmp"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "tiff"
    } else if bytes.get(4..8) == Some(b"ftyp") {
        match bytes.get(8..12) {
            Some(b"avif") | Some(b"avis") => "avif",
            Some(b"heic") | Some(b"heix") | Some(b"mif1") | Some(b"msf1") => "heif",
            _ => "iso media",
        }
    } else if starts(b"\0\0\x01\0") {
        "ico"
    } else if starts(b"\xFF\x0A") || starts(b"\0\0\0\x0CJXL ") {
        "jpeg xl"
    } else if starts(b"%PDF") {
        "pdf"
    } else if starts(b"<svg") || starts(b"<?xml") {
        "svg"
    } else {
        "unknown"
    };
    Err(ThumbnailError::UnsupportedFormat {
        detected: detected.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_supported_magic() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0rest").ok(),
            Some(SourceFormat::Jpeg)
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n").ok(), Some(SourceFormat::Png));
        assert_eq!(sniff(b"GIF89a...").ok(), Some(SourceFormat::Gif));
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 ").ok(),
            Some(SourceFormat::WebP)
        );
    }

    #[test]
    fn names_unsupported() {
        let name = |b: &[u8]| match sniff(b) {
            Err(ThumbnailError::UnsupportedFormat { detected }) => detected,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(name(b"BM\0\0"), "bmp");
        assert_eq!(name(b"II*\0"), "tiff");
        assert_eq!(name(b"\0\0\0\x1cftypavif"), "avif");
        assert_eq!(name(b""), "unknown");
        assert_eq!(name(b"RIFF\0\0\0\0WAVE"), "unknown");
    }
}
