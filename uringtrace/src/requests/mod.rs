//! Requests: the `io_uring:*` tracepoint records, decoded with this
//! kernel's layouts ([`layout`]), joined into requests ([`tracker`]) and
//! turned into [`event::RequestEvent`]s.

pub mod event;
pub mod layout;
pub mod object;
pub mod recipe;
pub mod tracker;
