//! Preparing a run: tokens for synthetic shoppers, a product and an open sale.

use std::{path::Path, path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use clap::Args;
use goodsmall_platform::auth::{KeySettings, Role, TokenSigner};
use serde_json::{json, Value};

#[derive(Args, Clone)]
pub struct KeyArgs {
    /// The shop's Ed25519 private key (PKCS#8 PEM file), e.g. `<data dir>/jwt-ed25519.key`.
    #[arg(long, env = "BENCH_PRIVATE_KEY_FILE")]
    pub private_key_file: PathBuf,
    /// Token issuer the shop expects (`auth.issuer`).
    #[arg(long, default_value_t = KeySettings::default().issuer())]
    pub issuer: String,
    /// Lifetime of the minted tokens. The shop only checks `exp`, so a run may outlast
    /// the usual 15 minutes.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl_secs: u64,
}

impl KeyArgs {
    fn signer(&self) -> anyhow::Result<TokenSigner> {
        let pem = std::fs::read_to_string(&self.private_key_file)
            .with_context(|| format!("reading the private key {}", self.private_key_file.display()))?;
        TokenSigner::new(&pem, self.issuer.clone(), Duration::from_secs(self.token_ttl_secs))
            .context("not an Ed25519 PKCS#8 PEM")
    }
}

#[derive(Args)]
pub struct PrepareArgs {
    /// The shop, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "BASE_URL")]
    pub base_url: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// How many shopper tokens to mint (one synthetic shopper each).
    #[arg(long, default_value_t = 110)]
    pub shoppers: usize,
    /// User id of the first synthetic shopper; the others follow. Use a fresh range per
    /// sale when per-user limits must start from zero.
    #[arg(long, default_value_t = 1_000_000)]
    pub first_shopper_id: i64,
    /// User id of the merchant that owns the product and the sale.
    #[arg(long, default_value_t = 900_000_000)]
    pub merchant_id: i64,
    /// Units on sale (1 to 10,000,000).
    #[arg(long, default_value_t = 100)]
    pub stock: i64,
    /// Units one shopper may hold (1 to 100).
    #[arg(long, default_value_t = 1)]
    pub per_user_limit: i64,
    /// The sale opens now and closes after this many minutes.
    #[arg(long, default_value_t = 120)]
    pub open_minutes: i64,
    /// Where to write the shopper tokens (a JSON array of strings, for k6's `open()`).
    #[arg(long)]
    pub tokens_out: PathBuf,
    /// Instead of creating the sale through `POST /api/sales`, write a FlashSale
    /// manifest of this name to --manifest-out (opening --opens-in-secs from now) and the
    /// merchant's token to --merchant-token-out, for `goodsmall flashsale apply`; prints
    /// the product id.
    #[arg(long, requires_all = ["manifest_out", "merchant_token_out"])]
    pub flashsale: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub opens_in_secs: i64,
    #[arg(long)]
    pub manifest_out: Option<PathBuf>,
    #[arg(long)]
    pub merchant_token_out: Option<PathBuf>,
    /// A sale with a waiting room admitting this many shoppers a second (k6/queue.js);
    /// it opens --opens-in-secs from now, and shoppers may join --pre-queue-secs before.
    #[arg(long)]
    pub queue_rate: Option<i64>,
    #[arg(long, default_value_t = 600)]
    pub pre_queue_secs: i64,
    /// How long an admitted shopper's turn lasts.
    #[arg(long, default_value_t = 120)]
    pub turn_secs: i64,
}

/// A FlashSale manifest (the CRD's YAML) for a product.
fn manifest(name: &str, product_id: i64, args: &PrepareArgs, opens_at: chrono::DateTime<chrono::Utc>) -> String {
    let closes_at = opens_at + chrono::Duration::minutes(args.open_minutes);
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "apiVersion: goodsmall.io/v1alpha1\nkind: FlashSale\nmetadata:\n  name: {name}\nspec:\n  \
         productId: {product_id}\n  stock: {}\n  price: \"49.00\"\n  opensAt: {}\n  closesAt: {}\n  \
         perUserLimit: {}\n",
        args.stock,
        at(opens_at),
        at(closes_at),
        args.per_user_limit
    )
}

/// Returns Ok(true) after printing the sale id on stdout.
pub async fn run(args: PrepareArgs) -> anyhow::Result<bool> {
    let signer = args.key.signer()?;
    let base = args.base_url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let merchant =
        signer.issue(args.merchant_id, Role::Merchant, &format!("bench-merchant-{}", uuid::Uuid::new_v4()))?;

    let product = json!({
        "name": format!("Bench lightstick ({} units)", args.stock),
        "description": "load-test goods",
        "price": "120.00",
        "quantity": args.stock.min(10_000_000),
        "status": "ON_SALE",
    });
    let product = send(http.post(format!("{base}/api/products")).bearer_auth(&merchant).json(&product), 201).await?;
    let product_id = product["id"].as_i64().context("product without id")?;

    if let (Some(name), Some(manifest_out), Some(token_out)) =
        (&args.flashsale, &args.manifest_out, &args.merchant_token_out)
    {
        // The tokens first: the opening counts from when the manifest is ready.
        write_tokens(&signer, args.shoppers, args.first_shopper_id, &args.tokens_out)?;
        let opens_at = chrono::Utc::now() + chrono::Duration::seconds(args.opens_in_secs);
        let opens_at = chrono::DateTime::from_timestamp(opens_at.timestamp(), 0).context("opening out of range")?;
        std::fs::write(manifest_out, manifest(name, product_id, &args, opens_at))
            .with_context(|| format!("writing {}", manifest_out.display()))?;
        std::fs::write(token_out, &merchant).with_context(|| format!("writing {}", token_out.display()))?;
        eprintln!(
            "prepared product {product_id} and the FlashSale {name} ({} units, opening {}) in {}; \
             {} shopper tokens in {}",
            args.stock,
            opens_at.to_rfc3339(),
            manifest_out.display(),
            args.shoppers,
            args.tokens_out.display()
        );
        println!("{product_id}");
        return Ok(true);
    }

    let mut opens_at = chrono::Utc::now();
    if args.queue_rate.is_some() {
        opens_at += chrono::Duration::seconds(args.opens_in_secs);
    }
    let mut sale = json!({
        "product_id": product_id,
        "stock": args.stock,
        "price": "49.00",
        "opens_at": opens_at.to_rfc3339(),
        "closes_at": (opens_at + chrono::Duration::minutes(args.open_minutes)).to_rfc3339(),
        "per_user_limit": args.per_user_limit,
    });
    if let Some(rate) = args.queue_rate {
        sale["admission"] = json!({
            "mode": "QUEUE", "pre_queue_seconds": args.pre_queue_secs, "admit_per_second": rate,
            "turn_ttl_seconds": args.turn_secs,
        });
    }
    let sale = send(http.post(format!("{base}/api/sales")).bearer_auth(&merchant).json(&sale), 201).await?;
    let sale_id = sale["id"].as_i64().context("sale without id")?;

    // The sale is loaded into the stock engine by the create call; make sure it shows.
    let view = send(http.get(format!("{base}/api/sales/{sale_id}")), 200).await?;
    if view["remaining"].as_i64() != Some(args.stock) {
        bail!("sale {sale_id} does not show its stock as remaining: {view}");
    }

    write_tokens(&signer, args.shoppers, args.first_shopper_id, &args.tokens_out)?;
    eprintln!(
        "prepared sale {sale_id} (product {product_id}): {} units, {} per shopper; \
         {} shopper tokens (ids {}..={}) in {}",
        args.stock,
        args.per_user_limit,
        args.shoppers,
        args.first_shopper_id,
        args.first_shopper_id + args.shoppers as i64 - 1,
        args.tokens_out.display()
    );
    println!("{sale_id}");
    Ok(true)
}

pub fn write_shopper_tokens(key: &KeyArgs, shoppers: usize, first_id: i64, out: &Path) -> anyhow::Result<bool> {
    write_tokens(&key.signer()?, shoppers, first_id, out)?;
    eprintln!("{shoppers} shopper tokens in {}", out.display());
    Ok(true)
}

fn write_tokens(signer: &TokenSigner, shoppers: usize, first_id: i64, out: &Path) -> anyhow::Result<()> {
    let tokens = mint_shoppers(signer, shoppers, first_id)?;
    std::fs::write(out, serde_json::to_vec(&tokens)?).with_context(|| format!("writing {}", out.display()))
}

/// One token per synthetic shopper, each its own session (revocation is per session).
pub fn mint_shoppers(signer: &TokenSigner, shoppers: usize, first_id: i64) -> anyhow::Result<Vec<String>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    (0..shoppers as i64)
        .map(|i| {
            let user_id = first_id + i;
            Ok(signer.issue(user_id, Role::Shopper, &format!("bench-{}-{user_id}", &run[..8]))?)
        })
        .collect()
}

async fn send(request: reqwest::RequestBuilder, expected: u16) -> anyhow::Result<Value> {
    let response = request.send().await.context("the shop did not answer")?;
    let status = response.status().as_u16();
    let url = response.url().path().to_owned();
    let text = response.text().await.unwrap_or_default();
    if status != expected {
        bail!("{url} answered {status} (expected {expected}): {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{url} answered non-JSON: {text}"))
}

#[cfg(test)]
mod tests {
    use goodsmall_platform::auth::{Authenticator, KeyPair};

    use super::*;

    #[tokio::test]
    async fn minted_tokens_pass_the_shops_verification() {
        let keys = KeyPair::generate();
        let signer =
            TokenSigner::new(&keys.private_pem, KeySettings::default().issuer(), Duration::from_secs(60)).unwrap();
        let tokens = mint_shoppers(&signer, 3, 42).unwrap();
        let kv = goodsmall_platform::kv::Kv::memory();
        let verifier = Authenticator::new(&keys.public_pem, &KeySettings::default().issuer(), kv).unwrap();
        for (i, token) in tokens.iter().enumerate() {
            let user = verifier.verify(token).await.unwrap();
            assert_eq!((user.user_id, user.role), (42 + i as i64, Role::Shopper));
        }
        let sessions: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(sessions.len(), 3);
    }
}
