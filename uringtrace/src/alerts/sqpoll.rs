//! The state of the `sqpoll_without_enter` rule kind: per ring, how many
//! requests its SQ thread submitted since the owner last called
//! io_uring_enter on it. Exact semantics in docs/rules.md.

use std::collections::HashMap;

use crate::{
    event::{Call, Event},
    requests::event::{RequestDetail, Worker},
};

/// One ring's quiet streak.
#[derive(Debug, Default)]
struct Streak {
    owner: u32,
    /// The ring's fd in its owner, when its creation was seen.
    fd: Option<i32>,
    /// SQ-thread submissions since the owner's last io_uring_enter on the
    /// ring (or since the ring was first seen).
    submissions: u64,
    /// The rule fired for this ring: it does not fire again.
    fired: bool,
}

/// Rings beyond this many are forgotten, oldest id first: a monitor runs
/// for days, and rings come and go.
const MAX_RINGS: usize = 16_384;

#[derive(Debug)]
pub struct SqpollWatch {
    min_requests: u64,
    rings: HashMap<u32, Streak>,
}

impl SqpollWatch {
    pub fn new(min_requests: u64) -> Self {
        Self {
            min_requests,
            rings: HashMap::new(),
        }
    }

    /// Follows every event (whatever the rule's conditions); returns the
    /// streak length when `event` is an SQ-thread submission that makes
    /// the rule fire.
    pub fn observe(&mut self, event: &Event, submission_matches: bool) -> Option<u64> {
        match event {
            Event::Syscall(e) => {
                if let Call::Enter(call) = &e.call {
                    let pid = e.task.pid;
                    // A registered-ring index cannot be mapped to a ring;
                    // nor can the fd of a ring whose creation was not
                    // seen: such an enter ends the streak of every ring of
                    // the process it could be about.
                    let fd = (!call.registered_ring()).then_some(call.fd as i32);
                    for streak in self.rings.values_mut().filter(|s| s.owner == pid) {
                        if fd.is_none() || streak.fd.is_none() || streak.fd == fd {
                            streak.submissions = 0;
                        }
                    }
                }
                None
            }
            Event::Request(e) => {
                let ring = e.ring?;
                if let RequestDetail::RingCreate { .. } = e.detail {
                    // A new ring (or a reused id): a fresh streak.
                    self.rings.remove(&ring.id);
                }
                let RequestDetail::Submit { sq_thread, .. } = e.detail else {
                    return None;
                };
                if !(sq_thread || e.worker == Some(Worker::SqPoll)) {
                    return None;
                }
                if self.rings.len() >= MAX_RINGS && !self.rings.contains_key(&ring.id) {
                    let oldest = self.rings.keys().min().copied();
                    if let Some(oldest) = oldest {
                        self.rings.remove(&oldest);
                    }
                }
                let streak = self.rings.entry(ring.id).or_insert_with(|| Streak {
                    owner: ring.owner.unwrap_or(e.task.pid),
                    fd: ring.fd,
                    ..Streak::default()
                });
                streak.submissions += 1;
                if submission_matches && !streak.fired && streak.submissions >= self.min_requests {
                    streak.fired = true;
                    return Some(streak.submissions);
                }
                None
            }
        }
    }
}
