//! How the process allocates: large buffers go straight back to the operating system.
//!
//! glibc's `malloc` serves a request of at least its mmap threshold (128 KiB) with its own
//! mapping, unmapped again on `free`; but the first such `free` raises the threshold up to 32 MiB,
//! and from then on multi-megabyte buffers (x264's frame planes, 3-12 MB each at 1080p) come from
//! the heaps of the threads that allocate them, where fragmentation keeps freed memory resident.
//! Measured with `scripts/soak.sh` (1080p30 through `dora run`, one minute): 405 MB RSS with the
//! default, 233 MB with the threshold fixed at 1 MiB. Fixing it turns the adjustment off; the few
//! buffers this large are allocated once per encoder, so the extra `mmap` calls cost nothing.

/// Requests of at least this many bytes get their own mapping, returned to the system on free.
pub const LARGE_ALLOCATION_BYTES: usize = 1024 * 1024;

/// Makes allocations of [`LARGE_ALLOCATION_BYTES`] and more their own mappings (glibc only;
/// elsewhere the allocator's defaults stay). Call once, before the threads that encode start.
pub fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(LARGE_ALLOCATION_BYTES).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; it is valid to call at any time.
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if accepted == 0 {
            tracing::debug!("malloc kept its own mmap threshold");
        }
    }
}
