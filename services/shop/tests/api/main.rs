//! The black-box API suite. Every scenario runs twice from the same code: against the
//! one-process default (SQLite, in-process store, dev mailbox) and against the
//! separate services on MariaDB + Redis with a real SMTP server.

mod helpers;

mod accounts;
mod after_sale;
mod bad_input;
mod body_rules;
mod cart;
mod catalogue;
mod crowd;
mod drop;
mod drop_helpers;
mod flashsale;
mod halt;
mod login_backoff;
mod observability;
mod openapi_document;
mod openapi_fuzz;
mod operations;
mod pay_at_once;
mod replay;
mod restart;
mod saga_faults;
mod sale_products;
mod sold_out;
mod strict_values;
mod tokens;
mod waiting_room;
