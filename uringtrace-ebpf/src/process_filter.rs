//! Which processes are traced: everything, or the thread groups in
//! TRACED_TGIDS, which follows forks in the kernel so a child's first call
//! is never missed (userspace would learn of the child too late).

use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_uid_gid, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use uringtrace_common::{
    counters,
    filter::{FILTER_ALL, TRACED_FORKED},
    layout::OFFSET_ABSENT,
};

use crate::{
    config,
    emit::current_task,
    maps::{
        COMM_TGIDS, FILTER_GENERATION, INFLIGHT_ENTER, INFLIGHT_REGISTER, INFLIGHT_SETUP,
        TGID_CACHE, TRACED_TGIDS, count,
    },
};

/// The process filter (`-p`, a command and its descendants) and the task
/// filters (`--uid`, `--comm`, `--cgroup`).
#[inline(always)]
pub fn is_traced(tgid: u32) -> bool {
    (config::filter_mode() == FILTER_ALL || tgid_traced(tgid)) && task_filter_passes(tgid)
}

/// Whether `tgid` is in TRACED_TGIDS, through a one-entry per-CPU cache:
/// a traced program's events come in runs on a CPU, and a hash lookup
/// per event was a tenth of a request program's time. The cache is keyed
/// by FILTER_GENERATION, which every change to the table moves, and every
/// process exit too: a pid reused by a process userspace adds to the table
/// itself (a command's child adds itself before exec) then never meets an
/// answer cached for the pid's previous owner.
#[inline(always)]
fn tgid_traced(tgid: u32) -> bool {
    let generation = FILTER_GENERATION
        .get_ptr(0)
        .map_or(0, |g| unsafe { core::ptr::read_volatile(g) });
    let key = cache_key(tgid, generation);
    let Some(slot) = TGID_CACHE.get_ptr_mut(0) else {
        return TRACED_TGIDS.get_ptr(tgid).is_some();
    };
    let cached = unsafe { core::ptr::read_volatile(slot) };
    if cached & !1 == key {
        return cached & 1 != 0;
    }
    let traced = TRACED_TGIDS.get_ptr(tgid).is_some();
    unsafe { core::ptr::write_volatile(slot, key | u64::from(traced)) };
    traced
}

/// tgid (22 bits: pid_max is at most 2^22), the generation's low 41 bits,
/// and a 0 bit for the answer.
#[inline(always)]
fn cache_key(tgid: u32, generation: u64) -> u64 {
    (u64::from(tgid & 0x3f_ffff) << 42) | ((generation & ((1 << 41) - 1)) << 1)
}

/// Invalidates every CPU's cached answer (see tgid_traced). The new
/// generation is the time, not a count: two CPUs changing the table at
/// once (there is no atomic add here) still leave a value that no cache
/// was filled under, and it takes 36 minutes for its low 41 bits to come
/// round again.
#[inline(always)]
fn filter_changed() {
    if let Some(g) = FILTER_GENERATION.get_ptr_mut(0) {
        unsafe { core::ptr::write_volatile(g, bpf_ktime_get_ns()) };
    }
}

#[inline(always)]
fn task_filter_passes(tgid: u32) -> bool {
    if config::task_filter(|f| &f.uid_enabled) != 0
        && bpf_get_current_uid_gid() as u32 != config::task_filter(|f| &f.uid)
    {
        return false;
    }
    let cgroup_id = config::task_filter(|f| &f.cgroup_id);
    if cgroup_id != 0 && unsafe { bpf_get_current_cgroup_id() } != cgroup_id {
        return false;
    }
    if config::task_filter(|f| &f.comm_enabled) != 0 && COMM_TGIDS.get_ptr(tgid).is_none() {
        if crate::emit::current_comm_words() != config::task_filter_comm_words() {
            return false;
        }
        // Its io_uring worker threads have other names: let the whole
        // thread group through from now on.
        if COMM_TGIDS.insert(tgid, 1, 0).is_err() {
            count(counters::FILTER_FULL);
        }
    }
    true
}

#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let _ = try_fork(&ctx);
    0
}

fn try_fork(ctx: &TracePointContext) -> Result<(), i32> {
    if config::filter_mode() == FILTER_ALL || !config::follow_forks() {
        return Ok(());
    }
    let offset = config::fork_child_pid_offset();
    if offset == OFFSET_ABSENT {
        return Ok(());
    }
    // The parent runs this tracepoint, so "current" is the parent.
    let parent = current_task();
    if TRACED_TGIDS.get_ptr(parent.tgid).is_none() {
        return Ok(());
    }
    // The record cannot say whether the child is a process or a thread; a
    // thread's tid in the map is harmless (its tgid is already there) and is
    // removed when the thread exits.
    let child: i32 = unsafe { ctx.read_at(offset as usize)? };
    if TRACED_TGIDS.insert(child as u32, TRACED_FORKED, 0).is_err() {
        count(counters::FILTER_FULL);
    }
    filter_changed();
    Ok(())
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &TracePointContext) -> Result<(), i32> {
    let task = current_task();
    // The thread's in-flight slots stay between its calls (see
    // syscalls::begin): they go with the thread, whatever the filter.
    let _ = INFLIGHT_ENTER.remove(task.tid);
    let _ = INFLIGHT_REGISTER.remove(task.tid);
    let _ = INFLIGHT_SETUP.remove(task.tid);
    if config::filter_mode() == FILTER_ALL {
        return Ok(());
    }
    // Before the removals, and after them below: an answer cached on
    // another CPU between the two, before the removal took effect, is
    // invalidated by the second.
    filter_changed();
    if task.tid != task.tgid
        && let Some(how) = TRACED_TGIDS.get_ptr(task.tid)
        && unsafe { *how } == TRACED_FORKED
    {
        // A thread's tid that try_fork inserted.
        let _ = TRACED_TGIDS.remove(task.tid);
    }
    // Forget the process only when the whole group is gone, so a recycled
    // pid is not traced by mistake. Kernels without group_dead only tell the
    // leader's exit, which nearly always is the group's.
    let offset = config::exit_group_dead_offset();
    let group_dead = if offset == OFFSET_ABSENT {
        task.tid == task.tgid
    } else {
        unsafe { ctx.read_at::<u8>(offset as usize)? != 0 }
    };
    if group_dead {
        let _ = TRACED_TGIDS.remove(task.tgid);
    }
    filter_changed();
    Ok(())
}
