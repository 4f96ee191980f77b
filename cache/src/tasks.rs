//! Keys for the built-in tasks of `offload-tasks` (feature `tasks`).
//!
//! Each key holds the input and every parameter. Structs with public fields are
//! destructured, so a field added later fails to compile here until it is in the key;
//! `ThumbnailOptions` (`#[non_exhaustive]`) goes in through its serde form, which holds every
//! field, present and future.

use offload_tasks::pdf::{PdfError, PdfReportTask};
use offload_tasks::report::{Input, ReportError, ReportTask};
use offload_tasks::thumbnail::{ErrorKind, Thumbnail, ThumbnailError, ThumbnailOutput};
use offload_tasks::{RenderedPdf, Report};

use crate::key::{Cacheable, Keep, KeyWriter};

/// Thumbnail: the input bytes and every option (box, fit, format, quality, background,
/// upscaling, limits). Errors caused by the input are [`Keep::Refusal`]s (a bomb, a bad
/// parameter, an unsupported or corrupt file); an encoder failure is not kept.
impl Cacheable for Thumbnail {
    fn write_key(&self, key: &mut KeyWriter) {
        key.bytes(self.bytes()).serde(self.options());
    }

    fn keep(output: &Result<ThumbnailOutput, ThumbnailError>) -> Keep {
        Keep::result(output, |e| e.kind() != ErrorKind::Internal)
    }
}

/// Report: the input (its format and bytes) and every option. Every report error follows
/// from the input and the options, so all are [`Keep::Refusal`]s.
impl Cacheable for ReportTask {
    fn write_key(&self, key: &mut KeyWriter) {
        let ReportTask {
            input,
            period,
            top,
            limits,
            on_bad_row,
        } = self;
        let (format, bytes) = match input {
            Input::Csv(b) => ("csv", b),
            Input::Json(b) => ("json", b),
        };
        key.str(format)
            .bytes(bytes)
            .serde(&(period, top, limits, on_bad_row));
    }

    fn keep(output: &Result<Report, ReportError>) -> Keep {
        Keep::result(output, |_| true)
    }
}

/// PDF: the report, the title, the extra tables and every rendering option, but not the
/// generation time. `PdfReportTask::new` stamps the clock's current second, so a key with it
/// would change every second and identical reports would never share a result. The time is
/// printed in the document ("Generated ..."): a cached PDF says when it was actually
/// generated, which stays true while it is served (at most the TTL). The price: two PDFs
/// with one key may differ in that line alone, when the first expired and the second was
/// rendered later; a client revalidating with the key as an `ETag` keeps its older copy.
/// A write failure is not kept; the other errors follow from the input.
impl Cacheable for PdfReportTask {
    fn write_key(&self, key: &mut KeyWriter) {
        let PdfReportTask {
            title,
            generated_at: _,
            report,
            tables,
            unencodable,
            compress,
            max_rows,
        } = self;
        key.str(title)
            .serde(report)
            .serde(&(tables, unencodable, compress, max_rows));
    }

    fn keep(output: &Result<RenderedPdf, PdfError>) -> Keep {
        Keep::result(output, |e| !matches!(e, PdfError::Write(_)))
    }
}
