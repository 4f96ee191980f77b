//! The unit of work: anything that runs once on a worker thread and returns a value.

use std::cell::Cell;

/// A piece of CPU-bound work that a [`Pool`](crate::Pool) runs on one of its threads.
///
/// Closures `FnOnce() -> R + Send + 'static` are tasks already; implement the trait for a
/// named type when the work deserves a name of its own in metrics and traces, or will later
/// cross a process boundary (keep such a type's fields and output plain data).
///
/// # Examples
///
/// ```
/// use offload::Task;
///
/// struct Fib(u32);
///
/// impl Task for Fib {
///     type Output = u64;
///
///     fn run(self) -> u64 {
///         fn fib(n: u32) -> u64 {
///             if n < 2 { n as u64 } else { fib(n - 1) + fib(n - 2) }
///         }
///         fib(self.0)
///     }
///
///     fn name(&self) -> &'static str {
///         "fib"
///     }
/// }
///
/// assert_eq!(Fib(20).run(), 6765);
/// assert_eq!(Fib(1).name(), "fib");
/// ```
pub trait Task: Send + 'static {
    /// What the task produces. Fallible tasks return a `Result` here; the pool's own
    /// [`Error`](crate::Error) wraps it from the outside.
    type Output: Send + 'static;

    /// Does the work. Runs exactly once, on a pool thread (or on the caller's thread for
    /// [`Pool::inline`](crate::Pool::inline)).
    fn run(self) -> Self::Output;

    /// A stable, human-readable name for metrics, spans and logs.
    ///
    /// Defaults to the type's short name (`Thumbnail` for `my_app::tasks::Thumbnail`,
    /// `handler::{{closure}}` for a closure written in `handler`). Override it with a
    /// constant when the name must survive refactors, for example because dashboards or a
    /// remote worker fleet key on it.
    fn name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }

    /// What the task weighs against the queue's cost bound
    /// ([`Builder::queue_cost_limit`](crate::Builder::queue_cost_limit)): typically the
    /// bytes it holds, such as its input's length, so that a queue of large inputs is
    /// bounded in memory and not only in count.
    ///
    /// Called once, at submission. Default: 1.
    fn cost(&self) -> u64 {
        1
    }
}

impl<F, R> Task for F
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = R;

    fn run(self) -> R {
        self()
    }
}

/// Shortens `a::b::Type<c::D>` to `Type` and `a::f::{{closure}}` to `f::{{closure}}`.
///
/// This runs once per submitted task, mostly for the same type as the last time on the same
/// thread: that answer is kept per thread, and a new name is sliced out of the `'static`
/// input with a plain byte scan, so it never allocates.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    thread_local! {
        static LAST: Cell<(&'static str, &'static str)> = const { Cell::new(("", "")) };
    }
    LAST.try_with(|last| {
        let (last_full, last_short) = last.get();
        // Same address and length: the same string.
        if std::ptr::eq(last_full, full) {
            return last_short;
        }
        let short = shorten(full);
        last.set((full, short));
        short
    })
    .unwrap_or_else(|_| shorten(full))
}

fn shorten(full: &'static str) -> &'static str {
    let bytes = full.as_bytes();
    let end = bytes.iter().position(|&b| b == b'<').unwrap_or(bytes.len());
    let segment_start = |upto: usize| {
        bytes[..upto]
            .iter()
            .rposition(|&b| b == b':')
            .map_or(0, |i| i + 1)
    };
    let mut start = segment_start(end);
    if bytes[start..end].starts_with(b"{{") && start >= 2 {
        // A closure: keep the item it was written in.
        start = segment_start(start - 2);
    }
    &full[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("a::b::Thumbnail"), "Thumbnail");
        assert_eq!(
            short_type_name("a::b::Thumbnail"),
            "Thumbnail",
            "kept from last time"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
        assert_eq!(short_type_name("alloc::vec::Vec<u8>"), "Vec");
        assert_eq!(
            short_type_name("app::handler::{{closure}}"),
            "handler::{{closure}}"
        );
        assert_eq!(short_type_name("{{closure}}"), "{{closure}}");
    }

    #[test]
    fn closure_is_a_task() {
        let t = || 2 + 2;
        assert_eq!(t.name(), "closure_is_a_task::{{closure}}");
        assert_eq!(Task::run(t), 4);
    }
}
