//! The inline backend: each task runs on the calling thread, inside the first poll of its
//! handle. The baseline that offloading is measured against, with the same API, metrics,
//! spans and panic handling as the threaded backend.

use std::sync::Arc;

use event_listener::Event;

use crate::error::Error;
use crate::job::{self, JobMeta};
use crate::metrics::Recorder;
use crate::scheduler::{Load, State};
use crate::task::Task;

#[derive(Debug)]
pub(crate) struct Inline {
    /// Counts the inline tasks running on callers' threads, so shutdown can wait for them.
    state: State,
    /// Notified when the last running task of a closed pool ends.
    idle: Event,
    recorder: Arc<Recorder>,
}

impl Inline {
    pub(crate) fn new(recorder: Arc<Recorder>) -> Inline {
        Inline {
            state: State::default(),
            idle: Event::new(),
            recorder,
        }
    }

    /// The work a handle does at its first poll: run `task` right there, unless the pool has
    /// closed or the deadline has passed since submission.
    pub(crate) fn prepare<T: Task>(
        self: &Arc<Self>,
        task: T,
        meta: JobMeta,
    ) -> impl FnOnce() -> Result<T::Output, Error> + Send + 'static {
        let this = Arc::clone(self);
        move || {
            if this.state.begin_unqueued().is_err() {
                return Err(Error::Closed);
            }
            let result = job::run_here(task, &meta, &this.recorder);
            if this.state.end_unqueued() {
                this.idle.notify(usize::MAX);
            }
            result
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    pub(crate) fn close(&self) {
        self.state.close();
    }

    pub(crate) fn load(&self) -> Load {
        self.state.load()
    }

    /// Closes, and waits for the tasks running on callers' threads.
    pub(crate) async fn shutdown(&self) {
        self.close();
        self.state.until_idle(&self.idle).await;
    }
}
