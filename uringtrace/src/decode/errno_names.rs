//! errno numbers to names, as a tracer sees them in system call returns and
//! `io_uring_cqe.res`.

use super::flag_set::ValueNames;

/// Linux x86_64 errno names by number: the user-visible ones of
/// `asm-generic/errno-base.h` and `asm-generic/errno.h` (1..=134), then the
/// kernel-internal ones of `include/linux/errno.h` (512..=531), which a
/// tracer can see because it looks before the kernel restarts the call or
/// translates the value.
///
/// Only primary names appear, so aliases resolve to them: EWOULDBLOCK is
/// EAGAIN, EDEADLOCK is EDEADLK, libc's ENOTSUP is EOPNOTSUPP (not the
/// kernel-internal ENOTSUPP, 524), and the 7.2 uapi aliases EFSBADCRC and
/// EFSCORRUPTED are EBADMSG and EUCLEAN. 41 and 58 are unused on x86_64.
pub static ERRNO_NAMES: ValueNames = ValueNames::new(&[
    (1, "EPERM"),
    (2, "ENOENT"),
    (3, "ESRCH"),
    (4, "EINTR"),
    (5, "EIO"),
    (6, "ENXIO"),
    (7, "E2BIG"),
    (8, "ENOEXEC"),
    (9, "EBADF"),
    (10, "ECHILD"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (14, "EFAULT"),
    (15, "ENOTBLK"),
    (16, "EBUSY"),
    (17, "EEXIST"),
    (18, "EXDEV"),
    (19, "ENODEV"),
    (20, "ENOTDIR"),
    (21, "EISDIR"),
    (22, "EINVAL"),
    (23, "ENFILE"),
    (24, "EMFILE"),
    (25, "ENOTTY"),
    (26, "ETXTBSY"),
    (27, "EFBIG"),
    (28, "ENOSPC"),
    (29, "ESPIPE"),
    (30, "EROFS"),
    (31, "EMLINK"),
    (32, "EPIPE"),
    (33, "EDOM"),
    (34, "ERANGE"),
    (35, "EDEADLK"),
    (36, "ENAMETOOLONG"),
    (37, "ENOLCK"),
    (38, "ENOSYS"),
    (39, "ENOTEMPTY"),
    (40, "ELOOP"),
    (42, "ENOMSG"),
    (43, "EIDRM"),
    (44, "ECHRNG"),
    (45, "EL2NSYNC"),
    (46, "EL3HLT"),
    (47, "EL3RST"),
    (48, "ELNRNG"),
    (49, "EUNATCH"),
    (50, "ENOCSI"),
    (51, "EL2HLT"),
    (52, "EBADE"),
    (53, "EBADR"),
    (54, "EXFULL"),
    (55, "ENOANO"),
    (56, "EBADRQC"),
    (57, "EBADSLT"),
    (59, "EBFONT"),
    (60, "ENOSTR"),
    (61, "ENODATA"),
    (62, "ETIME"),
    (63, "ENOSR"),
    (64, "ENONET"),
    (65, "ENOPKG"),
    (66, "EREMOTE"),
    (67, "ENOLINK"),
    (68, "EADV"),
    (69, "ESRMNT"),
    (70, "ECOMM"),
    (71, "EPROTO"),
    (72, "EMULTIHOP"),
    (73, "EDOTDOT"),
    (74, "EBADMSG"),
    (75, "EOVERFLOW"),
    (76, "ENOTUNIQ"),
    (77, "EBADFD"),
    (78, "EREMCHG"),
    (79, "ELIBACC"),
    (80, "ELIBBAD"),
    (81, "ELIBSCN"),
    (82, "ELIBMAX"),
    (83, "ELIBEXEC"),
    (84, "EILSEQ"),
    (85, "ERESTART"),
    (86, "ESTRPIPE"),
    (87, "EUSERS"),
    (88, "ENOTSOCK"),
    (89, "EDESTADDRREQ"),
    (90, "EMSGSIZE"),
    (91, "EPROTOTYPE"),
    (92, "ENOPROTOOPT"),
    (93, "EPROTONOSUPPORT"),
    (94, "ESOCKTNOSUPPORT"),
    (95, "EOPNOTSUPP"),
    (96, "EPFNOSUPPORT"),
    (97, "EAFNOSUPPORT"),
    (98, "EADDRINUSE"),
    (99, "EADDRNOTAVAIL"),
    (100, "ENETDOWN"),
    (101, "ENETUNREACH"),
    (102, "ENETRESET"),
    (103, "ECONNABORTED"),
    (104, "ECONNRESET"),
    (105, "ENOBUFS"),
    (106, "EISCONN"),
    (107, "ENOTCONN"),
    (108, "ESHUTDOWN"),
    (109, "ETOOMANYREFS"),
    (110, "ETIMEDOUT"),
    (111, "ECONNREFUSED"),
    (112, "EHOSTDOWN"),
    (113, "EHOSTUNREACH"),
    (114, "EALREADY"),
    (115, "EINPROGRESS"),
    (116, "ESTALE"),
    (117, "EUCLEAN"),
    (118, "ENOTNAM"),
    (119, "ENAVAIL"),
    (120, "EISNAM"),
    (121, "EREMOTEIO"),
    (122, "EDQUOT"),
    (123, "ENOMEDIUM"),
    (124, "EMEDIUMTYPE"),
    (125, "ECANCELED"),
    (126, "ENOKEY"),
    (127, "EKEYEXPIRED"),
    (128, "EKEYREVOKED"),
    (129, "EKEYREJECTED"),
    (130, "EOWNERDEAD"),
    (131, "ENOTRECOVERABLE"),
    (132, "ERFKILL"),
    (133, "EHWPOISON"),
    // Linux 7.2 (openat2's OPENAT2_REGULAR on a file that is not regular).
    (134, "EFTYPE"),
    (512, "ERESTARTSYS"),
    (513, "ERESTARTNOINTR"),
    (514, "ERESTARTNOHAND"),
    (515, "ENOIOCTLCMD"),
    (516, "ERESTART_RESTARTBLOCK"),
    (517, "EPROBE_DEFER"),
    (518, "EOPENSTALE"),
    (519, "ENOPARAM"),
    (521, "EBADHANDLE"),
    (522, "ENOTSYNC"),
    (523, "EBADCOOKIE"),
    (524, "ENOTSUPP"),
    (525, "ETOOSMALL"),
    (526, "ESERVERFAULT"),
    (527, "EBADTYPE"),
    (528, "EJUKEBOX"),
    (529, "EIOCBQUEUED"),
    (530, "ERECALLCONFLICT"),
    (531, "ENOGRACE"),
]);

/// The name of a positive errno number (negate a `-errno` return first).
pub fn errno_name(errno: i32) -> Option<&'static str> {
    u64::try_from(errno).ok().and_then(|e| ERRNO_NAMES.name(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_values_ascending(&ERRNO_NAMES);
        // 131 of 1..=133 (41 and 58 unused), EFTYPE, 19 kernel-internal.
        assert_eq!(ERRNO_NAMES.entries().len(), 151);
        for &(_, name) in ERRNO_NAMES.entries() {
            assert!(name.starts_with('E'), "{name}");
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(errno_name(1), Some("EPERM"));
        assert_eq!(errno_name(133), Some("EHWPOISON"));
        assert_eq!(errno_name(512), Some("ERESTARTSYS"));
        assert_eq!(errno_name(531), Some("ENOGRACE"));
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(41), None);
        assert_eq!(errno_name(520), None);
        assert_eq!(errno_name(-1), None);
        assert_eq!(errno_name(i32::MAX), None);
    }

    #[test]
    fn aliases_resolve_to_primary_names() {
        assert_eq!(errno_name(libc::EWOULDBLOCK), Some("EAGAIN"));
        assert_eq!(errno_name(libc::EDEADLOCK), Some("EDEADLK"));
        assert_eq!(errno_name(libc::ENOTSUP), Some("EOPNOTSUPP"));
    }

    /// Every errno the libc crate defines for this target has our name.
    #[test]
    fn matches_libc() {
        let libc_errnos = [
            (libc::EPERM, "EPERM"),
            (libc::ENOENT, "ENOENT"),
            (libc::ESRCH, "ESRCH"),
            (libc::EINTR, "EINTR"),
            (libc::EIO, "EIO"),
            (libc::ENXIO, "ENXIO"),
            (libc::E2BIG, "E2BIG"),
            (libc::ENOEXEC, "ENOEXEC"),
            (libc::EBADF, "EBADF"),
            (libc::ECHILD, "ECHILD"),
            (libc::EAGAIN, "EAGAIN"),
            (libc::ENOMEM, "ENOMEM"),
            (libc::EACCES, "EACCES"),
            (libc::EFAULT, "EFAULT"),
            (libc::ENOTBLK, "ENOTBLK"),
            (libc::EBUSY, "EBUSY"),
            (libc::EEXIST, "EEXIST"),
            (libc::EXDEV, "EXDEV"),
            (libc::ENODEV, "ENODEV"),
            (libc::ENOTDIR, "ENOTDIR"),
            (libc::EISDIR, "EISDIR"),
            (libc::EINVAL, "EINVAL"),
            (libc::ENFILE, "ENFILE"),
            (libc::EMFILE, "EMFILE"),
            (libc::ENOTTY, "ENOTTY"),
            (libc::ETXTBSY, "ETXTBSY"),
            (libc::EFBIG, "EFBIG"),
            (libc::ENOSPC, "ENOSPC"),
            (libc::ESPIPE, "ESPIPE"),
            (libc::EROFS, "EROFS"),
            (libc::EMLINK, "EMLINK"),
            (libc::EPIPE, "EPIPE"),
            (libc::EDOM, "EDOM"),
            (libc::ERANGE, "ERANGE"),
            (libc::EDEADLK, "EDEADLK"),
            (libc::ENAMETOOLONG, "ENAMETOOLONG"),
            (libc::ENOLCK, "ENOLCK"),
            (libc::ENOSYS, "ENOSYS"),
            (libc::ENOTEMPTY, "ENOTEMPTY"),
            (libc::ELOOP, "ELOOP"),
            (libc::ENOMSG, "ENOMSG"),
            (libc::EIDRM, "EIDRM"),
            (libc::ECHRNG, "ECHRNG"),
            (libc::EL2NSYNC, "EL2NSYNC"),
            (libc::EL3HLT, "EL3HLT"),
            (libc::EL3RST, "EL3RST"),
            (libc::ELNRNG, "ELNRNG"),
            (libc::EUNATCH, "EUNATCH"),
            (libc::ENOCSI, "ENOCSI"),
            (libc::EL2HLT, "EL2HLT"),
            (libc::EBADE, "EBADE"),
            (libc::EBADR, "EBADR"),
            (libc::EXFULL, "EXFULL"),
            (libc::ENOANO, "ENOANO"),
            (libc::EBADRQC, "EBADRQC"),
            (libc::EBADSLT, "EBADSLT"),
            (libc::EBFONT, "EBFONT"),
            (libc::ENOSTR, "ENOSTR"),
            (libc::ENODATA, "ENODATA"),
            (libc::ETIME, "ETIME"),
            (libc::ENOSR, "ENOSR"),
            (libc::ENONET, "ENONET"),
            (libc::ENOPKG, "ENOPKG"),
            (libc::EREMOTE, "EREMOTE"),
            (libc::ENOLINK, "ENOLINK"),
            (libc::EADV, "EADV"),
            (libc::ESRMNT, "ESRMNT"),
            (libc::ECOMM, "ECOMM"),
            (libc::EPROTO, "EPROTO"),
            (libc::EMULTIHOP, "EMULTIHOP"),
            (libc::EDOTDOT, "EDOTDOT"),
            (libc::EBADMSG, "EBADMSG"),
            (libc::EOVERFLOW, "EOVERFLOW"),
            (libc::ENOTUNIQ, "ENOTUNIQ"),
            (libc::EBADFD, "EBADFD"),
            (libc::EREMCHG, "EREMCHG"),
            (libc::ELIBACC, "ELIBACC"),
            (libc::ELIBBAD, "ELIBBAD"),
            (libc::ELIBSCN, "ELIBSCN"),
            (libc::ELIBMAX, "ELIBMAX"),
            (libc::ELIBEXEC, "ELIBEXEC"),
            (libc::EILSEQ, "EILSEQ"),
            (libc::ERESTART, "ERESTART"),
            (libc::ESTRPIPE, "ESTRPIPE"),
            (libc::EUSERS, "EUSERS"),
            (libc::ENOTSOCK, "ENOTSOCK"),
            (libc::EDESTADDRREQ, "EDESTADDRREQ"),
            (libc::EMSGSIZE, "EMSGSIZE"),
            (libc::EPROTOTYPE, "EPROTOTYPE"),
            (libc::ENOPROTOOPT, "ENOPROTOOPT"),
            (libc::EPROTONOSUPPORT, "EPROTONOSUPPORT"),
            (libc::ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"),
            (libc::EOPNOTSUPP, "EOPNOTSUPP"),
            (libc::EPFNOSUPPORT, "EPFNOSUPPORT"),
            (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
            (libc::EADDRINUSE, "EADDRINUSE"),
            (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
            (libc::ENETDOWN, "ENETDOWN"),
            (libc::ENETUNREACH, "ENETUNREACH"),
            (libc::ENETRESET, "ENETRESET"),
            (libc::ECONNABORTED, "ECONNABORTED"),
            (libc::ECONNRESET, "ECONNRESET"),
            (libc::ENOBUFS, "ENOBUFS"),
            (libc::EISCONN, "EISCONN"),
            (libc::ENOTCONN, "ENOTCONN"),
            (libc::ESHUTDOWN, "ESHUTDOWN"),
            (libc::ETOOMANYREFS, "ETOOMANYREFS"),
            (libc::ETIMEDOUT, "ETIMEDOUT"),
            (libc::ECONNREFUSED, "ECONNREFUSED"),
            (libc::EHOSTDOWN, "EHOSTDOWN"),
            (libc::EHOSTUNREACH, "EHOSTUNREACH"),
            (libc::EALREADY, "EALREADY"),
            (libc::EINPROGRESS, "EINPROGRESS"),
            (libc::ESTALE, "ESTALE"),
            (libc::EUCLEAN, "EUCLEAN"),
            (libc::ENOTNAM, "ENOTNAM"),
            (libc::ENAVAIL, "ENAVAIL"),
            (libc::EISNAM, "EISNAM"),
            (libc::EREMOTEIO, "EREMOTEIO"),
            (libc::EDQUOT, "EDQUOT"),
            (libc::ENOMEDIUM, "ENOMEDIUM"),
            (libc::EMEDIUMTYPE, "EMEDIUMTYPE"),
            (libc::ECANCELED, "ECANCELED"),
            (libc::ENOKEY, "ENOKEY"),
            (libc::EKEYEXPIRED, "EKEYEXPIRED"),
            (libc::EKEYREVOKED, "EKEYREVOKED"),
            (libc::EKEYREJECTED, "EKEYREJECTED"),
            (libc::EOWNERDEAD, "EOWNERDEAD"),
            (libc::ENOTRECOVERABLE, "ENOTRECOVERABLE"),
            (libc::ERFKILL, "ERFKILL"),
            (libc::EHWPOISON, "EHWPOISON"),
        ];
        let mut mismatches = Vec::new();
        for (number, name) in libc_errnos {
            if errno_name(number) != Some(name) {
                mismatches.push(format!("{name} = {number}: ours {:?}", errno_name(number)));
            }
        }
        assert!(mismatches.is_empty(), "errno mismatches: {mismatches:#?}");
        // Every user-visible number up to EHWPOISON is covered by libc's list.
        let user_visible = ERRNO_NAMES
            .entries()
            .iter()
            .filter(|&&(v, _)| v <= 133)
            .count();
        assert_eq!(user_visible, libc_errnos.len());
    }
}
