//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.

pub mod pdf;
pub mod report;
pub mod thumbnail;

pub use pdf::{PdfError, PdfReportTask, RenderedPdf};
pub use report::{Report, ReportError, ReportTask};
pub use thumbnail::{Thumbnail, ThumbnailError, ThumbnailOutput};
