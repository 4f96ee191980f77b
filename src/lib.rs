//! offload: run CPU-heavy work off the async reactor. (The runtime lands in the next commits.)
mod task;
pub use task::Task;
