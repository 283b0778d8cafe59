//! After a run: the sale's live counters, oversell and conservation.

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Args)]
pub struct VerifyArgs {
    #[arg(long, env = "BASE_URL")]
    pub base_url: String,
    #[arg(long, env = "SALE_ID")]
    pub sale_id: i64,
    /// Also fail unless exactly this many units were taken (reserved + sold).
    #[arg(long)]
    pub expect_taken: Option<i64>,
    /// Write the verdict as JSON here too (for `report`).
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// What `verify` found; `report` reads it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub sale_id: i64,
    pub stock: i64,
    pub remaining: i64,
    pub reserved: i64,
    pub sold: i64,
    /// Units held by orders: reserved + sold.
    pub taken: i64,
    /// Units taken beyond the stock (0 unless something is badly wrong).
    pub oversell: i64,
    /// `stock = remaining + reserved + sold`.
    pub conserved: bool,
    pub expected_taken: Option<i64>,
}

impl Verdict {
    pub fn from_sale(sale: &Value) -> anyhow::Result<Self> {
        let field =
            |name: &str| sale[name].as_i64().with_context(|| format!("the sale has no numeric `{name}`: {sale}"));
        let (stock, remaining, reserved, sold) =
            (field("stock")?, field("remaining")?, field("reserved")?, field("sold")?);
        let taken = reserved + sold;
        Ok(Self {
            sale_id: field("id")?,
            stock,
            remaining,
            reserved,
            sold,
            taken,
            oversell: (taken - stock).max(0),
            conserved: remaining >= 0 && stock == remaining + reserved + sold,
            expected_taken: None,
        })
    }

    pub fn ok(&self) -> bool {
        self.oversell == 0 && self.conserved && self.expected_taken.is_none_or(|e| e == self.taken)
    }
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<bool> {
    let url = format!("{}/api/sales/{}", args.base_url.trim_end_matches('/'), args.sale_id);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let response = http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url} answered {}: {}", response.status(), response.text().await.unwrap_or_default());
    }
    let mut verdict = Verdict::from_sale(&response.json().await?)?;
    verdict.expected_taken = args.expect_taken;
    let json = serde_json::to_string(&verdict)?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    if !verdict.ok() {
        eprintln!(
            "sale {}: OVERSELL {} / conserved {} / taken {} (expected {:?})",
            verdict.sale_id, verdict.oversell, verdict.conserved, verdict.taken, verdict.expected_taken
        );
    }
    Ok(verdict.ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn oversell_is_what_was_taken_beyond_the_stock() {
        let fine =
            Verdict::from_sale(&json!({"id": 7, "stock": 100, "remaining": 0, "reserved": 60, "sold": 40})).unwrap();
        assert_eq!((fine.taken, fine.oversell, fine.conserved, fine.ok()), (100, 0, true, true));
        let over =
            Verdict::from_sale(&json!({"id": 7, "stock": 100, "remaining": -2, "reserved": 62, "sold": 40})).unwrap();
        assert_eq!((over.oversell, over.conserved, over.ok()), (2, false, false));
        let mut short = fine.clone();
        short.expected_taken = Some(99);
        assert!(!short.ok());
    }
}
