//! uringtrace's kernel side: one module per hook family.
#![no_std]
#![no_main]

mod config;
mod emit;
mod issue;
mod kprobes;
mod maps;
mod process_filter;
mod request_objects;
mod requests;
mod requests_btf;
mod summary;
mod syscalls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never run.
    loop {}
}

// bpf_probe_read_user and friends are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
