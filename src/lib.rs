//! as4gate: an AS4 (ebMS3, eDelivery AS4 1.15) access point and message gateway.
//!
//! This crate is the daemon and its command line. The protocol work lives in sans-I/O crates
//! (`as4gate-ebms`, `as4gate-wssec`, `as4gate-pmode`); here are the parts that touch the
//! world: configuration, listeners, the inbound pipeline, the message store and the CLI.
//! Modules follow a message's path: [`server`] accepts it, [`inbound`] checks, stores and
//! answers it, [`store`] keeps it, [`queue`] carries the work items (embedded SQLite queue or
//! RabbitMQ) that [`delivery`] consumes to push messages to back-ends, and [`operate`] holds the
//! operator actions (dead letters, suspend/resume, disable/enable). [`outbound`] sends to
//! partner gateways; [`spool`] keeps large parts on disk while either side handles them.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod delivery;
pub mod gateway;
pub mod inbound;
pub mod operate;
pub mod outbound;
pub mod pem;
pub mod queue;
pub mod sample;
pub mod server;
pub mod spool;
pub mod store;
pub mod telemetry;
