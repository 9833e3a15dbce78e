//! A short scheduler slice for the syncer. Every answer waits on its fsync, and once the disk is done the syncer
//! must run at once to answer; on two cores shared with the HTTP workers, the writer and the clients, it would often
//! wait its turn behind a thread in the middle of its slice, and every change in flight with it. Linux (6.12 on,
//! EEVDF) lets any thread ask for a shorter slice — no privilege needed, unlike a higher priority: it gets no more of
//! the CPU, but its deadline comes sooner, so it preempts the running thread when it wakes. Older kernels take the
//! request and ignore it.

/// The shortest slice Linux grants a thread.
pub(crate) const SHORT_SLICE_NS: u64 = 100_000;

/// Why the calling thread keeps its slice.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum SliceError {
    #[error("sched_setattr: {0}")]
    SetAttr(std::io::Error),
}

/// Asks the scheduler to give the calling thread slices of [`SHORT_SLICE_NS`], keeping its policy (normal) and
/// nice value.
#[cfg(target_os = "linux")]
pub(crate) fn shorten_for_this_thread() -> Result<(), SliceError> {
    // SAFETY: getpriority reads the calling thread's nice value (a thread is a process to it on Linux); errno is
    // cleared first because -1 is a valid value.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    let error = std::io::Error::last_os_error();
    if nice == -1 && error.raw_os_error() != Some(0) {
        return Err(SliceError::SetAttr(error));
    }
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: SHORT_SLICE_NS,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: `attr` is a valid sched_attr whose size field is its own size; pid 0 is the calling thread.
    let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0) };
    if done == 0 { Ok(()) } else { Err(SliceError::SetAttr(std::io::Error::last_os_error())) }
}

/// Elsewhere there is no such request to make.
#[cfg(not(target_os = "linux"))]
pub(crate) fn shorten_for_this_thread() -> Result<(), SliceError> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{SHORT_SLICE_NS, shorten_for_this_thread};

    /// The slice the scheduler reports for the calling thread (`sched_getattr`).
    fn slice_of_this_thread() -> u64 {
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        // SAFETY: `attr` is writable and `size` bytes long; pid 0 is the calling thread.
        let done = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut libc::sched_attr, size, 0) };
        assert_eq!(done, 0, "sched_getattr: {}", std::io::Error::last_os_error());
        attr.sched_runtime
    }

    /// Whether the running kernel grants custom slices (Linux 6.12 on).
    fn kernel_grants_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u32>().ok());
        (numbers.next().unwrap(), numbers.next().unwrap()) >= (6, 12)
    }

    #[test]
    fn a_thread_gets_the_short_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: raises the calling thread's own nice value, which needs no privilege.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 3) }, 0);
            shorten_for_this_thread().unwrap();
            if kernel_grants_slices() {
                assert_eq!(slice_of_this_thread(), SHORT_SLICE_NS);
            }
            // SAFETY: reads the calling thread's nice value.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 3, "the nice value is kept");
        })
        .join()
        .unwrap();
    }
}
