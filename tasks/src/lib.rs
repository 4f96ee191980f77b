//! CPU-heavy tasks for [`offload`]: image thumbnails, report aggregation and PDF reports.
