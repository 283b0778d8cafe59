//! `bare`: the least a server can do with a purchase request, as the yardstick for the
//! shop's sold-out path. It parses the same request as `POST /api/sales/{id}/purchases`
//! (path, `Authorization`, `Idempotency-Key`, JSON body) with the same extractors, and
//! verifies the same token with the same `Authenticator` (its revocation look-up in an
//! in-process store, so no Redis round trip), then answers 409 `SOLD_OUT` as the shop
//! does once a sale is sold out. Nothing else: no middleware, no metrics, no store.

use std::path::PathBuf;

use anyhow::Context;
use axum::{
    extract::State,
    routing::{get, post},
    Router,
};
use clap::Args;
use goodsmall_platform::{
    auth::{AuthUser, Authenticator, KeySettings, SignedUser},
    error::{ApiError, ErrorCode},
    extract::{IdempotencyKey, Json, Path},
    kv::Kv,
};

#[derive(Args)]
pub struct BareArgs {
    /// The shop's Ed25519 public key (PEM file), e.g. `<data dir>/jwt-ed25519.pub`.
    #[arg(long)]
    pub public_key_file: PathBuf,
    /// Token issuer the shop expects (`auth.issuer`).
    #[arg(long, default_value_t = KeySettings::default().issuer())]
    pub issuer: String,
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

#[derive(serde::Deserialize)]
struct PurchaseRequest {
    #[allow(dead_code)] // parsed, as the shop parses it
    quantity: i64,
}

async fn purchase(
    State(_): State<Authenticator>,
    _user: AuthUser,
    _key: IdempotencyKey,
    Path(_sale_id): Path<i64>,
    Json(_body): Json<PurchaseRequest>,
) -> ApiError {
    ApiError::new(ErrorCode::SoldOut, "this sale is sold out")
}

/// The yardstick of the waiting room's poll: the shop's `GET /api/sales/{id}/queue`
/// verifies the token's signature (no logout look-up) and answers the shopper's place;
/// this answers a fixed place of the same shape.
async fn place(_user: SignedUser, Path(sale_id): Path<i64>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "sale_id": sale_id, "state": "WAITING", "position": 4_000, "queue_number": 4_100, "joined": null,
        "units_left": 1_000, "estimated_wait_seconds": 4_000, "opens_at": null, "admission": null,
    }))
}

pub fn router(authenticator: Authenticator) -> Router {
    Router::new()
        .route("/api/sales/{id}/purchases", post(purchase))
        .route("/api/sales/{id}/queue", get(place))
        .with_state(authenticator)
}

pub async fn run(args: BareArgs) -> anyhow::Result<bool> {
    let pem = std::fs::read_to_string(&args.public_key_file)
        .with_context(|| format!("reading the public key {}", args.public_key_file.display()))?;
    let authenticator =
        Authenticator::new(&pem, &args.issuer, Kv::memory()).context("not an Ed25519 public key PEM")?;
    // The shop's runtime (multi-threaded, a worker per core), so that the two differ in
    // what they do per request and not in how they are scheduled.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let port = args.port;
    let serving = std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            // bench.sh reads the address from the first line.
            println!("http://{}", listener.local_addr()?);
            axum::serve(listener, router(authenticator)).await?;
            anyhow::Ok(())
        })
    });
    tokio::task::spawn_blocking(move || serving.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the bare server panicked"))??;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use goodsmall_platform::auth::{KeyPair, Role, TokenSigner};

    #[tokio::test]
    async fn it_verifies_the_token_and_parses_the_request_like_the_shop() {
        let keys = KeyPair::generate();
        let issuer = KeySettings::default().issuer();
        let authenticator = Authenticator::new(&keys.public_pem, &issuer, Kv::memory()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/sales/7/purchases", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(authenticator)).await });
        let token = TokenSigner::new(&keys.private_pem, issuer, std::time::Duration::from_secs(60))
            .unwrap()
            .issue(5, Role::Shopper, "s")
            .unwrap();
        let client = reqwest::Client::new();
        let send = |token: &str, body: &'static str| {
            client
                .post(&url)
                .bearer_auth(token)
                .header("Idempotency-Key", "k1")
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let code = |r: reqwest::Response| async move {
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap()["code"].clone())
        };
        assert_eq!(code(send(&token, r#"{"quantity":1}"#).await.unwrap()).await, (409, "SOLD_OUT".into()));
        assert_eq!(code(send("forged", r#"{"quantity":1}"#).await.unwrap()).await, (401, "INVALID_TOKEN".into()));
        assert_eq!(code(send(&token, "{").await.unwrap()).await.0, 400, "the body is parsed");
    }
}
