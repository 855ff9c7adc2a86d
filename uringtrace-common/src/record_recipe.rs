//! How a tp_btf program rebuilds an io_uring tracepoint's record without
//! the kernel building it.
//!
//! A perf-event tracepoint program runs after the kernel's `perf_trace_*`
//! code has written the whole record (op_str string included) into a perf
//! buffer; that and the perf machinery around it cost about as much as the
//! engine's own work per request. A tp_btf program is called straight from
//! the tracepoint with its `TP_PROTO` arguments. It writes the same bytes at
//! the same offsets as the format file gives, so userspace decodes one
//! layout whatever the hook: the recipe says where each argument goes and,
//! for the prototypes that pass a request or a CQE, which of the object's
//! members (offsets from this kernel's BTF) fill which fields. Userspace
//! derives a recipe only for the prototype shapes it knows, checked against
//! the format file; any other tracepoint keeps the perf-event program.

use crate::request::TRACEPOINT_COUNT;

/// Most arguments a tracepoint this tracer rebuilds has (5.18's
/// io_uring_complete: ctx, req, user_data, res, cflags, extra1, extra2).
pub const MAX_ARGS: usize = 7;

/// No recipe: the perf-event program serves this tracepoint.
pub const RECIPE_NONE: u32 = 0;
/// Every field is one argument, in order (`__entry->x = x`).
pub const RECIPE_ARGS: u32 = 1;
/// Argument 0 is `struct io_kiocb *req`: ctx, user_data, opcode, flags
/// and sq_thread come from the request (6.0+); the other arguments as in
/// RECIPE_ARGS.
pub const RECIPE_REQ: u32 = 2;
/// `(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)`:
/// io_uring_complete since 6.10; user_data, res, cflags and the big CQE's
/// extra words from the CQE.
pub const RECIPE_CQE: u32 = 3;

/// `IORING_SETUP_SQPOLL`, `IORING_SETUP_CQE32` (uapi).
pub const SETUP_SQPOLL: u32 = 1 << 1;
pub const SETUP_CQE32: u32 = 1 << 11;
/// `IORING_CQE_F_32` (6.18's mixed-size CQ rings): this CQE is a big one.
/// Never set in a CQE before 6.18.
pub const CQE_F_32: u32 = 1 << 15;

/// One tracepoint's recipe. Offsets are into the record (format file
/// offsets, common header included); `OFFSET_ABSENT` leaves a field out.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RecordRecipe {
    /// RECIPE_*.
    pub kind: u32,
    /// The prototype's argument count (without `__data`): the program reads
    /// only these, the verifier refusing a read past the last.
    pub nargs: u32,
    /// Where argument i's low `arg_size[i]` bytes go.
    pub arg_dst: [u32; MAX_ARGS],
    pub arg_size: [u32; MAX_ARGS],
    /// RECIPE_REQ: the request's fields. RECIPE_CQE: ctx_dst and the
    /// CQE's fields.
    pub ctx_dst: u32,
    pub user_data_dst: u32,
    pub opcode_dst: u32,
    pub flags_dst: u32,
    /// 4 (before 6.3) or 8.
    pub flags_dst_size: u32,
    pub sq_thread_dst: u32,
    /// `&req->work` (io_uring_queue_async_work).
    pub work_dst: u32,
    pub res_dst: u32,
    pub cflags_dst: u32,
    pub extra1_dst: u32,
    pub extra2_dst: u32,
    pub _pad: u32,
}

impl RecordRecipe {
    pub const NONE: Self = {
        let a = crate::layout::OFFSET_ABSENT;
        Self {
            kind: RECIPE_NONE,
            nargs: 0,
            arg_dst: [a; MAX_ARGS],
            arg_size: [0; MAX_ARGS],
            ctx_dst: a,
            user_data_dst: a,
            opcode_dst: a,
            flags_dst: a,
            flags_dst_size: 0,
            sq_thread_dst: a,
            work_dst: a,
            res_dst: a,
            cflags_dst: a,
            extra1_dst: a,
            extra2_dst: a,
            _pad: 0,
        }
    };
}

/// Every tracepoint's recipe, and the kernel structures' members they read
/// (BTF offsets; `OFFSET_ABSENT` where no recipe needs them).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RecipeLayout {
    pub recipes: [RecordRecipe; TRACEPOINT_COUNT],
    pub kiocb_ctx: u32,
    pub kiocb_opcode: u32,
    pub kiocb_flags: u32,
    /// 4 or 8 (u64 since 6.10).
    pub kiocb_flags_size: u32,
    pub kiocb_user_data: u32,
    pub kiocb_work: u32,
    pub ctx_flags: u32,
    pub cqe_user_data: u32,
    pub cqe_res: u32,
    pub cqe_flags: u32,
    /// `big_cqe[0]`; `[1]` follows.
    pub cqe_big: u32,
    pub _pad: u32,
}

impl RecipeLayout {
    pub const OFF: Self = {
        let a = crate::layout::OFFSET_ABSENT;
        Self {
            recipes: [RecordRecipe::NONE; TRACEPOINT_COUNT],
            kiocb_ctx: a,
            kiocb_opcode: a,
            kiocb_flags: a,
            kiocb_flags_size: 0,
            kiocb_user_data: a,
            kiocb_work: a,
            ctx_flags: a,
            cqe_user_data: a,
            cqe_res: a,
            cqe_flags: a,
            cqe_big: a,
            _pad: 0,
        }
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for RecipeLayout {}
