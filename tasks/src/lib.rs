//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.

pub mod pdf;
pub mod report;

pub use pdf::{PdfError, PdfReportTask, RenderedPdf};
pub use report::{Report, ReportError, ReportTask};
