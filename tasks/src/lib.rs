//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.

pub mod report;

pub use report::{Report, ReportError, ReportTask};
