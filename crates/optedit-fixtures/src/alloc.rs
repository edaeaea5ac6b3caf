//! A global allocator that counts live heap bytes, for tests that check a
//! loop does not keep memory. A test binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: optedit_fixtures::alloc::CountingAllocator =
//!     optedit_fixtures::alloc::CountingAllocator;
//! ```
//!
//! and reads [`live_bytes`] before and after. The count is process-wide, so
//! tests that compare it must not run at the same time ([`serial`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Mutex, MutexGuard};

static LIVE: AtomicIsize = AtomicIsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

/// The system allocator, counting the bytes it holds for the program.
pub struct CountingAllocator;

// SAFETY: every call is forwarded to the system allocator unchanged; only a
// counter is updated on the side.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Bytes allocated through [`CountingAllocator`] and not yet freed (0 when
/// it is not the global allocator).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A lock that tests measuring [`live_bytes`] hold, so that they run one at
/// a time (a test that panicked while holding it does not poison it).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Live bytes gained over `rounds` calls of `round`, after two warm-up calls
/// (lazily built caches and pools); a loop that keeps nothing gains about 0.
pub fn growth_over(rounds: usize, mut round: impl FnMut()) -> isize {
    round();
    round();
    let before = live_bytes();
    for _ in 0..rounds {
        round();
    }
    live_bytes() - before
}
