//! What kprobes could hook here: the kprobe PMU (how perf and BPF create
//! kprobes without tracefs), and whether each function uringtrace would
//! probe exists in `/proc/kallsyms` and is not on the kprobe blacklist.

use std::{collections::BTreeMap, io, path::Path};

/// Exists when the kernel can create kprobes through perf_event_open
/// (CONFIG_KPROBE_EVENTS, 4.17+); its `type` file is the PMU's number.
pub const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
pub const KALLSYMS: &str = "/proc/kallsyms";
/// Readable by root when debugfs is mounted.
pub const BLACKLIST: &str = "/sys/kernel/debug/kprobes/blacklist";

/// The prefix of this architecture's system call entry points.
#[cfg(target_arch = "x86_64")]
pub const SYSCALL_PREFIX: &str = "__x64_sys_";
#[cfg(target_arch = "aarch64")]
pub const SYSCALL_PREFIX: &str = "__arm64_sys_";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const SYSCALL_PREFIX: &str = "sys_";

/// The kprobe PMU's type number, or why there is none.
pub fn pmu_type() -> Result<u32, io::Error> {
    let text = std::fs::read_to_string(Path::new(KPROBE_PMU).join("type"))?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("type {text:?}: {e}")))
}

/// What `/proc/kallsyms` says of each wanted symbol.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SymbolPresence {
    /// The exact name is there (a kprobe needs it).
    pub exact: bool,
    /// Compiler clones (`name.isra.0`, `name.cold`): the function exists
    /// under another name, which a kprobe on `name` does not reach.
    pub clones: Vec<String>,
}

/// Looks the `wanted` names up in kallsyms text (`address type name
/// [module]` per line).
pub fn find_symbols(kallsyms: &str, wanted: &[&str]) -> BTreeMap<String, SymbolPresence> {
    let mut found: BTreeMap<String, SymbolPresence> = wanted
        .iter()
        .map(|w| (w.to_string(), SymbolPresence::default()))
        .collect();
    for line in kallsyms.lines() {
        let Some(name) = line.split_whitespace().nth(2) else {
            continue;
        };
        let (base, is_clone) = match name.split_once('.') {
            Some((base, _)) => (base, true),
            None => (name, false),
        };
        if let Some(entry) = found.get_mut(base) {
            if is_clone {
                if !entry.clones.iter().any(|c| c == name) {
                    entry.clones.push(name.to_string());
                }
            } else {
                entry.exact = true;
            }
        }
    }
    found
}

/// The symbols of blacklist text (`0xstart-0xend\tname` per line, some
/// with a `[module]` after).
pub fn blacklisted_symbols(blacklist: &str) -> Vec<&str> {
    blacklist
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exact_names_and_clones() {
        let kallsyms = "\
ffffffff81b471c0 t io_issue_sqe
ffffffff81b48b30 T __x64_sys_io_uring_enter
ffffffff81b48b40 t __io_submit_sqe.isra.0
ffffffff81b48b50 t __io_submit_sqe.cold
ffffffff81b48b60 t io_issue_sqe_foo
0000000000000000 t io_poll_issue\t[some_module]
";
        let found = find_symbols(
            kallsyms,
            &["io_issue_sqe", "__io_submit_sqe", "io_poll_issue", "absent"],
        );
        assert!(found["io_issue_sqe"].exact && found["io_issue_sqe"].clones.is_empty());
        assert!(!found["__io_submit_sqe"].exact);
        assert_eq!(
            found["__io_submit_sqe"].clones,
            ["__io_submit_sqe.isra.0", "__io_submit_sqe.cold"]
        );
        assert!(found["io_poll_issue"].exact);
        assert_eq!(found["absent"], SymbolPresence::default());
    }

    #[test]
    fn parses_the_blacklist() {
        let text = "0xffffffff81000000-0xffffffff81000010\tdo_int3\n\
                    0xffffffffc0000000-0xffffffffc0000020\tfoo_fn [foo]\n";
        assert_eq!(blacklisted_symbols(text), ["do_int3", "foo_fn"]);
    }
}
