//! The `io_uring:*` tracepoints as tp_btf programs: called straight from
//! the tracepoint with its arguments, where a perf-event program waits for
//! the kernel to build the record (op_str string and all) in a perf buffer
//! first. Each program rebuilds the record's bytes at the format file's
//! offsets from the arguments and, through BTF-typed pointers, from the
//! request or CQE they point to (`uringtrace_common::record_recipe`), then
//! filters and emits it like the perf-event programs, so userspace decodes
//! one layout whatever the hook. Offsets are load-time constants, which the
//! verifier knows (read-only, frozen globals): every read below is at a
//! constant offset, and the arguments past the prototype's last are never
//! read on the paths it walks.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use uringtrace_common::{
    layout::OFFSET_ABSENT,
    record_recipe::{CQE_F_32, MAX_ARGS, RECIPE_CQE, RECIPE_REQ, SETUP_CQE32, SETUP_SQPOLL},
    request::{RAW_SMALL, TP_SUBMIT},
};

use crate::{
    config::{self, recipe_offset as at},
    emit::{load, zero, zero_words_in},
    request_objects::object_in_submit,
    requests::{CREATE, RawRecord, emit, try_create},
};

/// A rebuilt record, in words so that every field is written with one
/// store (a kernel pointer split into bytes would be pointer arithmetic the
/// verifier refuses) and zeroed with eight stores rather than a call to a
/// byte-wise memset.
pub struct Rebuilt {
    raw: [u64; RAW_SMALL / 8],
}

impl Rebuilt {
    /// A zeroed record in `slot`, the caller's stack (see `zero_words_in`).
    #[inline(always)]
    fn zeroed_in(slot: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        zero_words_in(slot.as_mut_ptr());
        unsafe { slot.assume_init_mut() }
    }

    #[inline(always)]
    fn put(&mut self, dst: u32, size: u32, v: u64) {
        if dst == OFFSET_ABSENT {
            return;
        }
        let d = dst as usize;
        let p = self.raw.as_mut_ptr().cast::<u8>();
        unsafe {
            match size {
                1 if d < RAW_SMALL => *p.add(d) = v as u8,
                2 if d + 2 <= RAW_SMALL => (p.add(d) as *mut u16).write(v as u16),
                4 if d + 4 <= RAW_SMALL => (p.add(d) as *mut u32).write(v as u32),
                8 if d + 8 <= RAW_SMALL => (p.add(d) as *mut u64).write(v),
                _ => {}
            }
        }
    }

    #[inline(always)]
    fn get<T: Copy>(&self, offset: u32) -> Option<T> {
        let d = offset as usize;
        if offset == OFFSET_ABSENT || d + size_of::<T>() > RAW_SMALL {
            return None;
        }
        Some(unsafe { (self.raw.as_ptr().cast::<u8>().add(d) as *const T).read() })
    }
}

impl RawRecord for Rebuilt {
    #[inline(always)]
    fn u8_at(&self, offset: u32) -> Option<u8> {
        self.get(offset)
    }
    #[inline(always)]
    fn u32_at(&self, offset: u32) -> Option<u32> {
        self.get(offset)
    }
    #[inline(always)]
    fn u64_at(&self, offset: u32) -> Option<u64> {
        self.get(offset)
    }
    #[inline(always)]
    fn copy_into<const N: usize>(&self, dst: &mut [u8; N]) -> bool {
        if N != RAW_SMALL {
            return false;
        }
        // A word at a time, said outright: as a memcpy, LLVM copies bytes
        // wherever it cannot prove the ring-buffer entry 8-byte aligned,
        // and a byte read of a register spilled to the stack is refused by
        // the verifier. `dst` is 8-aligned (TracepointRecord's raw).
        let dst = dst.as_mut_ptr().cast::<u64>();
        for (i, word) in self.raw.iter().enumerate() {
            unsafe { dst.add(i).write_volatile(*word) };
        }
        true
    }
}

#[inline(always)]
fn rebuild<'a>(
    ctx: &BtfTracePointContext,
    tp: usize,
    slot: &'a mut core::mem::MaybeUninit<Rebuilt>,
) -> &'a Rebuilt {
    let r = Rebuilt::zeroed_in(slot);
    let nargs = config::recipe(tp, |r| &r.nargs) as usize;
    let mut args = [0u64; MAX_ARGS];
    // See Rebuilt::zeroed_in.
    for a in args.iter_mut() {
        zero(a);
    }
    // One constant context offset per read, each under its own test: a
    // read at a computed offset is refused ("dereference of modified ctx
    // ptr"), and so is one past the prototype's last argument.
    macro_rules! read_args {
        ($($i:literal)+) => {$(
            if nargs > $i {
                args[$i] = ctx.arg($i);
            }
        )+};
    }
    read_args!(0 1 2 3 4 5 6);
    // Under the same test as the read: the recipe's entries for arguments
    // the prototype lacks are never loaded.
    macro_rules! put_args {
        ($($i:literal)+) => {$(
            if nargs > $i {
                let dst = config::recipe(tp, |r| &r.arg_dst[$i]);
                if dst != OFFSET_ABSENT {
                    r.put(dst, config::recipe(tp, |r| &r.arg_size[$i]), args[$i]);
                }
            }
        )+};
    }
    put_args!(0 1 2 3 4 5 6);
    match config::recipe(tp, |r| &r.kind) {
        RECIPE_REQ => {
            let req = args[0];
            let ring: u64 = load(req, at(|l| &l.kiocb_ctx));
            r.put(config::recipe(tp, |r| &r.ctx_dst), 8, ring);
            let user_data: u64 = load(req, at(|l| &l.kiocb_user_data));
            r.put(config::recipe(tp, |r| &r.user_data_dst), 8, user_data);
            let opcode: u8 = load(req, at(|l| &l.kiocb_opcode));
            r.put(config::recipe(tp, |r| &r.opcode_dst), 1, u64::from(opcode));
            let flags_dst = config::recipe(tp, |r| &r.flags_dst);
            if flags_dst != OFFSET_ABSENT {
                let flags = if at(|l| &l.kiocb_flags_size) == 8 {
                    load::<u64>(req, at(|l| &l.kiocb_flags))
                } else {
                    u64::from(load::<u32>(req, at(|l| &l.kiocb_flags)))
                };
                r.put(flags_dst, config::recipe(tp, |r| &r.flags_dst_size), flags);
            }
            let sq_thread_dst = config::recipe(tp, |r| &r.sq_thread_dst);
            if sq_thread_dst != OFFSET_ABSENT {
                let setup: u32 = load(ring, at(|l| &l.ctx_flags));
                r.put(sq_thread_dst, 1, u64::from(setup & SETUP_SQPOLL != 0));
            }
            let work = at(|l| &l.kiocb_work);
            if work != OFFSET_ABSENT {
                r.put(
                    config::recipe(tp, |r| &r.work_dst),
                    8,
                    req + u64::from(work),
                );
            }
        }
        RECIPE_CQE => {
            let (ring, cqe) = (args[0], args[2]);
            let user_data: u64 = load(cqe, at(|l| &l.cqe_user_data));
            r.put(config::recipe(tp, |r| &r.user_data_dst), 8, user_data);
            let res: u32 = load(cqe, at(|l| &l.cqe_res));
            r.put(config::recipe(tp, |r| &r.res_dst), 4, u64::from(res));
            let cflags: u32 = load(cqe, at(|l| &l.cqe_flags));
            r.put(config::recipe(tp, |r| &r.cflags_dst), 4, u64::from(cflags));
            let big = at(|l| &l.cqe_big);
            if big != OFFSET_ABSENT {
                // As the kernel does: the extra words only of a big CQE
                // (a CQE32 ring, or one flagged 32 in a mixed ring).
                let setup: u32 = load(ring, at(|l| &l.ctx_flags));
                if setup & SETUP_CQE32 != 0 || cflags & CQE_F_32 != 0 {
                    // A flexible array past the struct's BTF size: read by
                    // helper, and only for big CQEs.
                    let extra =
                        unsafe { bpf_probe_read_kernel((cqe + u64::from(big)) as *const [u64; 2]) }
                            .unwrap_or([0; 2]);
                    r.put(config::recipe(tp, |r| &r.extra1_dst), 8, extra[0]);
                    r.put(config::recipe(tp, |r| &r.extra2_dst), 8, extra[1]);
                }
            }
        }
        _ => {}
    }
    r
}

/// io_uring_create keeps the process filter's ring table too (see
/// requests::try_create).
#[btf_tracepoint(function = "io_uring_create")]
pub fn io_uring_create_btf(ctx: BtfTracePointContext) -> i32 {
    let mut slot = core::mem::MaybeUninit::uninit();
    let _ = try_create(rebuild(&ctx, CREATE, &mut slot));
    0
}

/// The submit tracepoint, which also writes the request's object record
/// first when userspace folded the object program in (only where the
/// request is the first argument, typed).
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn io_uring_submit_btf(ctx: BtfTracePointContext) -> i32 {
    let mut slot = core::mem::MaybeUninit::uninit();
    let record = rebuild(&ctx, TP_SUBMIT, &mut slot);
    object_in_submit(ctx.arg(0));
    let _ = emit::<_, RAW_SMALL>(record, TP_SUBMIT);
    0
}

macro_rules! request_btf_program {
    ($($name:ident $tp:literal $index:literal;)+) => {$(
        #[btf_tracepoint(function = $tp)]
        pub fn $name(ctx: BtfTracePointContext) -> i32 {
            let mut slot = core::mem::MaybeUninit::uninit();
            let _ = emit::<_, RAW_SMALL>(rebuild(&ctx, $index, &mut slot), $index);
            0
        }
    )+};
}

// Indexes as in uringtrace_common::request::REQUEST_TRACEPOINTS; the
// tracepoint named is only a default (userspace loads each program against
// the name this kernel has). io_uring_req_failed (RAW_LARGE, its fields
// from the SQE) stays a perf-event program.
request_btf_program! {
    io_uring_register_btf "io_uring_register" 1;
    io_uring_complete_btf "io_uring_complete" 3;
    io_uring_cqe_overflow_btf "io_uring_cqe_overflow" 5;
    io_uring_queue_async_work_btf "io_uring_queue_async_work" 6;
    io_uring_poll_arm_btf "io_uring_poll_arm" 7;
    io_uring_task_add_btf "io_uring_task_add" 8;
    io_uring_defer_btf "io_uring_defer" 9;
    io_uring_link_btf "io_uring_link" 10;
    io_uring_fail_link_btf "io_uring_fail_link" 11;
    io_uring_cqring_wait_btf "io_uring_cqring_wait" 12;
    io_uring_task_work_run_btf "io_uring_task_work_run" 13;
    io_uring_local_work_run_btf "io_uring_local_work_run" 14;
    io_uring_short_write_btf "io_uring_short_write" 15;
    io_uring_file_get_btf "io_uring_file_get" 16;
}
