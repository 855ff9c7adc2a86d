//! Signal numbers and masks, named the way strace names them on x86_64.

use super::flag_set::ValueNames;

/// x86_64 signal names by number (`arch/x86/include/uapi/asm/signal.h`).
///
/// Aliases resolve to the primary name: SIGIOT is SIGABRT, SIGPOLL is
/// SIGIO, SIGUNUSED is SIGSYS. Realtime signals follow strace rather than
/// glibc (whose SIGRTMIN moves with the signals it reserves for itself):
/// 32 is `SIGRTMIN` and 33..=64 are `SIGRT_1`..=`SIGRT_32`, i.e.
/// `SIGRT_<n - 32>`.
pub static SIGNAL_NAMES: ValueNames = ValueNames::new(&[
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (11, "SIGSEGV"),
    (12, "SIGUSR2"),
    (13, "SIGPIPE"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
    (16, "SIGSTKFLT"),
    (17, "SIGCHLD"),
    (18, "SIGCONT"),
    (19, "SIGSTOP"),
    (20, "SIGTSTP"),
    (21, "SIGTTIN"),
    (22, "SIGTTOU"),
    (23, "SIGURG"),
    (24, "SIGXCPU"),
    (25, "SIGXFSZ"),
    (26, "SIGVTALRM"),
    (27, "SIGPROF"),
    (28, "SIGWINCH"),
    (29, "SIGIO"),
    (30, "SIGPWR"),
    (31, "SIGSYS"),
    (32, "SIGRTMIN"),
    (33, "SIGRT_1"),
    (34, "SIGRT_2"),
    (35, "SIGRT_3"),
    (36, "SIGRT_4"),
    (37, "SIGRT_5"),
    (38, "SIGRT_6"),
    (39, "SIGRT_7"),
    (40, "SIGRT_8"),
    (41, "SIGRT_9"),
    (42, "SIGRT_10"),
    (43, "SIGRT_11"),
    (44, "SIGRT_12"),
    (45, "SIGRT_13"),
    (46, "SIGRT_14"),
    (47, "SIGRT_15"),
    (48, "SIGRT_16"),
    (49, "SIGRT_17"),
    (50, "SIGRT_18"),
    (51, "SIGRT_19"),
    (52, "SIGRT_20"),
    (53, "SIGRT_21"),
    (54, "SIGRT_22"),
    (55, "SIGRT_23"),
    (56, "SIGRT_24"),
    (57, "SIGRT_25"),
    (58, "SIGRT_26"),
    (59, "SIGRT_27"),
    (60, "SIGRT_28"),
    (61, "SIGRT_29"),
    (62, "SIGRT_30"),
    (63, "SIGRT_31"),
    (64, "SIGRT_32"),
]);

/// Signals in a kernel sigset on x86_64 (`_NSIG`).
pub const NSIG: u32 = 64;

/// The name of signal `sig`, if it has one.
pub fn signal_name(sig: i32) -> Option<&'static str> {
    u64::try_from(sig).ok().and_then(|s| SIGNAL_NAMES.name(s))
}

/// The name of signal `sig`, or its decimal number when it has none.
pub fn render_signal(sig: i32) -> String {
    match signal_name(sig) {
        Some(name) => name.to_string(),
        None => sig.to_string(),
    }
}

/// Full names (`"SIGUSR1"`) of the signals in a kernel sigset, lowest
/// first; bit `n - 1` stands for signal `n`.
pub fn sigmask_names(mask: u64) -> Vec<String> {
    set_signals(mask)
        .map(|sig| SIGNAL_NAMES.render(u64::from(sig)))
        .collect()
}

/// A sigset as strace prints it: `[]`, `[USR1 USR2]` (names without
/// `SIG`), or, when at least two thirds of the 64 bits are set, `~[...]`
/// listing the signals that are not in it (strace's rule, so a "block
/// everything but" mask reads as `~[KILL STOP]`).
pub fn render_sigmask(mask: u64) -> String {
    let inverted = mask.count_ones() >= NSIG * 2 / 3;
    let shown = if inverted { !mask } else { mask };
    let names: Vec<String> = set_signals(shown)
        .map(|sig| match SIGNAL_NAMES.name(u64::from(sig)) {
            Some(name) => name.strip_prefix("SIG").unwrap_or(name).to_string(),
            None => sig.to_string(),
        })
        .collect();
    format!("{}[{}]", if inverted { "~" } else { "" }, names.join(" "))
}

/// Signal numbers whose bits are set in `mask`, ascending.
fn set_signals(mask: u64) -> impl Iterator<Item = u32> {
    (0..NSIG)
        .filter(move |bit| mask & (1 << bit) != 0)
        .map(|bit| bit + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    fn bit(sig: i32) -> u64 {
        1 << (sig - 1)
    }

    #[test]
    fn shape() {
        shape::assert_values_ascending(&SIGNAL_NAMES);
        assert_eq!(SIGNAL_NAMES.entries().len(), 64);
        for (i, &(v, name)) in SIGNAL_NAMES.entries().iter().enumerate() {
            assert_eq!(v, i as u64 + 1, "{name}");
            assert!(name.starts_with("SIG"), "{name}");
        }
    }

    /// Every signal the libc crate defines for this target has our name.
    #[test]
    fn matches_libc() {
        let libc_signals = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGTRAP, "SIGTRAP"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGIOT, "SIGABRT"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGFPE, "SIGFPE"),
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGSTKFLT, "SIGSTKFLT"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGCONT, "SIGCONT"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGTSTP, "SIGTSTP"),
            (libc::SIGTTIN, "SIGTTIN"),
            (libc::SIGTTOU, "SIGTTOU"),
            (libc::SIGURG, "SIGURG"),
            (libc::SIGXCPU, "SIGXCPU"),
            (libc::SIGXFSZ, "SIGXFSZ"),
            (libc::SIGVTALRM, "SIGVTALRM"),
            (libc::SIGPROF, "SIGPROF"),
            (libc::SIGWINCH, "SIGWINCH"),
            (libc::SIGIO, "SIGIO"),
            (libc::SIGPOLL, "SIGIO"),
            (libc::SIGPWR, "SIGPWR"),
            (libc::SIGSYS, "SIGSYS"),
        ];
        for (number, name) in libc_signals {
            assert_eq!(signal_name(number), Some(name), "signal {number}");
        }
        // glibc's SIGRTMIN() is above the kernel's 32 (glibc keeps some for
        // itself); its SIGRTMAX() is the kernel's last signal.
        assert!(libc::SIGRTMIN() >= 32);
        assert_eq!(libc::SIGRTMAX(), NSIG as i32);
        assert_eq!(signal_name(libc::SIGRTMAX()), Some("SIGRT_32"));
    }

    #[test]
    fn realtime_names() {
        assert_eq!(signal_name(32), Some("SIGRTMIN"));
        assert_eq!(signal_name(33), Some("SIGRT_1"));
        assert_eq!(signal_name(64), Some("SIGRT_32"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(65), None);
        assert_eq!(signal_name(-9), None);
        assert_eq!(render_signal(65), "65");
        assert_eq!(render_signal(9), "SIGKILL");
    }

    #[test]
    fn mask_names() {
        assert!(sigmask_names(0).is_empty());
        assert_eq!(
            sigmask_names(bit(libc::SIGUSR1) | bit(libc::SIGUSR2) | bit(33)),
            ["SIGUSR1", "SIGUSR2", "SIGRT_1"]
        );
        assert_eq!(sigmask_names(1 << 63), ["SIGRT_32"]);
    }

    #[test]
    fn mask_rendering_like_strace() {
        assert_eq!(render_sigmask(0), "[]");
        assert_eq!(
            render_sigmask(bit(libc::SIGUSR1) | bit(libc::SIGUSR2)),
            "[USR1 USR2]"
        );
        assert_eq!(render_sigmask(bit(32) | bit(64)), "[RTMIN RT_32]");
        assert_eq!(render_sigmask(u64::MAX), "~[]");
        assert_eq!(
            render_sigmask(!(bit(libc::SIGKILL) | bit(libc::SIGSTOP))),
            "~[KILL STOP]"
        );
        // glibc's sigfillset leaves out the two signals it reserves, and
        // strace shows the result as `~[RTMIN RT_1]`.
        assert_eq!(render_sigmask(!(bit(32) | bit(33))), "~[RTMIN RT_1]");
    }

    #[test]
    fn mask_inversion_threshold_is_two_thirds() {
        // 42 of 64 bits set (64 * 2 / 3 rounded down) is where strace
        // switches to the inverted form; 41 is still listed directly.
        let forty_one = (1u64 << 41) - 1;
        let forty_two = (1u64 << 42) - 1;
        assert!(render_sigmask(forty_one).starts_with("[HUP INT"));
        assert_eq!(
            render_sigmask(forty_two),
            format!(
                "~[{}]",
                (43..=64)
                    .map(|s| format!("RT_{}", s - 32))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
}
