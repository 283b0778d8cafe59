//! The whole GoodsMall shop in one process. With no configuration it needs no
//! external server (SQLite, in-process store, dev mailbox) and seeds demo goods.

pub mod configuration;
pub mod openapi;
pub mod startup;
