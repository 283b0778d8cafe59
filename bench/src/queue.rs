//! `join`: every shopper joins a sale's waiting room once (before the poll path is
//! measured with `load --poll`), and the run waits for the opening, when places are drawn.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use futures_util::{stream, StreamExt};
use serde_json::Value;

#[derive(Args)]
pub struct JoinArgs {
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    #[arg(long)]
    pub sale_id: i64,
    /// JSON array of shopper tokens (`prepare --tokens-out`).
    #[arg(long)]
    pub tokens_file: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// Joins every token's shopper, then waits until the sale has opened and prints how
/// many are waiting.
pub async fn run(args: JoinArgs) -> anyhow::Result<bool> {
    let tokens = crate::spike::read_tokens(&args.tokens_file)?;
    let base = args.base_url.trim_end_matches('/').to_owned();
    let url = Arc::new(format!("{base}/api/sales/{}/queue", args.sale_id));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let answers: Vec<anyhow::Result<Value>> = stream::iter(tokens)
        .map(|token| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let answer = client.post(url.as_str()).bearer_auth(token).send().await?;
                let status = answer.status();
                let body: Value = answer.json().await?;
                anyhow::ensure!(status.is_success(), "joining answered {status}: {body}");
                Ok(body)
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let joined = answers.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let opens_at = joined.first().and_then(|t| t["opens_at"].as_str()).context("no opening in the tickets")?;
    let opens_at: chrono::DateTime<chrono::Utc> = opens_at.parse().context("the opening is not a time")?;
    if let Ok(wait) = (opens_at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait + Duration::from_millis(300)).await;
    }
    let sale: Value = client.get(format!("{base}/api/sales/{}", args.sale_id)).send().await?.json().await?;
    eprintln!("{} shoppers joined sale {}; after the opening: {}", joined.len(), args.sale_id, sale["queue"]);
    Ok(true)
}
