//! What every crowd subcommand (`load`, `spike`, `join`) is pointed at: a shop, one of
//! its sales, and the shoppers' tokens.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Args, Clone)]
pub struct SaleCrowd {
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    #[arg(long)]
    pub sale_id: i64,
    /// JSON array of shopper tokens (`prepare --tokens-out`), one shopper each.
    #[arg(long)]
    pub tokens_file: PathBuf,
}

impl SaleCrowd {
    /// `<base>/api/sales/<id>`, followed by `tail` (e.g. `/purchases`).
    pub fn sale_url(&self, tail: &str) -> String {
        format!("{}/api/sales/{}{tail}", self.base_url.trim_end_matches('/'), self.sale_id)
    }

    pub fn tokens(&self) -> anyhow::Result<Vec<String>> {
        read_tokens(&self.tokens_file)
    }
}

/// A tokens file (`prepare --tokens-out`): a non-empty JSON array of strings.
pub fn read_tokens(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tokens: Vec<String> = serde_json::from_str(&text).context("the tokens file must be a JSON array of strings")?;
    anyhow::ensure!(!tokens.is_empty(), "{} holds no tokens", path.display());
    Ok(tokens)
}
