//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.

// Crate-private: the date arithmetic `report` and `pdf` share.
mod calendar;
pub mod pdf;
pub mod report;
pub mod thumbnail;

pub use pdf::{PdfError, PdfReportTask, RenderedPdf};
pub use report::{Report, ReportError, ReportTask};
pub use thumbnail::{Thumbnail, ThumbnailError, ThumbnailOutput};
