//! Real file systems for the disk's edges, mounted by the test with util-linux's `mount` and `losetup` and
//! e2fsprogs — as root, or through `sudo -n` (a CI runner's passwordless sudo) — and owned by the test's user: a
//! small tmpfs that fills up, and an ext4 file system on a loop device that turns read-only the way the kernel turns
//! one after an I/O error. A test that cannot mount fails, saying why: it never passes without the file system it
//! is about.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file system mounted for one test, unmounted (and its loop device freed) when dropped.
pub struct Mount {
    point: PathBuf,
    /// The ext4 file system's image and the loop device it is attached to.
    ext4: Option<(PathBuf, String)>,
}

/// Runs `program` with `args` as root (through `sudo -n` when the test is not), panicking with its output unless it
/// succeeds; returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    try_run(program, args).unwrap_or_else(|failure| panic!("{failure}"))
}

/// `program`, to be run as root: through `sudo -n` when the test is not.
fn as_root(program: &str) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Command::new(program);
    }
    let mut sudo = Command::new("sudo");
    sudo.arg("-n").arg(program);
    sudo
}

/// Runs `program` with `args` as root; its stdout, or what went wrong.
fn try_run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = as_root(program).args(args).output().map_err(|error| {
        format!("cannot run {program} (the disk tests need root or sudo, util-linux and e2fsprogs): {error}")
    })?;
    if !output.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

impl Mount {
    /// Mounts a tmpfs of `bytes` at `point` (created).
    pub fn tmpfs(point: &Path, bytes: u64) -> Mount {
        std::fs::create_dir_all(point).expect("the mount point");
        let options = format!("size={bytes},mode=0755,uid={},gid={}", user().0, user().1);
        run("mount", &["-t", "tmpfs", "-o", &options, "tmpfs", text(point)]);
        Mount { point: point.to_owned(), ext4: None }
    }

    /// Makes an ext4 file system of `bytes` in the file `image`, attaches it to a loop device and mounts it at
    /// `point` (created) with `errors=remount-ro`: an error found on it turns it read-only, as on a server's disk.
    pub fn ext4(point: &Path, image: &Path, bytes: u64) -> Mount {
        std::fs::File::create(image).and_then(|file| file.set_len(bytes)).expect("the file system's image");
        run("mkfs.ext4", &["-q", "-F", text(image)]);
        let device = run("losetup", &["--find", "--show", text(image)]);
        std::fs::create_dir_all(point).expect("the mount point");
        let mount = Mount { point: point.to_owned(), ext4: Some((image.to_owned(), device)) };
        mount.mount_ext4();
        mount
    }

    fn mount_ext4(&self) {
        let (_, device) = self.ext4.as_ref().expect("an ext4 mount");
        run("mount", &["-t", "ext4", "-o", "errors=remount-ro", device, text(&self.point)]);
        run("chown", &[&format!("{}:{}", user().0, user().1), text(&self.point)]);
    }

    /// Where the file system is mounted.
    pub fn point(&self) -> &Path {
        &self.point
    }

    /// Reports an error on the ext4 file system, through the kernel's own error path (`trigger_fs_error`): it
    /// aborts its journal and turns read-only, and every write to it — to files already open, too — fails with
    /// `EROFS`. The kernel gives write access back only to a new mount, after a repair ([`Mount::repair`]).
    pub fn fail_read_only(&self) {
        let (_, device) = self.ext4.as_ref().expect("an ext4 mount");
        let name = Path::new(device).file_name().expect("a device name").to_string_lossy().into_owned();
        let trigger = format!("echo 'the disk tests: an I/O error' > /sys/fs/ext4/{name}/trigger_fs_error");
        run("sh", &["-c", &trigger]);
        let probe = self.point.join("written-after-the-error");
        let written = std::fs::write(&probe, b"x");
        assert_eq!(
            written.as_ref().map_err(std::io::Error::raw_os_error),
            Err(Some(libc::EROFS)),
            "the file system is read-only after its error"
        );
    }

    /// Unmounts the ext4 file system (whose files must be closed), repairs it with `e2fsck`, and mounts it again,
    /// writable.
    pub fn repair(&self) {
        let (image, _) = self.ext4.as_ref().expect("an ext4 mount");
        run("umount", &[text(&self.point)]);
        // 0: nothing to mend; 1: errors mended. Anything else fails the test.
        let repaired = as_root("e2fsck").args(["-f", "-y", text(image)]).output().expect("e2fsck runs");
        assert!(matches!(repaired.status.code(), Some(0 | 1)), "e2fsck: {repaired:?}");
        self.mount_ext4();
    }
}

/// The test's user and group ids: they own what is mounted.
fn user() -> (u32, u32) {
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // A process of the test may still hold a file: a lazy unmount lets go once it is closed.
        let point = text(&self.point);
        if let Err(failure) = try_run("umount", &[point]).or_else(|_| try_run("umount", &["-l", point])) {
            eprintln!("{failure}");
        }
        if let Some((_, device)) = &self.ext4
            && let Err(failure) = try_run("losetup", &["-d", device])
        {
            eprintln!("{failure}");
        }
    }
}
