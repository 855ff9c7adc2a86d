//! Which io_uring features the running kernel has, so a scenario makes the
//! calls this kernel supports and knows what it answers to the others.
//!
//! Each feature is known by the mainline release that brought it. The
//! kernel's io_uring is at least as new as its version (uname) says, and
//! at least as new as the IORING_FEAT_* bits its io_uring_setup answered
//! say: stable kernels get io_uring backports (Debian's 5.10 carries
//! 5.15's io_uring), which the version alone would miss. No io_uring call
//! is made just to ask: it would be a call of its own in every trace. So
//! a scenario asks after setting up its first ring. A kernel with a
//! feature that neither shows is told to skip it, the reason naming what
//! was seen; one claiming a feature it lacks fails the scenario, loudly.

use std::fmt;

/// An io_uring feature some scenario depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// IORING_ENTER_EXT_ARG: io_uring_getevents_arg (timeout + sigmask).
    ExtArg,
    /// IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, IORING_OP_SHUTDOWN.
    RenameUnlinkShutdown,
    /// IORING_OP_MKDIRAT, IORING_OP_SYMLINKAT, IORING_OP_LINKAT.
    MkdirSymlinkLink,
    /// IOSQE_CQE_SKIP_SUCCESS.
    CqeSkipSuccess,
    /// IORING_REGISTER_RING_FDS and IORING_ENTER_REGISTERED_RING;
    /// IORING_SETUP_SUBMIT_ALL came in the same release.
    RegisteredRings,
    /// IORING_SETUP_COOP_TASKRUN, TASKRUN_FLAG, SQE128, CQE32;
    /// IORING_REGISTER_PBUF_RING.
    CoopTaskrunBigEntries,
    /// Multishot IORING_OP_RECV (IORING_RECV_MULTISHOT) and
    /// IORING_SETUP_SINGLE_ISSUER.
    MultishotRecv,
    /// IORING_REGISTER_USE_REGISTERED_RING: io_uring_register through a
    /// registered ring index.
    RegisterViaRegisteredRing,
    /// Files of requests assigned at issue, not at init (a bad fd fails
    /// the request when it runs, not its whole chain when submitted):
    /// IORING_FEAT_LINKED_FILE.
    FileAtIssue,
    /// IORING_CQE_F_SOCK_NONEMPTY on a socket RECV's CQE.
    SockNonempty,
    /// IORING_SETUP_NO_SQARRAY (and so everything before it, such as
    /// DEFER_TASKRUN).
    NoSqArray,
    /// io_uring_getevents_arg.min_wait_usec (a must-be-zero pad before)
    /// and IORING_ENTER_ABS_TIMER.
    MinWaitAbsTimer,
    /// IORING_REGISTER_MEM_REGION wait regions and IORING_ENTER_EXT_ARG_REG.
    WaitRegions,
    /// IORING_ENTER_NO_IOWAIT.
    NoIowait,
}

impl Feature {
    /// The first mainline release with the feature.
    pub fn since(self) -> Version {
        let (major, minor) = match self {
            Self::ExtArg | Self::RenameUnlinkShutdown => (5, 11),
            Self::MkdirSymlinkLink => (5, 15),
            Self::CqeSkipSuccess => (5, 17),
            Self::RegisteredRings | Self::FileAtIssue => (5, 18),
            Self::CoopTaskrunBigEntries => (5, 19),
            Self::MultishotRecv | Self::SockNonempty => (6, 0),
            Self::RegisterViaRegisteredRing => (6, 3),
            Self::NoSqArray => (6, 6),
            Self::MinWaitAbsTimer => (6, 12),
            Self::WaitRegions => (6, 13),
            Self::NoIowait => (6, 15),
        };
        Version { major, minor }
    }

    fn name(self) -> &'static str {
        match self {
            Self::ExtArg => "IORING_ENTER_EXT_ARG",
            Self::RenameUnlinkShutdown => "RENAMEAT/UNLINKAT/SHUTDOWN requests",
            Self::MkdirSymlinkLink => "MKDIRAT/SYMLINKAT/LINKAT requests",
            Self::CqeSkipSuccess => "IOSQE_CQE_SKIP_SUCCESS",
            Self::RegisteredRings => "registered ring fds (REGISTER_RING_FDS)",
            Self::CoopTaskrunBigEntries => "COOP_TASKRUN, SQE128/CQE32 and provided buffer rings",
            Self::MultishotRecv => "multishot RECV",
            Self::RegisterViaRegisteredRing => "IORING_REGISTER_USE_REGISTERED_RING",
            Self::NoSqArray => "IORING_SETUP_NO_SQARRAY",
            Self::SockNonempty => "IORING_CQE_F_SOCK_NONEMPTY",
            Self::FileAtIssue => "file assignment at issue (IORING_FEAT_LINKED_FILE)",
            Self::MinWaitAbsTimer => "min_wait_usec and IORING_ENTER_ABS_TIMER",
            Self::WaitRegions => "registered wait regions (IORING_ENTER_EXT_ARG_REG)",
            Self::NoIowait => "IORING_ENTER_NO_IOWAIT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The running kernel, as far as the scenarios care.
pub struct KernelFeatures {
    release: String,
    /// `None` when the release does not start with `major.minor`: every
    /// feature is then assumed, so a missing one fails a scenario loudly
    /// rather than skipping it.
    version: Option<Version>,
    /// The newest release implied by the IORING_FEAT_* bits seen so far.
    features_imply: Option<Version>,
}

/// IORING_FEAT_* bits and the release that brought each, newest first.
const FEAT_BITS: [(u32, u32, u32); 10] = [
    (1 << 17, 6, 15), // NO_IOWAIT
    (1 << 16, 6, 14), // RW_ATTR
    (1 << 15, 6, 12), // MIN_TIMEOUT
    (1 << 14, 6, 10), // RECVSEND_BUNDLE
    (1 << 13, 6, 3),  // REG_REG_RING
    (1 << 12, 5, 18), // LINKED_FILE
    (1 << 11, 5, 17), // CQE_SKIP
    (1 << 10, 5, 13), // RSRC_TAGS
    (1 << 9, 5, 12),  // NATIVE_WORKERS
    (1 << 8, 5, 11),  // EXT_ARG
];

impl KernelFeatures {
    pub fn detect() -> Self {
        let release = uname_release().unwrap_or_default();
        Self::from_release(release)
    }

    fn from_release(release: String) -> Self {
        let version = parse_version(&release);
        Self {
            release,
            version,
            features_imply: None,
        }
    }

    /// Takes in the `features` an io_uring_setup answered.
    pub fn saw_setup_features(&mut self, features: u32) {
        let implied = FEAT_BITS
            .iter()
            .find(|(bit, ..)| features & bit != 0)
            .map(|&(_, major, minor)| Version { major, minor });
        self.features_imply = self.features_imply.max(implied);
    }

    pub fn has(&self, feature: Feature) -> bool {
        let Some(version) = self.version else {
            return true;
        };
        version.max(self.features_imply.unwrap_or(version)) >= feature.since()
    }

    /// Why a scenario needing `features` cannot run here, or `None` when
    /// the kernel has them all.
    pub fn missing(&self, features: &[Feature]) -> Option<String> {
        let missing: Vec<String> = features
            .iter()
            .filter(|f| !self.has(**f))
            .map(|f| format!("{} (Linux {})", f.name(), f.since()))
            .collect();
        let seen = match self.features_imply {
            Some(v) if self.version.is_some_and(|k| v > k) => {
                format!(" (its io_uring features are those of {v})")
            }
            _ => String::new(),
        };
        (!missing.is_empty())
            .then(|| format!("kernel {}{seen} lacks {}", self.release, missing.join(", ")))
    }
}

fn uname_release() -> Option<String> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates release within its array.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    Some(release.to_string_lossy().into_owned())
}

fn parse_version(release: &str) -> Option<Version> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Version { major, minor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_releases() {
        let k = KernelFeatures::from_release("5.10.0-35-amd64".into());
        assert!(!k.has(Feature::ExtArg));
        let k = KernelFeatures::from_release("6.1.0-31-amd64".into());
        assert!(k.has(Feature::MultishotRecv));
        assert!(!k.has(Feature::RegisterViaRegisteredRing));
        assert_eq!(
            k.missing(&[Feature::ExtArg, Feature::NoSqArray, Feature::NoIowait]),
            Some(
                "kernel 6.1.0-31-amd64 lacks IORING_SETUP_NO_SQARRAY (Linux 6.6), \
                 IORING_ENTER_NO_IOWAIT (Linux 6.15)"
                    .into()
            )
        );
        let k = KernelFeatures::from_release("6.18.44-fc-v669".into());
        assert_eq!(k.missing(&[Feature::NoIowait, Feature::WaitRegions]), None);
    }

    #[test]
    fn setup_features_reveal_backports() {
        let mut k = KernelFeatures::from_release("5.10.0-46-amd64".into());
        assert!(!k.has(Feature::ExtArg));
        // Debian's 5.10 answers with 5.15's feature bits, up to RSRC_TAGS.
        k.saw_setup_features(0x7ff);
        assert!(k.has(Feature::ExtArg));
        assert!(!k.has(Feature::CqeSkipSuccess));
        assert_eq!(
            k.missing(&[Feature::CqeSkipSuccess]).as_deref(),
            Some(
                "kernel 5.10.0-46-amd64 (its io_uring features are those of 5.13) \
                 lacks IOSQE_CQE_SKIP_SUCCESS (Linux 5.17)"
            )
        );
    }

    #[test]
    fn unparsable_release_assumes_everything() {
        let k = KernelFeatures::from_release("custom".into());
        assert!(k.has(Feature::NoIowait));
    }
}
