//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.

pub mod thumbnail;
pub use thumbnail::{Thumbnail, ThumbnailError, ThumbnailOutput};
