//! A short scheduler slice for the syncer. Every answer waits on its fsync, and once the disk is done the syncer
//! must run at once to answer; on two cores shared with the HTTP workers, the writer and the clients, it would often
//! wait its turn behind a thread in the middle of its slice, and every change in flight with it. Linux (6.12 on,
//! EEVDF) lets any thread ask for a shorter slice — no privilege needed, unlike a higher priority: it gets no more of
//! the CPU, but its deadline comes sooner, so it preempts the running thread when it wakes. Older kernels take the
//! request and ignore it.

/// Why the calling thread keeps its slice.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum SliceError {
    #[error("sched_getattr: {0}")]
    GetAttr(std::io::Error),
    #[error("sched_setattr: {0}")]
    SetAttr(std::io::Error),
    #[error("the thread runs under scheduling policy {0}, which has no slice to shorten")]
    Policy(u32),
}

#[cfg(target_os = "linux")]
pub(crate) use linux::shorten_for_this_thread;

/// Elsewhere there is no such request to make.
#[cfg(not(target_os = "linux"))]
pub(crate) fn shorten_for_this_thread() -> Result<(), SliceError> {
    Ok(())
}

#[cfg(target_os = "linux")]
mod linux {
    use super::SliceError;

    /// The shortest slice Linux grants a thread.
    pub(super) const SHORT_SLICE_NS: u64 = 100_000;

    /// The calling thread's scheduling attributes.
    pub(super) fn attributes_of_this_thread() -> Result<libc::sched_attr, SliceError> {
        // SAFETY: sched_attr is plain integers, for which all zeroes is a valid value.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        // SAFETY: `attr` is writable and `size` bytes long; pid 0 is the calling thread.
        let done = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut libc::sched_attr, size, 0) };
        if done == 0 { Ok(attr) } else { Err(SliceError::GetAttr(std::io::Error::last_os_error())) }
    }

    /// Asks the scheduler to give the calling thread slices of [`SHORT_SLICE_NS`], keeping its policy and nice
    /// value; a thread under a policy without slices (real-time, deadline, idle) is left as it is.
    pub(crate) fn shorten_for_this_thread() -> Result<(), SliceError> {
        let mut attr = attributes_of_this_thread()?;
        let policy = attr.sched_policy as libc::c_int;
        if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
            return Err(SliceError::Policy(attr.sched_policy));
        }
        attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
        attr.sched_flags = 0;
        attr.sched_runtime = SHORT_SLICE_NS;
        // SAFETY: `attr` is a valid sched_attr whose size field is its own size; pid 0 is the calling thread.
        let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0) };
        if done == 0 { Ok(()) } else { Err(SliceError::SetAttr(std::io::Error::last_os_error())) }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::{SHORT_SLICE_NS, attributes_of_this_thread};
    use super::{SliceError, shorten_for_this_thread};

    /// Whether the running kernel grants custom slices (Linux 6.12 on).
    fn kernel_grants_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u32>().ok());
        (numbers.next().unwrap(), numbers.next().unwrap()) >= (6, 12)
    }

    #[test]
    fn a_thread_gets_the_short_slice_and_keeps_its_policy_and_nice_value() {
        std::thread::spawn(|| {
            // A policy and a nice value of its own, each of which any thread may take.
            let mut attr = attributes_of_this_thread().unwrap();
            let nice = (attr.sched_nice + 1).min(19);
            attr.sched_policy = libc::SCHED_BATCH as u32;
            attr.sched_nice = nice;
            // SAFETY: `attr` is a valid sched_attr as the kernel gave it; pid 0 is the calling thread.
            let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0) };
            assert_eq!(done, 0, "sched_setattr: {}", std::io::Error::last_os_error());

            shorten_for_this_thread().unwrap();
            let after = attributes_of_this_thread().unwrap();
            assert_eq!(after.sched_policy, libc::SCHED_BATCH as u32, "the policy is kept");
            assert_eq!(after.sched_nice, nice, "the nice value is kept");
            if kernel_grants_slices() {
                assert_eq!(after.sched_runtime, SHORT_SLICE_NS);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_under_a_policy_without_slices_is_left_as_it_is() {
        std::thread::spawn(|| {
            let mut attr = attributes_of_this_thread().unwrap();
            attr.sched_policy = libc::SCHED_IDLE as u32;
            // SAFETY: `attr` is a valid sched_attr as the kernel gave it; pid 0 is the calling thread.
            let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0) };
            assert_eq!(done, 0, "sched_setattr: {}", std::io::Error::last_os_error());

            assert!(matches!(shorten_for_this_thread(), Err(SliceError::Policy(policy)) if policy == libc::SCHED_IDLE as u32));
            assert_eq!(attributes_of_this_thread().unwrap().sched_policy, libc::SCHED_IDLE as u32);
        })
        .join()
        .unwrap();
    }
}
