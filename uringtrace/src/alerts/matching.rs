//! Matching one event against a rule's conditions: the event's facts
//! (what every condition can look at), read once per event, and the
//! conditions compiled from the rule file (lists resolved, names turned
//! into numbers).

use std::borrow::Cow;

use super::rule_file::{Conditions, Family, Glob, ResultKind, WorkerKind};
use crate::{
    event::{Call, Event, Task},
    requests::{
        event::{CredsInfo, ObjectInfo, RequestDetail, Worker},
        object::{SockAddr, Text},
    },
};

/// What the conditions (and the alert record) can see of an event.
#[derive(Debug)]
pub struct Facts<'a> {
    pub kind: &'static str,
    pub task: &'a Task,
    pub worker: Option<Worker>,
    /// Session-local ring id, its fd in its owner (when its creation was
    /// seen) and its owner.
    pub ring: Option<u32>,
    pub ring_fd: Option<i32>,
    pub req: Option<u64>,
    pub user_data: Option<u64>,
    /// The request's `IORING_OP_*` (request events).
    pub opcode: Option<u8>,
    /// The `IORING_REGISTER_*` (io_uring_register calls and ring_register
    /// events), without the registered-ring bit.
    pub register_opcode: Option<u32>,
    pub path: Option<&'a [u8]>,
    pub new_path: Option<&'a [u8]>,
    pub addr: Option<&'a str>,
    pub family: Option<&'static str>,
    /// A system call's return value, a CQE's res, ring_register's ret, the
    /// error of an SQE rejected before issue.
    pub result: Option<i64>,
    pub sqe_flags: Option<u8>,
    /// Submissions: by the ring's SQ thread.
    pub sq_thread: Option<bool>,
    /// SQEs rejected before issue: their personality field.
    pub personality: Option<u16>,
    /// Accepted requests run under a registered personality (submit and
    /// their last CQE): the credentials, or why they are unknown.
    pub creds: Option<&'a CredsInfo>,
}

fn text_bytes(t: Option<&Text>) -> Option<&[u8]> {
    match t {
        Some(Text::Read { bytes, .. }) => Some(bytes),
        _ => None,
    }
}

impl<'a> Facts<'a> {
    pub fn of(event: &'a Event) -> Self {
        let mut f = Facts {
            kind: event.name(),
            task: match event {
                Event::Syscall(e) => &e.task,
                Event::Request(e) => &e.task,
            },
            worker: None,
            ring: None,
            ring_fd: None,
            req: None,
            user_data: None,
            opcode: None,
            register_opcode: None,
            path: None,
            new_path: None,
            addr: None,
            family: None,
            result: None,
            sqe_flags: None,
            sq_thread: None,
            personality: None,
            creds: None,
        };
        match event {
            Event::Syscall(e) => {
                f.result = Some(e.outcome.ret);
                if let Call::Register(r) = &e.call {
                    f.register_opcode =
                        Some(crate::decode::register_opcodes::decode_register_opcode(r.opcode).0);
                }
            }
            Event::Request(e) => {
                f.worker = e.worker;
                f.ring = e.ring.map(|r| r.id);
                f.ring_fd = e.ring.and_then(|r| r.fd);
                if let Some(r) = e.detail.request() {
                    f.req = r.id;
                    f.user_data = Some(r.user_data);
                    f.opcode = r.opcode;
                    f.sqe_flags = r.sqe_flags;
                }
                let object = match &e.detail {
                    RequestDetail::Submit {
                        sq_thread,
                        object,
                        creds,
                        ..
                    } => {
                        f.sq_thread = Some(*sq_thread);
                        f.creds = creds.as_ref();
                        object.as_ref()
                    }
                    RequestDetail::Complete(c) | RequestDetail::CqeOverflow(c) => {
                        f.result = Some(i64::from(c.res));
                        f.user_data = Some(c.user_data);
                        f.creds = c.creds.as_ref();
                        c.object.as_ref()
                    }
                    RequestDetail::Failed { sqe, error, .. } => {
                        // Negative errno, as the CQE that follows will say.
                        f.result = Some(-i64::from(error.unsigned_abs()).max(1));
                        f.personality = Some(sqe.personality);
                        f.opcode = Some(sqe.opcode);
                        f.sqe_flags = Some(sqe.flags);
                        None
                    }
                    RequestDetail::RingRegister { opcode, ret, .. } => {
                        f.register_opcode = Some(*opcode);
                        f.result = Some(*ret);
                        None
                    }
                    _ => None,
                };
                if let Some(ObjectInfo::Decoded(o)) = object {
                    f.path = text_bytes(o.path.as_ref());
                    f.new_path = text_bytes(o.path2.as_ref());
                    if let Some(SockAddr::Known { family, addr }) = &o.addr {
                        f.addr = Some(addr);
                        f.family = Some(family);
                    }
                }
            }
        }
        f
    }
}

/// A glob compiled: literal runs between `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(char),
    AnyOne,
    AnyRun,
}

impl Pattern {
    pub fn new(glob: &str) -> Self {
        let mut pieces = Vec::new();
        let mut chars = glob.chars();
        while let Some(c) = chars.next() {
            pieces.push(match c {
                '*' => Piece::AnyRun,
                '?' => Piece::AnyOne,
                // A trailing lone `\` is refused when the file is parsed.
                '\\' => Piece::Literal(chars.next().unwrap_or('\\')),
                c => Piece::Literal(c),
            });
        }
        Self(pieces)
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // The classic greedy matcher with one backtrack point: linear in
        // practice, never exponential.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.0.get(p) {
                Some(Piece::AnyRun) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(Piece::AnyOne) => {
                    p += 1;
                    t += 1;
                }
                Some(Piece::Literal(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.0[p..].iter().all(|piece| *piece == Piece::AnyRun)
    }
}

/// Globs with the `@list` entries expanded.
#[derive(Debug, Clone, Default)]
pub struct PatternSet(Vec<Pattern>);

impl PatternSet {
    /// Expands `globs`; `list` looks a list up by name.
    pub fn new<'l>(
        globs: &[Glob],
        list: &impl Fn(&str) -> Option<&'l [String]>,
    ) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for glob in globs {
            match glob.as_str().strip_prefix('@') {
                Some(name) => {
                    let entries = list(name).ok_or_else(|| {
                        format!("`@{name}` names a list that no rule file defines (add it under \"lists\")")
                    })?;
                    patterns.extend(entries.iter().map(|e| Pattern::new(&escape(e))));
                }
                None => patterns.push(Pattern::new(glob.as_str())),
            }
        }
        Ok(Self(patterns))
    }

    pub fn any(&self, text: &str) -> bool {
        self.0.iter().any(|p| p.matches(text))
    }
}

/// A list entry is a glob too, except that it cannot refer to a list.
fn escape(entry: &str) -> Cow<'_, str> {
    match entry.strip_prefix('@') {
        Some(rest) => Cow::Owned(format!("\\@{rest}")),
        None => Cow::Borrowed(entry),
    }
}

/// A rule's conditions, ready to test.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    events: Option<Vec<String>>,
    opcodes: Option<Vec<u8>>,
    register_opcodes: Option<Vec<u32>>,
    path: Option<PatternSet>,
    path_not: Option<PatternSet>,
    new_path: Option<PatternSet>,
    addr: Option<PatternSet>,
    addr_not: Option<PatternSet>,
    families: Option<Vec<Family>>,
    comm: Option<PatternSet>,
    comm_not: Option<PatternSet>,
    uid: Option<Vec<u32>>,
    uid_not: Option<Vec<u32>>,
    result: Option<ResultKind>,
    sqe_flags: Option<u8>,
    workers: Option<Vec<WorkerKind>>,
    sq_thread: Option<bool>,
    personality_set: Option<bool>,
}

impl Matcher {
    pub fn compile<'l>(
        c: &Conditions,
        list: &impl Fn(&str) -> Option<&'l [String]>,
    ) -> Result<Self, String> {
        let patterns =
            |g: &Option<Vec<Glob>>| g.as_deref().map(|g| PatternSet::new(g, list)).transpose();
        Ok(Self {
            events: c
                .event
                .as_ref()
                .map(|v| v.iter().map(|e| e.as_str().to_string()).collect()),
            // Names were checked when the file was parsed.
            opcodes: c.opcode.as_ref().map(|v| {
                v.iter()
                    .filter_map(|o| super::rule_file::request_opcode(o.as_str()).ok())
                    .collect()
            }),
            register_opcodes: c.register_opcode.as_ref().map(|v| {
                v.iter()
                    .filter_map(|o| super::rule_file::register_opcode(o.as_str()).ok())
                    .collect()
            }),
            path: patterns(&c.path)?,
            path_not: patterns(&c.path_not)?,
            new_path: patterns(&c.new_path)?,
            addr: patterns(&c.addr)?,
            addr_not: patterns(&c.addr_not)?,
            families: c.family.clone(),
            comm: patterns(&c.comm)?,
            comm_not: patterns(&c.comm_not)?,
            uid: c.uid.clone(),
            uid_not: c.uid_not.clone(),
            result: c.result,
            sqe_flags: c.sqe_flags.as_ref().map(|v| {
                v.iter()
                    .filter_map(|f| super::rule_file::sqe_flag(f.as_str()).ok())
                    .fold(0, |all, f| all | f)
            }),
            workers: c.worker.clone(),
            sq_thread: c.sq_thread,
            personality_set: c.personality_set,
        })
    }

    pub fn matches(&self, f: &Facts<'_>) -> bool {
        fn lossy(b: &[u8]) -> Cow<'_, str> {
            String::from_utf8_lossy(b)
        }
        // A condition on a field the event does not carry fails; an
        // exclusion (`*_not`) on such a field holds.
        let within = |set: &Option<PatternSet>, v: Option<&str>| {
            set.as_ref().is_none_or(|s| v.is_some_and(|v| s.any(v)))
        };
        let outside = |set: &Option<PatternSet>, v: Option<&str>| {
            set.as_ref().is_none_or(|s| !v.is_some_and(|v| s.any(v)))
        };
        let path = f.path.map(lossy);
        let comm = f.task.comm();
        let new_path = f.new_path.map(lossy);
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|e| e == f.kind))
            && self
                .opcodes
                .as_ref()
                .is_none_or(|o| f.opcode.is_some_and(|op| o.contains(&op)))
            && self
                .register_opcodes
                .as_ref()
                .is_none_or(|o| f.register_opcode.is_some_and(|op| o.contains(&op)))
            && within(&self.path, path.as_deref())
            && outside(&self.path_not, path.as_deref())
            && within(&self.new_path, new_path.as_deref())
            && within(&self.addr, f.addr)
            && outside(&self.addr_not, f.addr)
            && self
                .families
                .as_ref()
                .is_none_or(|fam| f.family.is_some_and(|x| fam.iter().any(|y| y.name() == x)))
            && within(&self.comm, Some(&comm))
            && outside(&self.comm_not, Some(&comm))
            && self.uid.as_ref().is_none_or(|u| u.contains(&f.task.uid))
            && self
                .uid_not
                .as_ref()
                .is_none_or(|u| !u.contains(&f.task.uid))
            && self.result.is_none_or(|want| {
                f.result.is_some_and(|r| match want {
                    ResultKind::Success => r >= 0,
                    ResultKind::Failure => r < 0,
                })
            })
            && self
                .sqe_flags
                .is_none_or(|want| f.sqe_flags.is_some_and(|have| have & want == want))
            && self.workers.as_ref().is_none_or(|w| {
                w.iter().any(|w| {
                    matches!(
                        (w, f.worker),
                        (WorkerKind::None, None)
                            | (WorkerKind::IoWq, Some(Worker::IoWq))
                            | (WorkerKind::SqPoll, Some(Worker::SqPoll))
                    )
                })
            })
            && self.sq_thread.is_none_or(|want| f.sq_thread == Some(want))
            && self.personality_set.is_none_or(|want| {
                // An accepted request is known to run under a personality
                // only when it does (REQ_F_CREDS seen): `false` is decided
                // for rejected SQEs alone.
                match (f.personality, f.creds) {
                    (Some(p), _) => (p != 0) == want,
                    (None, Some(_)) => want,
                    (None, None) => false,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |g: &str, t: &str| Pattern::new(g).matches(t);
        assert!(m("/etc/*", "/etc/shadow"));
        assert!(m("/etc/*", "/etc/ssh/sshd_config"));
        assert!(!m("/etc/*", "/tmp/etc/x"));
        assert!(m("*.so", "/usr/lib/libc.so"));
        assert!(m("127.0.0.1:*", "127.0.0.1:8080"));
        assert!(!m("127.0.0.1:*", "127.0.0.10:8080"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*", ""));
        assert!(m("nginx", "nginx"));
        assert!(!m("nginx", "nginx2"));
        assert!(m("\\*x", "*x"));
        assert!(!m("\\*x", "ax"));
        assert!(m("*a*b*c", "xxaxxbxxbxc"));
        assert!(!m("*a*b*c", "xxaxxbxxbx"));
    }

    #[test]
    fn lists_expand_and_unknown_lists_fail() {
        let lists = [(
            "deny".to_string(),
            vec!["nginx".to_string(), "@odd".to_string()],
        )];
        let look = |name: &str| {
            lists
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
        };
        let glob = |s: &str| Glob::try_from(s.to_string()).unwrap();
        let set = PatternSet::new(&[glob("@deny"), glob("ssh*")], &look).unwrap();
        assert!(set.any("nginx"));
        assert!(set.any("@odd"));
        assert!(set.any("sshd"));
        assert!(!set.any("bash"));
        let err = PatternSet::new(&[glob("@nope")], &look).unwrap_err();
        assert!(err.contains("`@nope`"), "{err}");
    }
}
