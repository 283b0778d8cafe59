//! `join`: every shopper joins a sale's waiting room once (before the poll path is
//! measured with `load --poll`), and the run waits for the opening, when places are drawn.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use futures_util::{stream, StreamExt};
use serde_json::Value;

use crate::crowd::SaleCrowd;

#[derive(Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub crowd: SaleCrowd,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// Joins every token's shopper, then waits until the sale has opened and prints how
/// many are waiting.
pub async fn run(args: JoinArgs) -> anyhow::Result<bool> {
    let tokens = args.crowd.tokens()?;
    let url = Arc::new(args.crowd.sale_url("/queue"));
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
    let sale: Value = client.get(args.crowd.sale_url("")).send().await?.json().await?;
    eprintln!("{} shoppers joined sale {}; after the opening: {}", joined.len(), args.crowd.sale_id, sale["queue"]);
    Ok(true)
}
