//! Chat platforms. Each adapter verifies requests, turns payloads into core commands, and
//! renders replies; everything it sends back goes through the effects queue.

pub mod slack;
