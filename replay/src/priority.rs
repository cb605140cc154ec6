//! Thread priorities: the thread that sends runs before ordinary work when it wakes up, the
//! camera threads that decode ahead do not. On a busy machine a sleeping thread can otherwise
//! wait several milliseconds for a core, and a message would leave that late.

/// Nice value asked for the sending thread (ordinary threads have 0; lower runs first).
const SENDER_NICE: libc::c_int = -10;

/// Raises the calling thread's priority; without the permission (`CAP_SYS_NICE`) it stays as is.
pub fn raise_this_thread() {
    if let Err(error) = set_this_thread(SENDER_NICE) {
        tracing::debug!("the sending thread keeps its priority: {error}");
    }
}

/// Gives the calling thread the ordinary priority (threads inherit their creator's).
pub fn ordinary_for_this_thread() {
    if let Err(error) = set_this_thread(0) {
        tracing::debug!("a camera thread keeps its priority: {error}");
    }
}

fn set_this_thread(nice: libc::c_int) -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions; setpriority only changes this thread's nice value.
    let result = unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, nice)
    };
    if result == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
