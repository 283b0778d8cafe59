use std::sync::{Arc, Mutex};

use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::OutgoingMail;
use goodsmall_platform::configuration::ExposeSecret;

use crate::configuration::MailSettings;

/// Why a mail cannot be sent (or the transport made).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail: an address does not parse")]
    Address(#[from] lettre::address::AddressError),
    #[error("mail: the message cannot be built")]
    Message(#[from] lettre::error::Error),
    #[error("mail: the SMTP server")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Where mail goes: a real SMTP server, or the in-memory dev mailbox of the
/// one-process default.
// One per process, made at start: the SMTP transport's size costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum MailTransport {
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox },
    DevMailbox(DevMailbox),
}

impl MailTransport {
    pub fn from_settings(settings: &MailSettings) -> Result<Self, MailError> {
        if settings.is_dev_mailbox() {
            return Ok(Self::DevMailbox(DevMailbox::default()));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.transport.expose_secret())?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        Ok(Self::Smtp { transport, from: settings.from.parse()? })
    }

    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        match self {
            Self::Smtp { transport, from } => {
                let message = Message::builder()
                    .from(from.clone())
                    .to(mail.recipient.parse()?)
                    .subject(&mail.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body.clone())?;
                transport.send(message).await?;
            }
            Self::DevMailbox(mailbox) => {
                tracing::info!(to = %mail.recipient, subject = %mail.subject, body = %mail.body,
                    "dev mailbox: mail delivered");
                mailbox.push(mail);
            }
        }
        Ok(())
    }

    pub fn dev_mailbox(&self) -> Option<DevMailbox> {
        match self {
            Self::DevMailbox(m) => Some(m.clone()),
            Self::Smtp { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DevMail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub sent_at: chrono::DateTime<chrono::Utc>,
}

/// The newest mails, kept in memory for the newcomer to read.
#[derive(Clone, Default)]
pub struct DevMailbox(Arc<Mutex<Vec<DevMail>>>);

impl DevMailbox {
    const KEEP: usize = 200;

    fn push(&self, mail: &OutgoingMail) {
        let mut mails = self.0.lock().unwrap_or_else(|p| p.into_inner());
        mails.push(DevMail {
            to: mail.recipient.clone(),
            subject: mail.subject.clone(),
            body: mail.body.clone(),
            sent_at: chrono::Utc::now(),
        });
        let excess = mails.len().saturating_sub(Self::KEEP);
        mails.drain(..excess);
    }

    /// Newest first, optionally only those to one address.
    pub fn list(&self, to: Option<&str>) -> Vec<DevMail> {
        let mails = self.0.lock().unwrap_or_else(|p| p.into_inner());
        mails.iter().rev().filter(|m| to.is_none_or(|t| m.to.eq_ignore_ascii_case(t))).cloned().collect()
    }
}
