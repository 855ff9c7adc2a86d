//! Recipes for the tp_btf request programs (`uringtrace_common::
//! record_recipe`): how each tracepoint's record is rebuilt from its
//! `TP_PROTO` arguments, derived from this kernel's BTF prototype and
//! checked against its format file. Only prototype shapes whose
//! `TP_fast_assign` is known are taken; any other tracepoint keeps its
//! perf-event program, which copies the record the kernel built.

use uringtrace_common::{
    layout::OFFSET_ABSENT,
    record_recipe::{MAX_ARGS, RECIPE_ARGS, RECIPE_CQE, RECIPE_REQ, RecipeLayout, RecordRecipe},
    request::{RAW_SMALL, REQUEST_TRACEPOINTS, TP_REQ_FAILED, TRACEPOINT_COUNT},
};

use super::layout::RequestFormats;
use crate::{btf::BtfTypes, tracefs::Field};

/// Each tracepoint's recipe, or why it has none (then the perf-event
/// program is used); `None` for tracepoints this kernel lacks.
pub struct Recipes {
    pub layout: RecipeLayout,
    pub why_not: [Option<String>; TRACEPOINT_COUNT],
}

impl Recipes {
    /// No recipe for any tracepoint, for `why`.
    pub fn none(why: &str) -> Self {
        Self {
            layout: RecipeLayout::OFF,
            why_not: std::array::from_fn(|_| Some(why.to_string())),
        }
    }
}

pub fn derive(btf: &BtfTypes, formats: &RequestFormats) -> Recipes {
    let mut layout = RecipeLayout::OFF;
    let member = |s: &str, path: &[&str]| btf.member(s, path);
    let off = |s: &str, path: &[&str]| member(s, path).map_or(OFFSET_ABSENT, |m| m.offset);
    layout.kiocb_ctx = off("io_kiocb", &["ctx"]);
    layout.kiocb_opcode = off("io_kiocb", &["opcode"]);
    if let Some(flags) = member("io_kiocb", &["flags"]).filter(|m| matches!(m.size, 4 | 8)) {
        layout.kiocb_flags = flags.offset;
        layout.kiocb_flags_size = flags.size;
    }
    // 5.18 moved user_data into the request's embedded CQE.
    layout.kiocb_user_data = member("io_kiocb", &["cqe", "user_data"])
        .or_else(|| member("io_kiocb", &["user_data"]))
        .map_or(OFFSET_ABSENT, |m| m.offset);
    layout.kiocb_work = off("io_kiocb", &["work"]);
    layout.ctx_flags = member("io_ring_ctx", &["flags"])
        .filter(|m| m.size == 4)
        .map_or(OFFSET_ABSENT, |m| m.offset);
    layout.cqe_user_data = off("io_uring_cqe", &["user_data"]);
    layout.cqe_res = off("io_uring_cqe", &["res"]);
    layout.cqe_flags = off("io_uring_cqe", &["flags"]);
    layout.cqe_big = off("io_uring_cqe", &["big_cqe"]);
    let mut why_not = [const { None }; TRACEPOINT_COUNT];
    for tp in &REQUEST_TRACEPOINTS {
        let Some(fields) = formats.get(tp) else {
            continue;
        };
        match recipe(btf, &layout, tp.index, fields.name, &fields.places) {
            Ok(r) => layout.recipes[tp.index] = r,
            Err(why) => why_not[tp.index] = Some(why),
        }
    }
    Recipes { layout, why_not }
}

fn recipe(
    btf: &BtfTypes,
    layout: &RecipeLayout,
    index: usize,
    tp: &str,
    fields: &[Field],
) -> Result<RecordRecipe, String> {
    if index == TP_REQ_FAILED {
        return Err("its record (the whole SQE) is read as the kernel builds it".into());
    }
    let args = btf
        .tracepoint_args(tp)
        .ok_or_else(|| format!("this kernel's BTF has no prototype of {tp}"))?;
    if args.len() > MAX_ARGS {
        return Err(format!("{} arguments", args.len()));
    }
    if let Some(f) = fields
        .iter()
        .find(|f| (f.offset + f.size) as usize > RAW_SMALL)
    {
        return Err(format!("field {} ends past the bytes copied", f.name));
    }
    let mut r = RecordRecipe::NONE;
    r.nargs = args.len() as u32;
    let set_arg = |r: &mut RecordRecipe, i: usize, f: &Field| {
        r.arg_dst[i] = f.offset;
        r.arg_size[i] = f.size;
    };
    // Every field one argument, in order.
    let values: Vec<&Field> = fields.iter().filter(|f| !f.data_loc).collect();
    if values.len() == fields.len()
        && args.len() == fields.len()
        && args.iter().zip(fields).all(|(a, f)| a.size == f.size)
    {
        r.kind = RECIPE_ARGS;
        for (i, f) in fields.iter().enumerate() {
            set_arg(&mut r, i, f);
        }
        return Ok(r);
    }
    let by_name = |name: &str| fields.iter().find(|f| f.name == name);
    // io_uring_complete since 6.10.
    if args.len() == 3
        && btf.tracepoint_arg(tp, "io_ring_ctx") == Some(0)
        && btf.tracepoint_arg(tp, "io_uring_cqe") == Some(2)
    {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let want = [
            "ctx",
            "req",
            "user_data",
            "res",
            "cflags",
            "extra1",
            "extra2",
        ];
        let sizes = [8, 8, 8, 4, 4, 8, 8];
        if names != want || fields.iter().zip(sizes).any(|(f, s)| f.size != s) {
            return Err(format!(
                "{tp}'s fields are not the ones of its (ctx, req, cqe) form"
            ));
        }
        require(&[
            ("io_ring_ctx.flags", layout.ctx_flags),
            ("io_uring_cqe.user_data", layout.cqe_user_data),
            ("io_uring_cqe.res", layout.cqe_res),
            ("io_uring_cqe.flags", layout.cqe_flags),
            ("io_uring_cqe.big_cqe", layout.cqe_big),
        ])?;
        r.kind = RECIPE_CQE;
        set_arg(&mut r, 0, &fields[0]);
        set_arg(&mut r, 1, &fields[1]);
        r.user_data_dst = fields[2].offset;
        r.res_dst = fields[3].offset;
        r.cflags_dst = fields[4].offset;
        r.extra1_dst = fields[5].offset;
        r.extra2_dst = fields[6].offset;
        return Ok(r);
    }
    // The request as argument 0 (6.0+): the request's own fields by name,
    // the other arguments to the remaining fields in order.
    if btf.tracepoint_arg(tp, "io_kiocb") == Some(0) {
        let req = by_name("req").ok_or_else(|| format!("{tp} has no req field"))?;
        require(&[
            ("io_kiocb.ctx", layout.kiocb_ctx),
            ("io_kiocb.opcode", layout.kiocb_opcode),
            ("io_kiocb.flags", layout.kiocb_flags),
            ("io_kiocb.cqe.user_data", layout.kiocb_user_data),
        ])?;
        r.kind = RECIPE_REQ;
        set_arg(&mut r, 0, req);
        let mut rest = Vec::new();
        for f in fields {
            match (f.name.as_str(), f.size) {
                ("req", 8) => {}
                ("ctx", 8) => r.ctx_dst = f.offset,
                ("user_data" | "data", 8) => r.user_data_dst = f.offset,
                ("opcode", 1) => r.opcode_dst = f.offset,
                ("flags", 4 | 8) => {
                    r.flags_dst = f.offset;
                    r.flags_dst_size = f.size;
                }
                ("sq_thread", 1) if layout.ctx_flags != OFFSET_ABSENT => r.sq_thread_dst = f.offset,
                ("work", 8) if layout.kiocb_work != OFFSET_ABSENT => r.work_dst = f.offset,
                // The opcode's name: userspace names opcodes itself.
                ("op_str", _) if f.data_loc => {}
                _ => rest.push(f),
            }
        }
        if rest.len() != args.len() - 1
            || rest.iter().zip(&args[1..]).any(|(f, a)| f.size != a.size)
        {
            let names: Vec<&str> = rest.iter().map(|f| f.name.as_str()).collect();
            return Err(format!(
                "{tp}'s fields [{}] do not match its arguments after the request",
                names.join(", ")
            ));
        }
        for (i, f) in rest.into_iter().enumerate() {
            set_arg(&mut r, i + 1, f);
        }
        return Ok(r);
    }
    Err(format!(
        "{tp}'s prototype is not one of the shapes whose record uringtrace rebuilds"
    ))
}

/// Every BTF offset a recipe form reads, or the first this kernel lacks.
fn require(offsets: &[(&str, u32)]) -> Result<(), String> {
    match offsets.iter().find(|(_, o)| *o == OFFSET_ABSENT) {
        Some((name, _)) => Err(format!("this kernel's BTF has no {name}")),
        None => Ok(()),
    }
}
