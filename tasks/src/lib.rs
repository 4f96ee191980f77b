//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.

pub mod report;
pub mod thumbnail;

pub use report::{Report, ReportError, ReportTask};
pub use thumbnail::{Thumbnail, ThumbnailError, ThumbnailOutput};
