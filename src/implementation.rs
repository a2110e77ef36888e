//! Design notes: how tracing-tally works inside. (Documentation only; nothing here is API.)
//!
//! # The hot path
//!
//! A metric event goes through four steps, none of which takes a lock or allocates once its
//! series has been seen by the thread:
//!
//! 1. **Filter.** The per-layer filter answers from the event's level, or from the callsite's
//!    cached plan. Callsites the layer does not want get `Interest::never()` from the filter,
//!    so when no other layer wants them either, tracing skips them entirely.
//! 2. **Plan.** Each callsite is classified once: which field is which metric, which fields are
//!    tags (with their keys' hashes precomputed), whether the callsite captures errors or
//!    breadcrumbs. Threads cache plans in a direct-mapped table keyed by callsite address.
//! 3. **Visit.** The visitor validates metric values and adds one hash per tag to a running sum.
//!    Tag values are hashed as the text they will be exported as (integers are formatted on
//!    the stack), and the sum is order-independent, so field order never makes a new series.
//! 4. **Cell.** The series hash finds this thread's cell in a thread-local set. The cell is
//!    written on a cache line only this thread writes: integer counters keep a running sum with
//!    a plain load and store (one writer), other values use uncontended atomic read-modify-write
//!    operations (`fetch_min`/`fetch_max` only when a value extends the extremes, a CAS loop for
//!    float sums).
//!
//! # Draining without locks
//!
//! The flusher takes values out of cells with atomic `swap`s. Every update lands either before
//! or after a swap, so each is counted in exactly one interval: totals are conserved exactly,
//! whatever the interleaving. Distribution sketches are arrays of atomic counters drained the
//! same way; sets are small atomic hash tables plus HyperLogLog registers (`fetch_max`).
//!
//! The thread that admits a series writes the *home cell* inside the series' registry entry; a
//! series is then one allocation of 152 bytes (its one or two tags, values up to 22 bytes
//! inline, included). Every other thread that writes the series gets a cell of its own, which
//! it announces to the flusher through a channel. At each interval the flusher copies the
//! registry's entries out (a pointer each, shard by shard), sorts them and its list of other
//! cells by series hash, and walks both, merging the cells of each series into one record.
//!
//! When a thread exits, or forgets a retired series, it drops its references; the flusher
//! notices that it holds the last one, drains the cell a final time (after an acquire fence
//! that pairs with the thread's release) and forgets it. An evicted series' home cell is kept
//! and drained the same way until no thread holds the series.
//!
//! # Cardinality and memory
//!
//! The first time a thread sees a series, it asks the shared registry (a sharded map), which
//! admits the series if its metric and the pipeline are under their limits, and otherwise
//! routes the value to the metric's overflow series. Series idle for a number of intervals are
//! evicted: marked retired (threads notice on their next update and drop their cell) and
//! removed, which frees their place under the limits. Threads sweep retired cells out of their
//! sets whenever the roll-up epoch changes.
//!
//! A thread remembers up to 1,024 rejected series (their overflow cell, by series hash) so that
//! their next values skip the registry; past that the table starts over, so however many
//! distinct values go over the limits, they cost each thread a bounded table. What the limits
//! bound is the number of series; the memory a series takes grows with the threads that write
//! it (each has a cell of its own) and, for distributions, with the range of the values (one
//! 520-byte page of counters per power of two seen, per cell). `benches/soak.rs` measures it:
//! with 8 threads writing every series, ~100 bytes per counter cell and ~4.5 KiB per
//! distribution cell over seven powers of two, so the default 50,000-series budget filled half
//! with such distributions tends to ~0.9 GiB (616 MiB after 45 s of load).
//!
//! # Time
//!
//! Spans read a TSC clock (`quanta`) when they open and close. Values carry no timestamp: the
//! flusher drains at each interval boundary, so an interval contains what was recorded between
//! two drains. A drain that runs late (the flusher thread was descheduled) attributes the
//! values recorded meanwhile to the interval that just ended.
//!
//! # Shutdown
//!
//! Dropping the guard sends the flusher a shutdown request with a deadline and waits for its
//! answer until the deadline, never longer. The flusher stops the writers (the epoch becomes
//! `CLOSED`), drains everything including the interval in progress, exports, and asks every
//! sink to shut down. A flush or shutdown completes when every sink has acknowledged it; a sink
//! that is stuck makes the flush report failure at the deadline, and its thread is left to
//! finish on its own instead of being joined.
//!
//! # Re-entrancy
//!
//! On application threads, the thread-local state is borrowed for the whole callback: an event
//! emitted from inside the layer (by a field's `Debug` implementation) finds it borrowed and is
//! counted (`reentrant`) and ignored instead of recursing.
//!
//! The flusher and sink threads mark themselves so that the layer ignores everything they emit
//! (an HTTP client's own logging, say); other layers still see those events. They do not install
//! a no-op scoped dispatcher for themselves: a scoped dispatcher that lives as long as a thread
//! makes tracing-core take its slower scoped path for every event of every thread.
