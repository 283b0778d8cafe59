//! Outgoing mail. A request only writes the mail into the outbox table (fast, and it
//! survives a crash); the delivery worker sends it with retries.

mod outbox;
mod transport;

pub use outbox::{run_delivery_worker, MailOutbox, OutgoingMail};
pub use transport::{DevMail, DevMailbox, MailTransport};
