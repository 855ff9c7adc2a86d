//! `--context`: who a process is beyond pid and comm, for security
//! pipelines: parent, executable, cgroup (and the container id in its
//! path), pid and mount namespaces. Read from /proc once per process, at
//! its first event: a process gone by then keeps these fields null.

use std::{
    collections::HashMap,
    os::unix::{ffi::OsStrExt as _, fs::MetadataExt as _},
    path::{Path, PathBuf},
    sync::Arc,
};

/// What /proc said of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessContext {
    pub ppid: Option<u32>,
    /// The executable's path (bytes: a process names its own files).
    pub exe: Option<Vec<u8>>,
    /// The cgroup v2 path (`0::/...` in /proc/PID/cgroup).
    pub cgroup: Option<Vec<u8>>,
    /// Its id: the cgroup directory's inode, as `bpf_get_current_cgroup_id`
    /// and `--cgroup` use.
    pub cgroup_id: Option<u64>,
    /// A 64-hex-digit container id found in the cgroup path (docker,
    /// containerd, podman, cri-o name their scopes after it).
    pub container_id: Option<String>,
    /// Namespace inode numbers, as `ls -l /proc/PID/ns` shows them.
    pub pid_ns: Option<u64>,
    pub mnt_ns: Option<u64>,
}

/// Processes remembered at most; past it the cache starts over.
const MAX_PROCESSES: usize = 1 << 16;

pub struct ContextCache {
    processes: HashMap<u32, Arc<ProcessContext>>,
    /// Where the cgroup v2 hierarchy is mounted, for cgroup ids.
    cgroup2: Option<PathBuf>,
}

impl Default for ContextCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ContextCache {
    pub fn new() -> Self {
        Self {
            processes: HashMap::new(),
            cgroup2: cgroup2_mount(),
        }
    }

    pub fn get(&mut self, pid: u32) -> Arc<ProcessContext> {
        if let Some(c) = self.processes.get(&pid) {
            return Arc::clone(c);
        }
        if self.processes.len() >= MAX_PROCESSES {
            self.processes.clear();
        }
        let c = Arc::new(read(pid, self.cgroup2.as_deref()));
        self.processes.insert(pid, Arc::clone(&c));
        c
    }
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir))
    })
}

fn ns_inode(pid: u32, ns: &str) -> Option<u64> {
    // "pid:[4026531836]"
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()?;
    let text = link.to_str()?;
    text.split_once('[')?.1.strip_suffix(']')?.parse().ok()
}

fn read(pid: u32, cgroup2: Option<&Path>) -> ProcessContext {
    let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // comm may hold spaces and parentheses: fields after the last ')'.
            let rest = stat.rsplit_once(')')?.1;
            rest.split_whitespace().nth(1)?.parse().ok()
        });
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec());
    let cgroup = std::fs::read(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|text| {
            text.split(|&b| b == b'\n')
                .find_map(|l| l.strip_prefix(b"0::"))
                .map(<[u8]>::to_vec)
        });
    let cgroup_id = cgroup.as_ref().and_then(|path| {
        let root = cgroup2?;
        let rel = std::ffi::OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path));
        std::fs::metadata(root.join(rel)).ok().map(|m| m.ino())
    });
    let container_id = cgroup.as_deref().and_then(container_id);
    ProcessContext {
        ppid,
        exe,
        cgroup,
        cgroup_id,
        container_id,
        pid_ns: ns_inode(pid, "pid"),
        mnt_ns: ns_inode(pid, "mnt"),
    }
}

/// The last 64-hex-digit run between path separators, dots or dashes
/// (`/docker/<id>`, `docker-<id>.scope`, `cri-containerd-<id>.scope`).
pub fn container_id(cgroup: &[u8]) -> Option<String> {
    cgroup
        .split(|&b| matches!(b, b'/' | b'.' | b'-' | b':'))
        .rev()
        .find(|part| part.len() == 64 && part.iter().all(u8::is_ascii_hexdigit))
        .map(|part| String::from_utf8_lossy(part).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_in_cgroup_paths() {
        let id = "a".repeat(64);
        for path in [
            format!("/docker/{id}"),
            format!("/system.slice/docker-{id}.scope"),
            format!("/kubepods/burstable/pod1/cri-containerd-{id}.scope"),
        ] {
            assert_eq!(container_id(path.as_bytes()), Some(id.clone()), "{path}");
        }
        assert_eq!(container_id(b"/user.slice/user-1000.slice"), None);
    }

    #[test]
    fn this_process() {
        let c = read(std::process::id(), cgroup2_mount().as_deref());
        // SAFETY: getppid has no preconditions.
        assert_eq!(c.ppid, Some(unsafe { libc::getppid() } as u32));
        assert_eq!(
            c.exe.as_deref(),
            Some(std::env::current_exe().unwrap().as_os_str().as_bytes())
        );
        assert!(c.pid_ns.is_some() && c.mnt_ns.is_some());
    }
}
