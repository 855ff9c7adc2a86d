//! What a request touches (paths, socket addresses, fds, offsets): the BTF
//! offsets the object program needs, and its records decoded.

use std::net::{Ipv4Addr, Ipv6Addr};

use uringtrace_common::{
    layout::OFFSET_ABSENT,
    request_object::{
        LEN_UNKNOWN, OBJ_CREDS, OBJ_CREDS_READ, OBJ_FIXED_FILE, OBJ_PATH_TRUNCATED,
        OBJ_PATH2_TRUNCATED, ObjectLayout, ObjectRecord, SHAPE_FD, SHAPE_NONE, SHAPE_OPEN,
        SHAPE_PATH, SHAPE_RW, SHAPE_SEND_RECV, SHAPE_SOCKADDR, SHAPE_TWO_PATHS,
    },
};

use crate::{btf::BtfTypes, tracefs::Field};

/// What a session can say about what requests touch and whose credentials
/// they run under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectSupport {
    /// Why request objects are not decoded in this session, if they are not.
    pub missing: Option<String>,
    /// REQ_F_CREDS as a mask of the submission's request flags, when this
    /// kernel's BTF names the bit; without it, nobody can tell which
    /// accepted requests run under a personality.
    pub creds_mask: Option<u64>,
    /// Why the credentials of such requests cannot be read, if they cannot.
    pub creds_missing: Option<String>,
}

impl ObjectSupport {
    /// Objects and credentials as `layout` (from this kernel's BTF) allows,
    /// the program that reads them being in place.
    pub fn of_layout(l: &ObjectLayout) -> Self {
        let creds_mask = (l.creds_bit != OFFSET_ABSENT).then(|| 1u64 << l.creds_bit);
        let readable = [
            l.req_creds,
            l.cred_uid,
            l.cred_gid,
            l.cred_euid,
            l.cred_egid,
        ]
        .iter()
        .all(|&o| o != OFFSET_ABSENT);
        let creds_missing = if creds_mask.is_none() {
            Some(
                "this kernel's BTF has no REQ_F_CREDS_BIT: requests run under a personality \
                 cannot be told apart"
                    .to_string(),
            )
        } else if !readable {
            Some("this kernel's BTF lacks io_kiocb.creds or struct cred's ids".to_string())
        } else {
            None
        };
        Self {
            missing: None,
            creds_mask,
            creds_missing,
        }
    }

    /// Nothing is read in this session, for `why`.
    pub fn unavailable(why: String) -> Self {
        Self {
            missing: Some(why.clone()),
            creds_mask: None,
            creds_missing: Some(why),
        }
    }
}

/// Which argument of the submit tracepoint is the request. 5.15's io_uring
/// (Debian's 5.10 carries it) declares `io_uring_submit_sqe(void *ctx,
/// void *req, ...)`: BTF then has no `struct io_kiocb *` to find, so the
/// `void *` is taken where the format file (`fields`, record order) has
/// `req`. The two orders agree on those kernels (TP_STRUCT__entry lists
/// TP_PROTO's arguments one for one); that is checked, not assumed: same
/// count, same size one for one, and a `void *` at that place.
fn request_arg(btf: &BtfTypes, tp: &str, fields: &[Field]) -> Result<usize, String> {
    if let Some(i) = btf.tracepoint_arg(tp, "io_kiocb") {
        return Ok(i);
    }
    let no = |why: &str| format!("no struct io_kiocb * argument in {tp}'s BTF, and {why}");
    let args = btf
        .tracepoint_args(tp)
        .ok_or_else(|| no("no btf_trace prototype"))?;
    let pos = fields
        .iter()
        .position(|f| f.name == "req")
        .ok_or_else(|| no("no req field in its format"))?;
    let matches =
        args.len() == fields.len() && args.iter().zip(fields).all(|(a, f)| a.size == f.size);
    if !matches {
        return Err(no(
            "its prototype's arguments do not match its format's fields one for one",
        ));
    }
    if !args[pos].void_ptr {
        return Err(no("the argument at req's place is not a void *"));
    }
    Ok(pos)
}

/// The offsets of this kernel, or why the objects cannot be decoded here.
/// `fields`: the submit tracepoint's format fields, in record order.
pub fn layout_from_btf(
    btf: &BtfTypes,
    submit_tracepoint: &str,
    fields: &[Field],
) -> Result<ObjectLayout, String> {
    // Before 6.0 the per-opcode structs are named members of io_kiocb's
    // leading union (`req->open`); since, io_kiocb_to_cmd() puts them at
    // the start. Where io_kiocb names the member, its offset is added
    // rather than taken to be 0.
    let base = |kiocb_member: &str| {
        btf.member("io_kiocb", &[kiocb_member])
            .map_or(0, |m| m.offset)
    };
    let op_member = |strukt: &str, kiocb_member: &str, path: &[&str]| {
        btf.member(strukt, path)
            .map(|m| base(kiocb_member) + m.offset)
    };
    let off = |strukt: &str, path: &[&str]| {
        let kiocb_member = match strukt {
            "io_open" => "open",
            "io_unlink" => "unlink",
            "io_mkdir" => "mkdir",
            "io_rename" => "rename",
            "io_link" | "io_hardlink" => "hardlink",
            "io_symlink" => "symlink",
            "io_statx" => "statx",
            "io_connect" => "connect",
            "io_rw" => "rw",
            "io_sr_msg" => "sr_msg",
            _ => return btf.member(strukt, path).map_or(OFFSET_ABSENT, |m| m.offset),
        };
        op_member(strukt, kiocb_member, path).unwrap_or(OFFSET_ABSENT)
    };
    let req_arg = request_arg(btf, submit_tracepoint, fields)?;
    let mut l = ObjectLayout::OFF;
    l.req_arg = req_arg as u32;
    l.req_ctx = off("io_kiocb", &["ctx"]);
    l.req_opcode = off("io_kiocb", &["opcode"]);
    l.req_flags = off("io_kiocb", &["flags"]);
    l.req_fd = off("io_kiocb", &["cqe", "fd"]);
    if l.req_fd == OFFSET_ABSENT {
        // 5.15's io_kiocb keeps no copy of the SQE's fd: the program reads
        // it from the SQE the kernel took last (`io_get_sqe()` runs just
        // before `io_submit_sqe()`, which fires the tracepoint).
        l.ctx_sq_array = off("io_ring_ctx", &["sq_array"]);
        l.ctx_sq_sqes = off("io_ring_ctx", &["sq_sqes"]);
        l.ctx_cached_sq_head = off("io_ring_ctx", &["cached_sq_head"]);
        l.ctx_sq_entries = off("io_ring_ctx", &["sq_entries"]);
        l.sqe_fd = off("io_uring_sqe", &["fd"]);
        l.sqe_size = btf.struct_size("io_uring_sqe");
    }
    l.filename_name = off("filename", &["name"]);
    l.open_dfd = off("io_open", &["dfd"]);
    l.open_filename = off("io_open", &["filename"]);
    let how = op_member("io_open", "open", &["how"]);
    let how_flags = btf.member("open_how", &["flags"]);
    let how_mode = btf.member("open_how", &["mode"]);
    if let (Some(how), Some(f), Some(m)) = (how, how_flags, how_mode) {
        l.open_how_flags = how + f.offset;
        l.open_how_mode = how + m.offset;
    }
    l.unlink_dfd = off("io_unlink", &["dfd"]);
    l.unlink_flags = off("io_unlink", &["flags"]);
    l.unlink_filename = off("io_unlink", &["filename"]);
    l.mkdir_dfd = off("io_mkdir", &["dfd"]);
    l.mkdir_mode = off("io_mkdir", &["mode"]);
    l.mkdir_filename = off("io_mkdir", &["filename"]);
    l.rename_old_dfd = off("io_rename", &["old_dfd"]);
    l.rename_new_dfd = off("io_rename", &["new_dfd"]);
    l.rename_oldpath = off("io_rename", &["oldpath"]);
    l.rename_newpath = off("io_rename", &["newpath"]);
    l.rename_flags = off("io_rename", &["flags"]);
    // LINKAT's struct is io_link since 6.0 (shared with SYMLINKAT), 5.15's
    // io_hardlink before, with the same members.
    let shared_link = btf.struct_size("io_link") != 0;
    let link = if shared_link {
        "io_link"
    } else {
        "io_hardlink"
    };
    l.link_old_dfd = off(link, &["old_dfd"]);
    l.link_new_dfd = off(link, &["new_dfd"]);
    l.link_oldpath = off(link, &["oldpath"]);
    l.link_newpath = off(link, &["newpath"]);
    l.link_flags = off(link, &["flags"]);
    let symlink = if shared_link { "io_link" } else { "io_symlink" };
    l.symlink_new_dfd = off(symlink, &["new_dfd"]);
    l.symlink_oldpath = off(symlink, &["oldpath"]);
    l.symlink_newpath = off(symlink, &["newpath"]);
    l.statx_dfd = off("io_statx", &["dfd"]);
    l.statx_flags = off("io_statx", &["flags"]);
    l.statx_filename = off("io_statx", &["filename"]);
    if l.statx_filename != OFFSET_ABSENT && btf.member_points_to_int("io_statx", &["filename"]) {
        // 5.15 keeps the caller's pointer and reads the path at issue.
        l.statx_user_path = 1;
    }
    l.connect_addr = off("io_connect", &["addr"]);
    l.connect_addr_len = off("io_connect", &["addr_len"]);
    if let (Some(kiocb), Some(pos)) = (
        op_member("io_rw", "rw", &["kiocb"]),
        btf.member("kiocb", &["ki_pos"]),
    ) {
        l.rw_pos = kiocb + pos.offset;
    }
    // u32 since 6.0; u64 in 5.15's io_rw, size_t in its io_sr_msg: the
    // program reads the low 32 bits (little-endian), all of any length
    // the prep stores (it comes from the SQE's u32 `len`).
    l.rw_len = off("io_rw", &["len"]);
    l.sr_len = off("io_sr_msg", &["len"]);
    let creds = creds_layout(btf);
    l.req_flags_size = creds.req_flags_size;
    l.creds_bit = creds.creds_bit;
    l.req_creds = creds.req_creds;
    l.cred_uid = creds.cred_uid;
    l.cred_gid = creds.cred_gid;
    l.cred_euid = creds.cred_euid;
    l.cred_egid = creds.cred_egid;
    if l.req_opcode == OFFSET_ABSENT || l.req_ctx == OFFSET_ABSENT {
        return Err("struct io_kiocb has no opcode or ctx member in BTF".into());
    }
    l.enabled = 1;
    Ok(l)
}

/// The part of the layout that reads a request's personality credentials
/// (the rest left OFF).
pub fn creds_layout(btf: &BtfTypes) -> ObjectLayout {
    let off =
        |strukt: &str, path: &[&str]| btf.member(strukt, path).map_or(OFFSET_ABSENT, |m| m.offset);
    let mut l = ObjectLayout::OFF;
    // The bit's number moves between kernels (flags are added before it),
    // so it is taken from this kernel's enum, never assumed.
    l.req_flags_size = btf.member("io_kiocb", &["flags"]).map_or(0, |m| m.size);
    if let Some(bit) = btf
        .enum_value("REQ_F_CREDS_BIT")
        .filter(|&b| b < u64::from(l.req_flags_size) * 8)
    {
        l.creds_bit = bit as u32;
    }
    l.req_creds = off("io_kiocb", &["creds"]);
    l.cred_uid = off("cred", &["uid", "val"]);
    l.cred_gid = off("cred", &["gid", "val"]);
    l.cred_euid = off("cred", &["euid", "val"]);
    l.cred_egid = off("cred", &["egid", "val"]);
    l
}

/// A string the program read: its bytes (without the NUL), or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Read {
        bytes: Vec<u8>,
        truncated: bool,
    },
    /// The read faulted (errno).
    Fault(i32),
}

fn text(len: i32, buf: &[u8], truncated: bool) -> Option<Text> {
    match len {
        LEN_UNKNOWN => None,
        n if n < 0 => Some(Text::Fault(-n)),
        n => {
            let end = (n as usize).min(buf.len());
            let bytes = &buf[..end];
            let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
            Some(Text::Read {
                bytes: bytes.to_vec(),
                truncated,
            })
        }
    }
}

/// A socket address, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// `"ip:port"`, `"[ipv6]:port"` or a unix path (`@name` when abstract).
    Known {
        family: &'static str,
        addr: String,
    },
    Other {
        family: u16,
    },
    Fault(i32),
}

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

fn sockaddr(len: i32, buf: &[u8]) -> Option<SockAddr> {
    match len {
        LEN_UNKNOWN => return None,
        n if n < 0 => return Some(SockAddr::Fault(-n)),
        _ => {}
    }
    let b = &buf[..(len as usize).min(buf.len())];
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = || b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    Some(match family {
        AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            SockAddr::Known {
                family: "inet",
                addr: format!("{}:{}", Ipv4Addr::from(ip), port()?),
            }
        }
        AF_INET6 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            SockAddr::Known {
                family: "inet6",
                addr: format!("[{}]:{}", Ipv6Addr::from(ip), port()?),
            }
        }
        AF_UNIX => {
            let path = b.get(2..).unwrap_or(&[]);
            let addr = match path.first() {
                // Abstract namespace: a leading NUL, the rest is the name.
                Some(0) => format!("@{}", String::from_utf8_lossy(&path[1..])),
                _ => {
                    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                    String::from_utf8_lossy(&path[..end]).into_owned()
                }
            };
            SockAddr::Known {
                family: "unix",
                addr,
            }
        }
        other => SockAddr::Other { family: other },
    })
}

/// The credentials a request runs under (kernel-global ids, as `uid`/`gid`
/// of every record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

/// What an object record says of the request's credentials: `None` when
/// it runs under its submitter's own, else the ids or why they are unknown.
pub fn creds_of_record(r: &ObjectRecord) -> Option<Result<Creds, &'static str>> {
    if r.flags & OBJ_CREDS == 0 {
        return None;
    }
    Some(if r.flags & OBJ_CREDS_READ != 0 {
        Ok(Creds {
            uid: r.creds_uid,
            gid: r.creds_gid,
            euid: r.creds_euid,
            egid: r.creds_egid,
        })
    } else {
        Err("reading the request's struct cred failed")
    })
}

/// What one request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestObject {
    pub opcode: u8,
    /// The SQE's fd, or its index in the registered files with
    /// `fixed_file`; `None` where the kernel does not keep it.
    pub fd: Option<i32>,
    pub fixed_file: bool,
    /// dirfds of the paths (AT_FDCWD is -100).
    pub dfd: Option<i32>,
    pub dfd2: Option<i32>,
    pub path: Option<Text>,
    /// The second path: rename's and link's new path, symlink's link path.
    pub path2: Option<Text>,
    pub addr: Option<SockAddr>,
    /// open flags; unlink/rename/link/statx flags.
    pub op_flags: Option<u64>,
    pub mode: Option<u64>,
    pub len: Option<u64>,
    pub off: Option<u64>,
}

impl RequestObject {
    /// `None` for a record written only for the request's credentials.
    pub fn of_record(r: &ObjectRecord) -> Option<Self> {
        (r.shape != SHAPE_NONE).then(|| Self::from_record(r))
    }

    pub fn from_record(r: &ObjectRecord) -> Self {
        let some_fd = |fd: i32| (fd != -1).then_some(fd);
        let symlink = r.opcode == uringtrace_common::request_object::op::SYMLINKAT;
        let has_flags = matches!(r.shape, SHAPE_OPEN | SHAPE_PATH | SHAPE_TWO_PATHS) && !symlink;
        // Only requests on a file keep the SQE's fd (io_kiocb.cqe.fd);
        // for the others that word means nothing.
        let has_fd = matches!(
            r.shape,
            SHAPE_RW | SHAPE_SEND_RECV | SHAPE_SOCKADDR | SHAPE_FD
        );
        Self {
            opcode: r.opcode,
            fd: if has_fd { some_fd(r.fd) } else { None },
            fixed_file: has_fd && r.flags & OBJ_FIXED_FILE != 0,
            // SYMLINKAT's first path is the link's text, not a file: no
            // dirfd, no flags (the kernel leaves those words unset).
            dfd: (matches!(r.shape, SHAPE_OPEN | SHAPE_PATH | SHAPE_TWO_PATHS) && !symlink)
                .then_some(r.dfd),
            dfd2: (r.shape == SHAPE_TWO_PATHS).then_some(r.dfd2),
            path: text(r.path_len, &r.path, r.flags & OBJ_PATH_TRUNCATED != 0),
            path2: text(r.path2_len, &r.path2, r.flags & OBJ_PATH2_TRUNCATED != 0),
            addr: (r.shape == SHAPE_SOCKADDR)
                .then(|| sockaddr(r.addr_len, &r.addr))
                .flatten(),
            op_flags: has_flags.then_some(r.op_flags),
            mode: matches!(r.shape, SHAPE_OPEN | SHAPE_PATH).then_some(r.mode),
            len: matches!(r.shape, SHAPE_RW | SHAPE_SEND_RECV).then_some(r.len),
            off: (r.shape == SHAPE_RW).then_some(r.off),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses() {
        let mut b = [0u8; 112];
        b[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        b[2..4].copy_from_slice(&8080u16.to_be_bytes());
        b[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            sockaddr(16, &b),
            Some(SockAddr::Known {
                family: "inet",
                addr: "127.0.0.1:8080".into()
            })
        );
        let mut b6 = [0u8; 112];
        b6[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        b6[2..4].copy_from_slice(&443u16.to_be_bytes());
        b6[23] = 1;
        assert_eq!(
            sockaddr(28, &b6),
            Some(SockAddr::Known {
                family: "inet6",
                addr: "[::1]:443".into()
            })
        );
        let mut u = [0u8; 112];
        u[..2].copy_from_slice(&AF_UNIX.to_ne_bytes());
        u[2..15].copy_from_slice(b"/run/x.sock\0\0");
        assert_eq!(
            sockaddr(15, &u),
            Some(SockAddr::Known {
                family: "unix",
                addr: "/run/x.sock".into()
            })
        );
        u[2] = 0;
        u[3..6].copy_from_slice(b"abs");
        assert_eq!(
            sockaddr(6, &u),
            Some(SockAddr::Known {
                family: "unix",
                addr: "@abs".into()
            })
        );
        assert_eq!(sockaddr(-14, &u), Some(SockAddr::Fault(14)));
        assert_eq!(sockaddr(LEN_UNKNOWN, &u), None);
    }

    #[test]
    fn paths_keep_their_bytes_and_truncation() {
        let mut buf = [0u8; 256];
        buf[..5].copy_from_slice(b"/tmp\0");
        assert_eq!(
            text(5, &buf, false),
            Some(Text::Read {
                bytes: b"/tmp".to_vec(),
                truncated: false
            })
        );
        assert_eq!(text(-14, &buf, false), Some(Text::Fault(14)));
    }

    /// BTF with 5.15's untyped submit prototype,
    /// `btf_trace_io_uring_submit_sqe(void *__data, void *ctx, void *req,
    /// u8 opcode)`, laid out by hand.
    fn untyped_submit_btf() -> BtfTypes {
        let mut strings = b"\0u8\0btf_trace_io_uring_submit_sqe\0".to_vec();
        let mut types: Vec<u32> = Vec::new();
        // 1: INT u8, size 1, 8 bits.
        types.extend([1, 1 << 24, 1, 8]);
        // 2: PTR to void.
        types.extend([0, 2 << 24, 0]);
        // 3: FUNC_PROTO returning void, 4 unnamed params.
        types.extend([0, (13 << 24) | 4, 0, 0, 2, 0, 2, 0, 2, 0, 1]);
        // 4: PTR to 3; 5: TYPEDEF to 4.
        types.extend([0, 2 << 24, 3]);
        types.extend([4, 8 << 24, 4]);
        let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut data = Vec::new();
        data.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
        data.extend_from_slice(&[1, 0]);
        let type_len = type_bytes.len() as u32;
        for field in [24, 0, type_len, type_len, strings.len() as u32] {
            data.extend_from_slice(&u32::to_ne_bytes(field));
        }
        data.extend_from_slice(&type_bytes);
        data.append(&mut strings);
        BtfTypes::parse(data).unwrap()
    }

    #[test]
    fn untyped_request_argument_is_matched_to_the_format() {
        let btf = untyped_submit_btf();
        let tp = "io_uring_submit_sqe";
        let entry = |fields: &[(&str, u32)]| -> Vec<Field> {
            fields
                .iter()
                .map(|&(name, size)| Field {
                    name: name.to_string(),
                    offset: 0,
                    size,
                    signed: false,
                    data_loc: false,
                })
                .collect()
        };
        let good = entry(&[("ctx", 8), ("req", 8), ("opcode", 1)]);
        assert_eq!(request_arg(&btf, tp, &good), Ok(1));
        // The format disagrees with the prototype: nothing is guessed.
        for bad in [
            entry(&[("ctx", 8), ("req", 8), ("opcode", 4)]),
            entry(&[("ctx", 8), ("req", 8)]),
            entry(&[("ctx", 8), ("opcode", 1), ("req", 8)]),
            entry(&[("ctx", 8), ("request", 8), ("opcode", 1)]),
        ] {
            assert!(request_arg(&btf, tp, &bad).is_err(), "{bad:?}");
        }
        // Where the request is `void *` at req's place, the layout still
        // needs io_kiocb in BTF.
        let err = layout_from_btf(&btf, tp, &good).unwrap_err();
        assert!(err.contains("io_kiocb"), "{err}");
    }

    /// This kernel's BTF gives every offset the program reads for opens.
    #[test]
    fn layout_of_this_kernel() {
        let Ok(btf) = BtfTypes::read(std::path::Path::new(crate::btf::VMLINUX_BTF)) else {
            crate::test_skip::skip("layout_of_this_kernel", "no readable vmlinux BTF");
            return;
        };
        let tp = ["io_uring_submit_req", "io_uring_submit_sqe"]
            .into_iter()
            .find(|tp| btf.tracepoint_arg(tp, "io_kiocb").is_some())
            .expect("a submit tracepoint in BTF");
        let l = layout_from_btf(&btf, tp, &[]).unwrap();
        assert_eq!(ObjectSupport::of_layout(&l).creds_missing, None);
        for (name, v) in [
            ("creds_bit", l.creds_bit),
            ("req_creds", l.req_creds),
            ("cred_euid", l.cred_euid),
            ("open_filename", l.open_filename),
            ("filename_name", l.filename_name),
            ("open_how_flags", l.open_how_flags),
            ("connect_addr", l.connect_addr),
            ("rw_len", l.rw_len),
        ] {
            assert_ne!(v, OFFSET_ABSENT, "{name}");
        }
    }
}
