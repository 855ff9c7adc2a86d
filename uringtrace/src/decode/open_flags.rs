//! open(2) flags (`O_*`, include/uapi/asm-generic/fcntl.h, x86-64 values)
//! and the `AT_*` flags of the *at() requests.

use super::flag_set::FlagSet;

/// The access mode is a 2-bit value, not flags: named apart.
pub const O_ACCMODE: u64 = 0o3;

/// Every `O_*` bit above the access mode. `O_SYNC` is `__O_SYNC|O_DSYNC`
/// and `O_TMPFILE` is `__O_TMPFILE|O_DIRECTORY`: their own bits are named.
pub static OPEN_FLAGS: FlagSet = FlagSet::new(&[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "FASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "__O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "__O_TMPFILE"),
]);

/// `["O_WRONLY", "O_CREAT", ...]`: the access mode, then the flags.
pub fn open_flag_names(flags: u64) -> Vec<String> {
    let mode = match flags & O_ACCMODE {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let mut names = vec![mode.to_string()];
    names.extend(OPEN_FLAGS.names(flags & !O_ACCMODE));
    names
}

/// `AT_FDCWD`: the dirfd that means "relative to the working directory".
pub const AT_FDCWD: i32 = -100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_single_bits_ascending(&OPEN_FLAGS);
    }

    #[test]
    fn names() {
        assert_eq!(
            open_flag_names(libc::O_WRONLY as u64 | libc::O_CREAT as u64 | libc::O_CLOEXEC as u64),
            ["O_WRONLY", "O_CREAT", "O_CLOEXEC"]
        );
        assert_eq!(open_flag_names(0), ["O_RDONLY"]);
        // The libc values are the kernel's on this architecture.
        for (v, name) in [
            (libc::O_CREAT, "O_CREAT"),
            (libc::O_EXCL, "O_EXCL"),
            (libc::O_TRUNC, "O_TRUNC"),
            (libc::O_APPEND, "O_APPEND"),
            (libc::O_NONBLOCK, "O_NONBLOCK"),
            (libc::O_DIRECTORY, "O_DIRECTORY"),
            (libc::O_NOFOLLOW, "O_NOFOLLOW"),
            (libc::O_CLOEXEC, "O_CLOEXEC"),
            (libc::O_PATH, "O_PATH"),
        ] {
            assert_eq!(OPEN_FLAGS.value_of(name), Some(v as u64), "{name}");
        }
    }
}
