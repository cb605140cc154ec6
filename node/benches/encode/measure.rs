//! Measuring child processes: wall time from spawn to exit, and CPU time and peak RSS from
//! `wait4`, with the machine's busy time meanwhile (`/proc/stat`) to tell the background load.

use std::{
    fs,
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::rows::Contender;

/// Resources one child process used, as the parent saw them.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// From spawn to exit.
    pub wall_secs: f64,
    /// User plus system time.
    pub cpu_secs: f64,
    /// `ru_maxrss`.
    pub peak_rss_mb: f64,
    /// CPU time the rest of the machine used meanwhile.
    pub background_cpu_secs: f64,
}

/// Runs `command` to its end and returns what it used and its stdout, or `None` (with a printed
/// FAILED line) when it fails. Its stderr goes to ours.
pub fn measure(contender: Contender, program: &str, mut command: Command) -> Option<(Usage, String)> {
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let busy_before = machine_busy_secs();
    let start = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            println!("{}: FAILED to start {program} ({error})", contender.name());
            return None;
        }
    };
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout).expect("read the child's stdout");
    }
    // `wait4` reaps the child here; `child` is then only dropped, which neither waits nor kills.
    let (status, rusage) = wait4(child.id());
    let wall_secs = start.elapsed().as_secs_f64();
    let busy_secs = machine_busy_secs() - busy_before;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        println!("{}: FAILED (wait status {status:#x})", contender.name());
        return None;
    }
    let cpu_secs = timeval_secs(rusage.ru_utime) + timeval_secs(rusage.ru_stime);
    // Linux reports ru_maxrss in KiB.
    let peak_rss_mb = rusage.ru_maxrss as f64 / 1024.0;
    let background_cpu_secs = (busy_secs - cpu_secs).max(0.0);
    Some((Usage { wall_secs, cpu_secs, peak_rss_mb, background_cpu_secs }, stdout))
}

/// Waits for our child `pid` to exit: its wait status and resource usage.
pub fn wait4(pid: u32) -> (libc::c_int, libc::rusage) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types; `pid` is our own child,
        // which nothing else waits for.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if waited == pid {
            return (status, rusage);
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4 failed: {error}");
    }
}

/// Like [`wait4`], but gives up at `deadline` (then the child is still running and unreaped).
pub fn wait4_until(pid: u32, deadline: Instant) -> Option<(libc::c_int, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: as in `wait4`; WNOHANG returns 0 while the child runs.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        if waited == pid {
            return Some((status, rusage));
        }
        if waited < 0 {
            let error = std::io::Error::last_os_error();
            assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4 failed: {error}");
        } else if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// CPU seconds all cores have spent busy since boot (the `cpu` line of `/proc/stat`), or 0 where
/// that file is missing.
pub fn machine_busy_secs() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| rest.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| ticks.get(i)).sum();
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy / ticks_per_sec
}

/// Seconds of a `timeval`.
pub fn timeval_secs(time: libc::timeval) -> f64 {
    time.tv_sec as f64 + time.tv_usec as f64 / 1e6
}

/// This process's own peak RSS (VmHWM) in MB.
pub fn own_peak_rss_mb() -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
