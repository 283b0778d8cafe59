//! The sale's durable record, kept by the order service, and its live state in the
//! stock engine, as the reconciler sees them; and who owns a product.
//!
//! The order service is the only writer of its database: in a cluster the operator
//! records and drives a sale through that service's internal API ([`OrderApi`]); the
//! one-process shop hands it the order module itself (both are a [`SaleLedger`]).
//! Counters and the halt flag go through the shared stock-engine module, as the
//! services' own do.

use std::sync::Arc;

use async_trait::async_trait;
pub use goodsmall_contracts::internal_api::SaleLedger;
use goodsmall_contracts::{
    internal_api::{self, FoundSale, LedgerError, LedgerResult, Loaded, StockBelowCommittedProblem},
    sales::{NewSale, Sale},
};
use goodsmall_platform::auth::internal::InternalSigner;
use goodsmall_sale::{queue::QueueCounts, SaleCounters, SaleId, StockEngine};
use reqwest::{Method, StatusCode};

use crate::validation::Terms;

/// Who sells a product: `None` when there is no such product.
#[async_trait]
pub trait Catalogue: Send + Sync {
    async fn owner_of(&self, product_id: i64) -> anyhow::Result<Option<i64>>;
}

/// The product service's public API (`GET /api/products/{id}`).
pub struct ProductApi {
    client: reqwest::Client,
    base_url: String,
}

impl ProductApi {
    pub fn new(base_url: &str) -> Self {
        let client =
            reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().expect("an HTTP client");
        Self { client, base_url: base_url.trim_end_matches('/').to_owned() }
    }
}

#[async_trait]
impl Catalogue for ProductApi {
    async fn owner_of(&self, product_id: i64) -> anyhow::Result<Option<i64>> {
        let response = self.client.get(format!("{}/api/products/{product_id}", self.base_url)).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let product: serde_json::Value = response.error_for_status()?.json().await?;
        Ok(product["merchant_id"].as_i64())
    }
}

/// A failed call of the order service's internal API.
#[derive(Debug, thiserror::Error)]
pub enum OrderApiError {
    #[error("the order service's internal API ({url}) did not answer: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error(
        "the order service has no internal API at {url}: set GOODSMALL_ORDER__OPERATOR_PUBLIC_KEY_PEM on it to the \
        operator's public key"
    )]
    NotEnabled { url: String },
    #[error(
        "the order service refused the operator's token ({status}): its GOODSMALL_ORDER__OPERATOR_PUBLIC_KEY_PEM \
        is not the public half of GOODSMALL_OPERATOR__INTERNAL_KEY_PEM"
    )]
    Refused { status: StatusCode },
    #[error("the order service answered {status} to {method} {url}: {body}")]
    Failed { method: Method, url: String, status: StatusCode, body: String },
    #[error("could not sign the internal token: {0}")]
    Token(#[from] goodsmall_platform::auth::internal::InternalKeyError),
}

/// The ledger's contract: no answer, or a 503 (the order service's database or stock
/// engine did not answer it), is `Unreachable`; any other failure `Failed`.
impl From<OrderApiError> for LedgerError {
    fn from(e: OrderApiError) -> Self {
        match e {
            OrderApiError::Unreachable { .. }
            | OrderApiError::Failed { status: StatusCode::SERVICE_UNAVAILABLE, .. } => {
                LedgerError::Unreachable(e.into())
            }
            OrderApiError::NotEnabled { .. }
            | OrderApiError::Refused { .. }
            | OrderApiError::Failed { .. }
            | OrderApiError::Token(_) => LedgerError::Failed(e.into()),
        }
    }
}

/// A cluster: the order service's internal API, with the operator's own token.
pub struct OrderApi {
    client: reqwest::Client,
    base_url: String,
    signer: InternalSigner,
}

impl OrderApi {
    pub fn new(base_url: &str, signer: InternalSigner) -> Self {
        let client =
            reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().expect("an HTTP client");
        Self { client, base_url: base_url.trim_end_matches('/').to_owned(), signer }
    }

    fn url(&self, manifest: &str, tail: &str) -> String {
        let (namespace, name) = manifest.split_once('/').unwrap_or(("", manifest));
        format!("{}{}{tail}", self.base_url, internal_api::path(namespace, name))
    }

    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<&NewSale>,
    ) -> Result<reqwest::Response, OrderApiError> {
        let mut request = self.client.request(method.clone(), &url).bearer_auth(self.signer.token()?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response =
            request.send().await.map_err(|source| OrderApiError::Unreachable { url: url.clone(), source })?;
        match response.status() {
            s if s.is_success() || s == StatusCode::CONFLICT => Ok(response),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(OrderApiError::Refused { status: response.status() })
            }
            status => {
                let body = response.text().await.unwrap_or_default();
                // The service's own 404 (no such route) rather than one of a route's.
                let no_route = serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|b| b["code"] == "NOT_FOUND");
                if status == StatusCode::NOT_FOUND && no_route {
                    return Err(OrderApiError::NotEnabled { url });
                }
                Err(OrderApiError::Failed { method, url, status, body })
            }
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response, url: &str) -> Result<T, OrderApiError> {
        response.json().await.map_err(|source| OrderApiError::Unreachable { url: url.to_owned(), source })
    }
}

#[async_trait]
impl SaleLedger for OrderApi {
    async fn find(&self, manifest: &str) -> LedgerResult<Option<Sale>> {
        let url = self.url(manifest, "");
        let found: FoundSale = Self::json(self.call(Method::GET, url.clone(), None).await?, &url).await?;
        Ok(found.sale)
    }

    async fn apply(&self, manifest: &str, terms: NewSale) -> LedgerResult<Sale> {
        let url = self.url(manifest, "");
        let stock = terms.stock;
        let response = self.call(Method::PUT, url.clone(), Some(&terms)).await?;
        if response.status() == StatusCode::CONFLICT {
            let problem: StockBelowCommittedProblem = Self::json(response, &url).await?;
            return Err(LedgerError::StockBelowCommitted {
                sale_id: problem.sale_id,
                stock,
                committed: problem.committed,
            });
        }
        Ok(Self::json(response, &url).await?)
    }

    async fn ensure_loaded(&self, manifest: &str) -> LedgerResult<Option<usize>> {
        let url = self.url(manifest, "/load");
        let loaded: Loaded = Self::json(self.call(Method::POST, url.clone(), None).await?, &url).await?;
        Ok(loaded.rebuilt_from_orders)
    }

    async fn close(&self, manifest: &str) -> LedgerResult<()> {
        self.call(Method::POST, self.url(manifest, "/close"), None).await?;
        Ok(())
    }

    async fn retire(&self, manifest: &str) -> LedgerResult<()> {
        self.call(Method::DELETE, self.url(manifest, ""), None).await?;
        Ok(())
    }
}

#[derive(Clone)]
pub struct SaleRecords {
    pub ledger: Arc<dyn SaleLedger>,
    pub engine: StockEngine,
}

impl SaleRecords {
    pub fn new(ledger: Arc<dyn SaleLedger>, engine: StockEngine) -> Self {
        Self { ledger, engine }
    }

    pub async fn find(&self, manifest: &str) -> LedgerResult<Option<Sale>> {
        self.ledger.find(manifest).await
    }

    /// Records the terms for `merchant_id`; [`LedgerError::StockBelowCommitted`] when
    /// the stock is below the units already held.
    pub async fn apply(&self, manifest: &str, merchant_id: i64, t: &Terms) -> LedgerResult<Sale> {
        self.ledger.apply(manifest, t.sale.for_merchant(merchant_id)).await
    }

    /// The sale's live counters in the stock engine; `None` when it does not hold the sale.
    pub async fn stock(&self, sale_id: i64) -> anyhow::Result<Option<SaleCounters>> {
        Ok(self.engine.counters(sale_id).await?)
    }

    /// The sale's waiting room in numbers at `now` (reading them admits whoever is due,
    /// as any call of the room does); `None` when the engine holds no room for the sale.
    pub async fn queue_counts(
        &self,
        sale_id: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Option<QueueCounts>> {
        Ok(self.engine.queue_counts(SaleId(sale_id), now.timestamp_millis()).await?.ok())
    }

    /// Sets or lifts the sale's halt in the stock engine; `false` when it does not
    /// hold the sale (not loaded yet, or closed and retired).
    pub async fn set_halted(&self, sale_id: i64, halted: bool) -> anyhow::Result<bool> {
        Ok(self.engine.set_halted(sale_id, halted).await?)
    }
}
