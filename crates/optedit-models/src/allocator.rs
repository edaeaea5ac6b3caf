//! Allocator settings for CPU inference and training.
//!
//! burn's CPU backend allocates a fresh buffer for almost every operation's
//! output. glibc's malloc serves buffers above its (dynamic, at first
//! 128 KiB) mmap threshold with fresh `mmap`s and returns them on `free`, so
//! every large activation costs the kernel a round of page faults and page
//! zeroing: 17% of the SD 1.5 UNet forward in a `perf` profile
//! (`docs/benchmarks.md`). [`tune_allocator`] fixes the threshold at 32 MiB
//! (the ceiling of glibc's own dynamic threshold), stops heap trimming, and
//! turns `mmap` off for the buffers above the threshold too (the feed-forward
//! layers' 40-80 MB activations, the VAE's 134 MB ones), so that freed
//! activations are reused from the heap instead. Measured on a whole
//! default SD 1.5 edit: 6.2 million page faults without the last setting,
//! 1.5 million with it (`docs/benchmarks.md`, 2026-12-08).

/// The mmap threshold set by [`tune_allocator`]: the ceiling of glibc's
/// dynamic threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Tunes glibc's malloc for tensor workloads (see the module docs); returns
/// whether the settings were applied (`false` on other C libraries, where it
/// does nothing). Process-wide: call it once at the start of `main`, before
/// the heavy allocations. Measured on the SD 1.5 UNet forward (batch 2,
/// 32x32 latent, 2 cores): 14% faster, same peak memory. Freed memory stays
/// with the process until it exits, large buffers included (glibc serves
/// every allocation from its heaps, none by its own `mmap`).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tunables; the values are
        // within glibc's documented ranges, and it is thread-safe.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_settings() {
        assert_eq!(
            super::tune_allocator(),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
    }

    /// After tuning, a buffer above the threshold comes from a heap: glibc's
    /// count of bytes in its own `mmap`s does not grow. (A test runs on a
    /// thread of its own, whose arena's heaps hold at most 64 MiB; glibc
    /// maps a larger buffer there anyway. The models run on the main
    /// thread, whose heap has no such bound.)
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_large_buffer_is_not_mapped_on_its_own() {
        assert!(super::tune_allocator());
        // SAFETY: mallinfo2 only reads malloc's statistics.
        let mapped = || unsafe { libc::mallinfo2() }.hblkhd;
        let before = mapped();
        let buffer = std::hint::black_box(vec![1u8; super::MMAP_THRESHOLD + (8 << 20)]);
        assert!(
            mapped() <= before,
            "{} bytes mapped, {before} before",
            mapped()
        );
        assert_eq!(buffer[buffer.len() - 1], 1);
    }
}
