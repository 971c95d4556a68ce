//! The sending side. Today: composing signed, compressed and encrypted UserMessages
//! ([`compose`]), used by `as4gate send-sample` and the end-to-end tests; the sending MSH with
//! reception awareness builds on it.

pub mod compose;
