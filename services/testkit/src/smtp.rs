//! A real SMTP server for tests: `python3 -m aiosmtpd` with a handler that stores
//! every accepted message as a JSON file, parsed (headers decoded, body decoded) by
//! Python's `email` package.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::free_port;
use serde::Deserialize;
use tokio::process::{Child, Command};

const HANDLER: &str = r#"
import email, email.policy, json, os, uuid

class Sink:
    async def handle_DATA(self, server, session, envelope):
        folder = os.environ["GOODSMALL_SMTP_SINK_DIR"]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(("plain", "html"))
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message.get("subject", "")),
            "body": part.get_content() if part is not None else "",
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        name = os.path.join(folder, uuid.uuid4().hex)
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name + ".json")
        return "250 Message accepted for delivery"
"#;

const FIX: &str = "the SMTP test server needs Python's aiosmtpd: run `scripts/test.sh`, or `pip install aiosmtpd`";

#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub raw: String,
}

pub struct SmtpSink {
    port: u16,
    folder: PathBuf,
    _child: Child,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let port = free_port();
        let folder = std::env::temp_dir().join(format!("goodsmall-smtp-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(folder.join("mail")).expect("sink folder");
        std::fs::write(folder.join("goodsmall_sink.py"), HANDLER).expect("handler");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "goodsmall_sink.Sink"])
            .env("PYTHONPATH", &folder)
            .env("GOODSMALL_SMTP_SINK_DIR", folder.join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {FIX}"));
        let mut sink = Self { port, folder, _child: child };
        sink.wait_until_listening().await;
        sink
    }

    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self._child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut err) = self._child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = err.read_to_string(&mut stderr).await;
                }
                panic!("the SMTP test server exited ({status}): {stderr}\n{FIX}");
            }
            assert!(Instant::now() < deadline, "the SMTP test server did not listen within 15 s; {FIX}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the service should send: plain SMTP, no authentication.
    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<_> = std::fs::read_dir(self.folder.join("mail"))
            .expect("sink folder")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok())
            .collect()
    }

    /// The newest message to `address`, waiting up to `timeout` for one to arrive.
    pub async fn wait_for_mail_to(&self, address: &str, timeout: Duration) -> ReceivedMail {
        let deadline = Instant::now() + timeout;
        loop {
            let newest =
                self.received().into_iter().rev().find(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)));
            if let Some(mail) = newest {
                return mail;
            }
            assert!(Instant::now() < deadline, "no mail to {address} reached the SMTP server within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
