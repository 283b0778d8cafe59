//! The `FlashSale` custom resource (`goodsmall.io/v1alpha1`): the schema checks what it
//! can (stock and limit within the limits every way of making a sale shares,
//! `goodsmall_contracts::sales`, a positive two-decimal price, `closesAt` after
//! `opensAt`, the waiting room's durations); [`crate::validation`] checks the rest and
//! gives the one-process CLI the same messages.

use chrono::{DateTime, Utc};
use goodsmall_contracts::{
    admission::MAX_ADMIT_PER_SECOND,
    sales::{CLOSES_BEFORE_OPENING, MAX_PER_USER_LIMIT, MAX_STOCK, PRICE_NOT_POSITIVE},
};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::validation::MAX_REPLICAS;

/// A drop: `stock` units of a product at a sale price, open between two instants.
// Each `printcolumn(name = …, type_ = …)` repeats its keys, which clippy takes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "goodsmall.io",
    version = "v1alpha1",
    kind = "FlashSale",
    namespaced,
    shortname = "fs",
    category = "goodsmall",
    status = "FlashSaleStatus",
    derive = "PartialEq",
    doc = "A flash sale: limited stock of one product, sold at a set price inside a time window.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Product", type_ = "integer", json_path = ".spec.productId"),
    printcolumn(name = "Remaining", type_ = "integer", json_path = ".status.remaining"),
    // Shoppers in the waiting room not admitted yet (empty: the sale has none).
    printcolumn(name = "Waiting", type_ = "integer", json_path = ".status.queue.waiting"),
    // WarmupReplicasReady, WarmupReplicasPending (pods asked for are not all Ready), …
    printcolumn(name = "Capacity", type_ = "string", json_path = ".status.conditions[?(@.type==\"Scaled\")].reason"),
    // Instants, not ages: a `date` column prints the age, which is `<invalid>` for a time
    // still to come (the whole of a scheduled sale).
    printcolumn(name = "Opens", type_ = "string", format = "date-time", json_path = ".spec.opensAt"),
    printcolumn(name = "Closes", type_ = "string", format = "date-time", json_path = ".spec.closesAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.closesAt > self.opensAt").message(CLOSES_BEFORE_OPENING))]
#[x_kube(
    validation = Rule::new("!has(self.admission) || duration(self.admission.preQueue) <= duration(self.warmup.lead)")
        .message(PRE_QUEUE_BEYOND_WARMUP)
        .field_path(".admission.preQueue")
)]
#[serde(rename_all = "camelCase")]
pub struct FlashSaleSpec {
    /// The product on sale (its id in the product service).
    #[schemars(range(min = 1))]
    pub product_id: i64,
    /// Units on offer. May be raised or lowered during the sale, never below what is held.
    #[schemars(range(min = 1, max = MAX_STOCK))]
    pub stock: i64,
    /// Sale price, a decimal string with at most two decimals, e.g. "120.00".
    #[schemars(regex(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"))]
    #[x_kube(validation = Rule::new("double(self) > 0.0").message(PRICE_NOT_POSITIVE))]
    pub price: String,
    /// When purchases start (RFC 3339).
    pub opens_at: DateTime<Utc>,
    /// When purchases stop (RFC 3339); after `opensAt`.
    pub closes_at: DateTime<Utc>,
    /// Units one shopper may hold (reserved or bought) in this sale.
    #[schemars(range(min = 1, max = MAX_PER_USER_LIMIT))]
    pub per_user_limit: i64,
    /// Scaling and stock pre-load ahead of the opening.
    #[serde(default)]
    pub warmup: Warmup,
    /// A fair waiting room (absent: first come, first served): shoppers join from
    /// `preQueue` before the opening, get a random place at the opening, and are admitted
    /// `admitPerSecond` at a time, each for a turn of `turnTTL` to buy in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionSpec>,
}

/// The refusal of a pre-queue longer than the warm-up lead (the CRD's rule on the whole
/// spec, reported on `spec.admission.preQueue`): the sale is loaded into the stock engine
/// at the warm-up, and nobody can join before that.
pub const PRE_QUEUE_BEYOND_WARMUP: &str =
    "must not be longer than warmup.lead: shoppers can join only once the sale is loaded, at the warm-up";
/// The refusal of a pre-queue longer than a day (`MAX_PRE_QUEUE_SECONDS`).
pub const PRE_QUEUE_TOO_LONG: &str = "must be at most 24h";
/// The refusal of a turn outside 10 s to 1 h (`MIN_TURN_TTL_SECONDS`, `MAX_TURN_TTL_SECONDS`).
pub const TURN_TTL_OUT_OF_RANGE: &str = "must be between 10s and 1h";

/// How the waiting room lets shoppers in.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionMode {
    // A queue: the pre-queue shuffled at the opening, later arrivals behind in arrival
    // order. (A doc comment here would turn the schema's enum into a oneOf.)
    Queue,
}

/// The waiting room's terms, as a merchant writes them.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionSpec {
    /// `Queue`.
    pub mode: AdmissionMode,
    /// How long before `opensAt` shoppers may join, a duration such as "15m" (at most
    /// `warmup.lead` and 24h; "0s": joining starts at the opening). Everyone who joins
    /// before the opening gets a uniformly random place at the opening.
    #[schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message(PRE_QUEUE_TOO_LONG))]
    pub pre_queue: String,
    /// Shoppers admitted per second (unset: the stock divided by 30, so the whole stock
    /// is offered within 30 s, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_ADMIT_PER_SECOND))]
    pub admit_per_second: Option<i64>,
    /// How long an admitted shopper keeps the right to buy, a duration from "10s" to
    /// "1h", e.g. "2m".
    #[serde(rename = "turnTTL")]
    #[schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('1h')")
        .message(TURN_TTL_OUT_OF_RANGE))]
    pub turn_ttl: String,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Warmup {
    /// How long before `opensAt` to pre-load stock and scale up: a duration such as
    /// "10m", "90s" or "1h30m".
    #[serde(default = "default_lead")]
    #[schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"))]
    pub lead: String,
    /// Replicas of the order service from the warm-up until the close (unset: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_REPLICAS))]
    pub order_replicas: Option<i32>,
    /// Replicas of the payment service from the warm-up until the close (unset: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_REPLICAS))]
    pub payment_replicas: Option<i32>,
}

fn default_lead() -> String {
    "10m".into()
}

impl Default for Warmup {
    fn default() -> Self {
        Self { lead: default_lead(), order_replicas: None, payment_replicas: None }
    }
}

/// Where a sale is in its life; `kubectl get fs` shows it.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Scheduled,
    WarmingUp,
    Open,
    SoldOut,
    // The merchant's emergency stop (`goodsmall.io/halted=true`): purchases are refused
    // with SALE_HALTED until the annotation goes. (A doc comment here would turn the
    // schema's enum into a oneOf.)
    Halted,
    Closed,
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 7] =
        [Self::Scheduled, Self::WarmingUp, Self::Open, Self::SoldOut, Self::Halted, Self::Closed, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::WarmingUp => "WarmingUp",
            Self::Open => "Open",
            Self::SoldOut => "SoldOut",
            Self::Halted => "Halted",
            Self::Closed => "Closed",
            Self::Failed => "Failed",
        }
    }
}

#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlashSaleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The sale's id in the shop: shoppers buy at `/api/sales/{saleId}/purchases`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What this sale asked of each workload it scales (not applicable in one process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling: Vec<ScaledTarget>,
    /// The waiting room, when the sale has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueStatus>,
}

/// Where a sale's waiting room is.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueState {
    // Before `opensAt - preQueue`: nobody can join yet.
    NotOpen,
    // Shoppers join; their places are drawn at the opening.
    PreQueue,
    // Shoppers are waiting and admitted at the rate.
    Admitting,
    // Nobody is waiting, or nothing is left (every waiting shopper is told SOLD_OUT).
    Drained,
    // The sale has ended.
    Closed,
}

/// A sale's waiting room in numbers, as the stock engine counts it.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    pub state: QueueState,
    /// Shoppers who joined and are not admitted yet.
    pub waiting: i64,
    /// Shoppers admitted so far.
    pub admitted: i64,
    /// Turns that ended without a purchase.
    pub expired: i64,
    /// Admitted shoppers whose turn is on and who have not bought yet.
    pub in_turn: i64,
}

/// A standard Kubernetes condition (the shape `kubectl wait --for=condition=…` reads).
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One workload a sale scales for its warm-up.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScaledTarget {
    /// Deployment, HorizontalPodAutoscaler or ScaledObject.
    pub kind: String,
    pub name: String,
    /// Replicas (or minimum replicas) this sale asked for.
    pub replicas: i32,
    /// The Deployment whose pods serve the sale.
    #[serde(default)]
    pub deployment: String,
    /// Its pods Ready at the last reconcile: the warm-up is done when this reaches
    /// `replicas` (the `Scaled` condition).
    #[serde(default)]
    pub ready: i32,
}

/// The CRD as written to `crds/flashsale.yaml` (by `cargo run -p goodsmall-operator --bin crdgen`).
pub fn crd_yaml() -> String {
    let crd = FlashSale::crd();
    let body = serde_saphyr::to_string(&crd).expect("the CRD serialises");
    format!("# Generated by `cargo run -p goodsmall-operator --bin crdgen`; do not edit.\n{body}")
}
