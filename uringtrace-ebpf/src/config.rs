//! Load-time configuration: read-only globals that userspace overrides
//! before loading (`EbpfLoader::override_global`). Offsets come from the
//! running kernel's tracefs format files, because Rust eBPF has no CO-RE.

use uringtrace_common::{
    filter::{FILTER_ALL, TaskFilter},
    header::TaskLayout,
    layout::OFFSET_ABSENT,
    record_recipe::{RecipeLayout, RecordRecipe},
    request::{OpcodeFilter, RequestLayout},
    request_object::ObjectLayout,
};

#[unsafe(no_mangle)]
static FILTER_MODE: u8 = FILTER_ALL;
#[unsafe(no_mangle)]
static FOLLOW_FORKS: u8 = 0;
/// Offset of the first argument in `syscalls:sys_enter_*` records; the six
/// arguments follow in 8-byte slots.
#[unsafe(no_mangle)]
static SYSCALL_ARGS_OFFSET: u32 = 16;
/// Offset of `ret` in `syscalls:sys_exit_*` records.
#[unsafe(no_mangle)]
static SYSCALL_RET_OFFSET: u32 = 16;
/// Offset of `child_pid` in `sched:sched_process_fork` (moved in 6.x when
/// the comms became __data_loc strings).
#[unsafe(no_mangle)]
static FORK_CHILD_PID_OFFSET: u32 = OFFSET_ABSENT;
/// Offset of `group_dead` in `sched:sched_process_exit` (absent on old kernels).
#[unsafe(no_mangle)]
static EXIT_GROUP_DEAD_OFFSET: u32 = OFFSET_ABSENT;

/// Offsets in the io_uring tracepoints that the programs read themselves.
#[unsafe(no_mangle)]
static REQUEST_LAYOUT: RequestLayout = RequestLayout::ABSENT;
/// `hook_mode::*`: trace, or a benchmark reference point.
#[unsafe(no_mangle)]
static HOOK_MODE: u8 = uringtrace_common::hook_mode::FULL;
/// `summary::SUMMARY_*`.
#[unsafe(no_mangle)]
static SUMMARY_MODE: u8 = uringtrace_common::summary::SUMMARY_OFF;
/// `--uid`, `--comm`, `--cgroup`.
#[unsafe(no_mangle)]
static TASK_FILTER: TaskFilter = TaskFilter::OFF;
/// BTF offsets for the request-object program.
#[unsafe(no_mangle)]
static OBJECT_LAYOUT: ObjectLayout = ObjectLayout::OFF;
/// Non-zero when the submit tp_btf program also writes the request-object
/// record (request_objects::object_in_submit) and the object program is
/// not attached.
#[unsafe(no_mangle)]
static OBJECTS_IN_SUBMIT: u8 = 0;
/// Offset of `task_struct.flags` (from BTF), to tell io_uring's own threads
/// by PF_IO_WORKER; OFFSET_ABSENT before 5.12 or without BTF, where
/// userspace goes by the thread's name instead.
#[unsafe(no_mangle)]
static TASK_FLAGS_OFFSET: u32 = OFFSET_ABSENT;
/// Where the header's task fields are (see TaskLayout).
#[unsafe(no_mangle)]
static TASK_LAYOUT: TaskLayout = TaskLayout::OFF;
/// How the tp_btf request programs rebuild each tracepoint's record.
#[unsafe(no_mangle)]
static RECIPE_LAYOUT: RecipeLayout = RecipeLayout::OFF;
/// `--ops`.
#[unsafe(no_mangle)]
static OPCODE_FILTER: OpcodeFilter = OpcodeFilter::ALL;

// Volatile reads keep the compiler from folding the defaults in: the values
// are only known at load time.
#[inline(always)]
pub fn filter_mode() -> u8 {
    unsafe { core::ptr::read_volatile(&FILTER_MODE) }
}
#[inline(always)]
pub fn follow_forks() -> bool {
    unsafe { core::ptr::read_volatile(&FOLLOW_FORKS) != 0 }
}
#[inline(always)]
pub fn syscall_args_offset() -> usize {
    unsafe { core::ptr::read_volatile(&SYSCALL_ARGS_OFFSET) as usize }
}
#[inline(always)]
pub fn syscall_ret_offset() -> usize {
    unsafe { core::ptr::read_volatile(&SYSCALL_RET_OFFSET) as usize }
}
#[inline(always)]
pub fn fork_child_pid_offset() -> u32 {
    unsafe { core::ptr::read_volatile(&FORK_CHILD_PID_OFFSET) }
}
#[inline(always)]
pub fn exit_group_dead_offset() -> u32 {
    unsafe { core::ptr::read_volatile(&EXIT_GROUP_DEAD_OFFSET) }
}
#[inline(always)]
pub fn ring_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.ring[tp]) }
}
#[inline(always)]
pub fn opcode_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.opcode[tp]) }
}
#[inline(always)]
pub fn nonzero_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.nonzero[tp]) }
}
#[inline(always)]
pub fn opcode_filter_enabled() -> bool {
    unsafe { core::ptr::read_volatile(&OPCODE_FILTER.enabled) != 0 }
}
#[inline(always)]
pub fn opcode_filter_keeps(opcode: u8) -> bool {
    let word = unsafe { core::ptr::read_volatile(&OPCODE_FILTER.mask[(opcode >> 6) as usize & 3]) };
    word & (1 << (opcode & 63)) != 0
}
#[inline(always)]
pub fn objects_in_submit() -> bool {
    unsafe { core::ptr::read_volatile(&OBJECTS_IN_SUBMIT) != 0 }
}
#[inline(always)]
pub fn hook_mode() -> u8 {
    unsafe { core::ptr::read_volatile(&HOOK_MODE) }
}
#[inline(always)]
pub fn summary_mode() -> u8 {
    unsafe { core::ptr::read_volatile(&SUMMARY_MODE) }
}
#[inline(always)]
pub fn req_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.req[tp]) }
}
#[inline(always)]
pub fn user_data_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.user_data[tp]) }
}
#[inline(always)]
pub fn res_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.res[tp]) }
}
#[inline(always)]
pub fn cflags_offset(tp: usize) -> u32 {
    unsafe { core::ptr::read_volatile(&REQUEST_LAYOUT.cflags[tp]) }
}
#[inline(always)]
pub fn task_flags_offset() -> u32 {
    unsafe { core::ptr::read_volatile(&TASK_FLAGS_OFFSET) }
}
/// One field of TASK_FILTER. The struct read whole was 40 byte loads and
/// as many stack spills in every program run, the filters off or not.
#[inline(always)]
pub fn task_filter<T: Copy>(field: impl FnOnce(&TaskFilter) -> &T) -> T {
    unsafe { core::ptr::read_volatile(field(&TASK_FILTER)) }
}
/// `--comm`'s name as two words, compared with the task's in two
/// comparisons. The field is 8-aligned (checked below).
#[inline(always)]
pub fn task_filter_comm_words() -> [u64; 2] {
    let words = core::ptr::from_ref(&TASK_FILTER.comm).cast::<[u64; 2]>();
    unsafe { core::ptr::read_volatile(words) }
}
const _: () = assert!(core::mem::offset_of!(TaskFilter, comm).is_multiple_of(8));

/// One field of TASK_LAYOUT.
#[inline(always)]
pub fn task_offset(field: impl FnOnce(&TaskLayout) -> &u32) -> u32 {
    unsafe { core::ptr::read_volatile(field(&TASK_LAYOUT)) }
}
/// One field of OBJECT_LAYOUT, read without copying the whole struct.
#[inline(always)]
pub fn object_offset(field: impl FnOnce(&ObjectLayout) -> &u32) -> u32 {
    unsafe { core::ptr::read_volatile(field(&OBJECT_LAYOUT)) }
}
/// One field of tracepoint `tp`'s recipe.
#[inline(always)]
pub fn recipe(tp: usize, field: impl FnOnce(&RecordRecipe) -> &u32) -> u32 {
    unsafe { core::ptr::read_volatile(field(&RECIPE_LAYOUT.recipes[tp])) }
}
/// One of the recipes' shared BTF offsets.
#[inline(always)]
pub fn recipe_offset(field: impl FnOnce(&RecipeLayout) -> &u32) -> u32 {
    unsafe { core::ptr::read_volatile(field(&RECIPE_LAYOUT)) }
}
