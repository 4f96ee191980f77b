//! A counter that wakes its waiters when it reaches zero.
//!
//! Used twice: a batch counts its jobs down (one wake-up for the caller when the last is
//! done), and a pool counts its worker threads down as they exit (so `shutdown` can join).

use std::sync::atomic::{AtomicUsize, Ordering};

use event_listener::{Event, EventListener};

#[derive(Debug)]
pub(crate) struct Countdown {
    pending: AtomicUsize,
    zero: Event,
}

impl Countdown {
    pub(crate) fn new(pending: usize) -> Countdown {
        Countdown {
            pending: AtomicUsize::new(pending),
            zero: Event::new(),
        }
    }

    /// One more to wait for; call before the matching `tick` can possibly happen.
    pub(crate) fn add(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// One fewer to wait for; the last tick wakes every waiter.
    pub(crate) fn tick(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.zero.notify(usize::MAX);
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// A listener for the last tick. Register it, then check [`is_zero`](Self::is_zero)
    /// again before awaiting it, so a tick in between is not missed.
    pub(crate) fn listen(&self) -> EventListener {
        self.zero.listen()
    }

    /// Waits until the count is zero.
    pub(crate) async fn reached_zero(&self) {
        while !self.is_zero() {
            let listener = self.listen();
            if self.is_zero() {
                return;
            }
            listener.await;
        }
    }
}

/// Ticks its countdown when dropped, so a tick happens on every path, unwinding included.
#[derive(Debug)]
pub(crate) struct Tick(pub(crate) Option<std::sync::Arc<Countdown>>);

impl Drop for Tick {
    fn drop(&mut self) {
        if let Some(countdown) = &self.0 {
            countdown.tick();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn smoke() {
        let c = Countdown::new(1);
        c.add();
        c.tick();
        assert!(!c.is_zero());
        c.tick();
        assert!(c.is_zero());
    }

    #[test]
    fn the_last_tick_wakes_a_waiter_registered_before_it() {
        let c = Arc::new(Countdown::new(2));
        let waiter = std::thread::spawn({
            let c = Arc::clone(&c);
            move || futures::executor::block_on(c.reached_zero())
        });
        drop(Tick(Some(Arc::clone(&c))));
        drop(Tick(Some(Arc::clone(&c))));
        waiter
            .join()
            .expect("the waiter returns once the count is zero");
        assert!(c.is_zero());
    }
}
