//! `goodsmall flashsale …`: apply, list and delete FlashSale manifests on a running
//! one-process shop, the way `kubectl` does on a cluster (same YAML, same messages).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args)]
pub struct FlashSaleCli {
    /// The shop's address.
    #[arg(long, env = "GOODSMALL_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// A merchant's access token (or log in with --email and --password).
    #[arg(long, env = "GOODSMALL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "GOODSMALL_EMAIL", global = true)]
    pub email: Option<String>,
    #[arg(long, env = "GOODSMALL_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create or update the FlashSales in a YAML file (one or more documents).
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// List your FlashSales, or show one with its Events.
    Get { name: Option<String> },
    /// Delete a FlashSale: it closes, reservations settle, its keys are removed.
    Delete { name: String },
    /// Set or remove an annotation, as `kubectl annotate` does:
    /// `goodsmall.io/halted=true` halts the drop, `goodsmall.io/halted-` resumes it.
    Annotate {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE|KEY-")]
        annotations: Vec<String>,
    },
}

/// `KEY=VALUE` sets, `KEY-` removes (kubectl's syntax).
fn annotation_patch(args: &[String]) -> anyhow::Result<Value> {
    let mut annotations = serde_json::Map::new();
    for a in args {
        match (a.split_once('='), a.strip_suffix('-')) {
            (Some((key, value)), _) if !key.is_empty() => annotations.insert(key.to_owned(), json!(value)),
            (None, Some(key)) if !key.is_empty() => annotations.insert(key.to_owned(), Value::Null),
            _ => bail!("`{a}`: give KEY=VALUE to set an annotation or KEY- to remove it"),
        };
    }
    Ok(json!({ "metadata": { "annotations": annotations } }))
}

impl FlashSaleCli {
    /// Runs the command; the text to print on success, the server's problem otherwise.
    pub async fn run(self) -> anyhow::Result<String> {
        let client = reqwest::Client::new();
        let base = self.url.trim_end_matches('/').to_owned();
        let token = match (&self.token, &self.email, &self.password) {
            (Some(t), _, _) => t.clone(),
            (None, Some(email), Some(password)) => login(&client, &base, email, password).await?,
            _ => bail!("give a merchant's --token (GOODSMALL_TOKEN), or --email and --password"),
        };
        let call =
            |method: reqwest::Method, path: String| client.request(method, format!("{base}{path}")).bearer_auth(&token);
        match self.command {
            Command::Apply { file } => {
                let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)
                    .with_context(|| format!("{} is not valid YAML", file.display()))?;
                let mut out = Vec::new();
                for doc in docs.into_iter().filter(|d| !d.is_null()) {
                    let Some(name) = doc["metadata"]["name"].as_str() else {
                        bail!("{}: a document lacks metadata.name", file.display())
                    };
                    let answer =
                        answer(call(reqwest::Method::PUT, format!("/api/flashsales/{name}")).json(&doc).send().await?)
                            .await?;
                    out.push(answer["message"].as_str().unwrap_or_default().to_owned());
                }
                Ok(out.join("\n"))
            }
            Command::Get { name: None } => {
                let list = answer(call(reqwest::Method::GET, "/api/flashsales".into()).send().await?).await?;
                Ok(table(list["items"].as_array().map(Vec::as_slice).unwrap_or_default()))
            }
            Command::Get { name: Some(name) } => {
                let one = answer(call(reqwest::Method::GET, format!("/api/flashsales/{name}")).send().await?).await?;
                Ok(serde_saphyr::to_string(&one)?)
            }
            Command::Annotate { name, annotations } => {
                let patch = annotation_patch(&annotations)?;
                let answer =
                    answer(call(reqwest::Method::PATCH, format!("/api/flashsales/{name}")).json(&patch).send().await?)
                        .await?;
                Ok(answer["message"].as_str().unwrap_or_default().to_owned())
            }
            Command::Delete { name } => {
                let answer =
                    answer(call(reqwest::Method::DELETE, format!("/api/flashsales/{name}")).send().await?).await?;
                Ok(answer["message"].as_str().unwrap_or_default().to_owned())
            }
        }
    }
}

async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let body = answer(
        client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await?,
    )
    .await?;
    body["access_token"].as_str().map(str::to_owned).context("the login answer has no access_token")
}

/// The JSON body of a success; a problem's title, detail and field errors otherwise.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let mut message = format!(
        "Error ({}): {}",
        body["code"].as_str().unwrap_or(status.as_str()),
        body["detail"].as_str().unwrap_or_default()
    );
    for e in body["errors"].as_array().into_iter().flatten() {
        message.push_str(&format!(
            "\n  {}: {}",
            e["field"].as_str().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default()
        ));
    }
    bail!(message)
}

/// `kubectl get fs` columns, plus the sale id shoppers buy from.
fn table(items: &[Value]) -> String {
    let mut rows = vec![["NAME", "PHASE", "PRODUCT", "REMAINING", "SOLD", "SALE", "OPENS", "CLOSES", "WAITING"]
        .map(String::from)
        .to_vec()];
    for i in items {
        let text = |v: &Value| match v {
            Value::Null => "-".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let status = &i["status"];
        let phase = if i["metadata"]["deleting"] == true { "Deleting".to_owned() } else { text(&status["phase"]) };
        rows.push(vec![
            text(&i["metadata"]["name"]),
            phase,
            text(&i["spec"]["productId"]),
            text(&status["remaining"]),
            text(&status["sold"]),
            text(&status["saleId"]),
            text(&i["spec"]["opensAt"]),
            text(&i["spec"]["closesAt"]),
            // Empty for a sale without a waiting room, as kubectl's Waiting column.
            if status["queue"].is_null() { String::new() } else { text(&status["queue"]["waiting"]) },
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("   ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_waiting_room_when_the_sale_has_one() {
        let item = |name: &str, queue: Value| {
            json!({ "metadata": { "name": name }, "spec": { "productId": 7, "opensAt": "2030-01-01T10:00:00Z",
                "closesAt": "2030-01-01T11:00:00Z" }, "status": { "phase": "Open", "remaining": 5, "sold": 1,
                "saleId": 3, "queue": queue } })
        };
        let table =
            table(&[item("queued", json!({ "state": "Admitting", "waiting": 42 })), item("plain", Value::Null)]);
        let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0].last(), Some(&"WAITING"), "{table}");
        assert_eq!(lines[1].last(), Some(&"42"), "{table}");
        assert_eq!(lines[2].last(), Some(&"2030-01-01T11:00:00Z"), "nothing for a sale without a room: {table}");
    }

    #[test]
    fn annotations_are_set_and_removed_in_kubectls_syntax() {
        let patch = annotation_patch(&["goodsmall.io/halted=true".into()]).unwrap();
        assert_eq!(patch, json!({ "metadata": { "annotations": { "goodsmall.io/halted": "true" } } }));
        let patch = annotation_patch(&["goodsmall.io/halted-".into()]).unwrap();
        assert_eq!(patch, json!({ "metadata": { "annotations": { "goodsmall.io/halted": null } } }));
        for bad in ["goodsmall.io/halted", "=true", "-"] {
            assert!(annotation_patch(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
