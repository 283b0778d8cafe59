//! One reconcile of a FlashSale, wherever it runs: validate the spec, record the sale,
//! follow the phase plan (pre-load, scale, close), and compute the new status and the
//! Events to report. The Kubernetes controller and the one-process runner only differ
//! in how they persist the status and publish the Events.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use goodsmall_contracts::{internal_api::LedgerError, sales::Sale};

use crate::{
    capacity,
    crd::{Condition, FlashSaleSpec, FlashSaleStatus, Phase},
    phase::{self, Window},
    records::{Catalogue, SaleRecords},
    scaling::{Request, ScaleReport, Scaler},
    validation::{self, Terms},
    waiting_room::{self, Room},
};

pub const READY: &str = "Ready";
pub const STOCK_LOADED: &str = "StockLoaded";
pub const SCALED: &str = "Scaled";
pub const HALTED: &str = "Halted";

/// The merchant's emergency stop: `kubectl annotate fs NAME goodsmall.io/halted=true`.
pub const HALTED_ANNOTATION: &str = "goodsmall.io/halted";

/// An Event to publish about the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Note {
    fn normal(reason: &str, message: impl Into<String>) -> Self {
        Self { warning: false, reason: reason.into(), message: message.into() }
    }
    fn warning(reason: &str, message: impl Into<String>) -> Self {
        Self { warning: true, reason: reason.into(), message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: FlashSaleStatus,
    pub notes: Vec<Note>,
    pub requeue_after: Option<Duration>,
}

/// The FlashSale as the reconciler needs it.
pub struct Manifest<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub generation: Option<i64>,
    pub spec: &'a FlashSaleSpec,
    pub status: &'a FlashSaleStatus,
    /// The merchant the sale belongs to when the product's owner is not used (the
    /// one-process CLI's caller); `None` in a cluster, where the product's owner is.
    pub merchant_id: Option<i64>,
    /// The value of the `goodsmall.io/halted` annotation (see [`phase::halt_requested`]).
    pub halted: Option<&'a str>,
}

impl Manifest<'_> {
    /// The key of the sale's record: `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone)]
pub struct Reconciler {
    pub records: SaleRecords,
    pub catalogue: Arc<dyn Catalogue>,
    pub scaler: Arc<dyn Scaler>,
    /// How often the status is refreshed while stock can move.
    pub refresh: Duration,
}

/// Deletion: done, or waiting for reservations to settle.
#[derive(Debug, Clone, PartialEq)]
pub enum Cleanup {
    Done(Vec<Note>),
    Waiting(Outcome),
}

impl Reconciler {
    pub async fn apply(&self, m: &Manifest<'_>, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
        let key = m.key();
        let old = m.status;
        let mut notes = Vec::new();
        let mut status =
            FlashSaleStatus { conditions: old.conditions.clone(), observed_generation: m.generation, ..old.clone() };
        let generation = m.generation;
        let recorded = self.records.find(&key).await?;

        // 1. The spec, checked; a refused change keeps the recorded terms.
        let terms = validation::validate(m.spec);
        let accepted = match self.check(m, &terms, recorded.as_ref(), now).await? {
            Ok(sale) => {
                set_condition(
                    &mut status.conditions,
                    READY,
                    true,
                    "Reconciled",
                    "the sale follows the current spec",
                    generation,
                    now,
                );
                Some(sale)
            }
            Err((reason, message)) => {
                if !has_condition(old, READY, false, &reason, &message) {
                    notes.push(Note::warning(&reason, message.clone()));
                }
                set_condition(&mut status.conditions, READY, false, &reason, &message, generation, now);
                recorded
            }
        };
        let Some(sale) = accepted else {
            // Nothing was ever accepted: the sale does not exist.
            status.phase = Some(Phase::Failed);
            set_condition(
                &mut status.conditions,
                STOCK_LOADED,
                false,
                "NoSale",
                "no valid spec accepted yet",
                generation,
                now,
            );
            // Look again now and then: a missing product may appear.
            return Ok(self.finish(old, status, notes, Some(Duration::from_secs(60))));
        };
        status.sale_id = Some(sale.id);

        // 2. The plan for now, and the actions it asks for.
        let window = Window {
            opens_at: sale.opens_at,
            closes_at: sale.closes_at,
            lead: terms.as_ref().map_or(Duration::ZERO, |t| t.lead),
        };
        let mut stock = self.records.stock(sale.id).await?;
        let plan = phase::plan(&window, stock, now, self.refresh);
        let was_loaded = condition_is(old, STOCK_LOADED, true);
        if plan.load {
            if let Some(orders) = self.records.ledger.ensure_loaded(&key).await? {
                if was_loaded {
                    notes.push(Note::warning(
                        "StockRestored",
                        format!("the stock engine had lost the sale; rebuilt from {orders} holding orders"),
                    ));
                }
            }
            stock = self.records.stock(sale.id).await?;
        }
        if plan.close && !stock.is_some_and(|s| s.closed) && sale.closed_at.is_none() {
            self.records.ledger.close(&key).await?;
            stock = self.records.stock(sale.id).await?;
        }
        // The halt, as the annotation asks, in the engine every replica decides in.
        let halted = phase::halt_requested(m.halted) && !plan.close;
        if let Some(s) = stock.as_mut().filter(|s| s.halted != halted && !s.closed) {
            self.records.set_halted(sale.id, halted).await?;
            s.halted = halted;
        }
        let (reason, message) = match (halted, plan.close) {
            (true, _) => (
                "HaltedByMerchant",
                format!(
                    "{HALTED_ANNOTATION} is set: purchases are refused with \
                SALE_HALTED; reservations already made go on"
                ),
            ),
            (false, true) => ("Ended", "the sale has ended".to_owned()),
            (false, false) => ("Running", "purchases are decided as usual".to_owned()),
        };
        set_condition(&mut status.conditions, HALTED, halted, reason, &message, generation, now);
        // The condition's first turn to true is the Event, whoever loaded the stock: the
        // warm-up here, or an order replica that restores a FlashSale's sale the engine
        // lacks (every few seconds, so often before the warm-up).
        if stock.is_some() && !was_loaded {
            notes.push(Note::normal("StockLoaded", format!("{} units pre-loaded", sale.stock)));
        }
        match stock {
            Some(_) => set_condition(
                &mut status.conditions,
                STOCK_LOADED,
                true,
                "Loaded",
                "the sale is in the stock engine",
                generation,
                now,
            ),
            None if plan.close => set_condition(
                &mut status.conditions,
                STOCK_LOADED,
                false,
                "Closed",
                "the sale has ended",
                generation,
                now,
            ),
            None => set_condition(
                &mut status.conditions,
                STOCK_LOADED,
                false,
                "Scheduled",
                "stock is pre-loaded at the warm-up",
                generation,
                now,
            ),
        }
        let mut capacity_short = None;
        let scaled = if plan.scale_up {
            let request = Request { order: m.spec.warmup.order_replicas, payment: m.spec.warmup.payment_replicas };
            self.scaler.hold(m.namespace, &key, request).await?
        } else {
            self.scaler.release(m.namespace, &key).await?
        };
        match scaled {
            ScaleReport::NotApplicable => set_condition(
                &mut status.conditions,
                SCALED,
                true,
                "NotApplicable",
                "no cluster: nothing to scale",
                generation,
                now,
            ),
            ScaleReport::Applied(targets) => {
                // Held replicas count once their pods are Ready, not when asked for.
                let (ready, reason, message) = match (plan.scale_up, targets.is_empty()) {
                    (true, false) => {
                        let c = capacity::of(&targets);
                        capacity_short = (!c.ready).then_some(c.clone());
                        (c.ready, c.reason, c.message)
                    }
                    (true, true) => (true, "NoReplicasRequested", "the spec asks for no warm-up replicas".to_owned()),
                    (false, _) => (true, "Baseline", "workloads run at their own replicas".to_owned()),
                };
                set_condition(&mut status.conditions, SCALED, ready, reason, &message, generation, now);
                status.scaling = targets;
            }
        }

        // 3. Live counters and the phase.
        if let Some(s) = stock {
            (status.remaining, status.reserved, status.sold) = (Some(s.remaining), Some(s.reserved), Some(s.sold));
        }
        let planned = if stock.is_some() { phase::plan(&window, stock, now, self.refresh).phase } else { plan.phase };
        status.phase = Some(phase::with_halt(planned, halted));
        let mut requeue_after = plan.requeue_after;

        // 4. The waiting room, when the sale has one.
        status.queue = None;
        if let Some(admission) = sale.admission {
            let room = Room { opens_at: sale.opens_at, admission };
            let counts = match stock {
                Some(_) => self.records.queue_counts(sale.id, now).await?,
                None => None,
            };
            // Not held by the engine (before the load, after the keys went): the last counts.
            let counts = counts.unwrap_or_else(|| last_counts(old));
            let state = waiting_room::state(&room, plan.close, stock.as_ref(), &counts, now);
            let queue = waiting_room::status(state, &counts);
            for (reason, message) in
                waiting_room::announcements(&room, old.queue.as_ref(), &queue, &counts, stock.as_ref())
            {
                notes.push(Note::normal(reason, message));
            }
            if let Some(wake) = waiting_room::wake(&room, state, now, self.refresh) {
                requeue_after = Some(requeue_after.map_or(wake, |r| r.min(wake)));
            }
            status.queue = Some(queue);
        }
        if let Some(short) = capacity_short {
            // Purchases are gated by the stock engine, not by pods: the sale opens on time
            // all the same, and says so.
            if capacity::warn_not_ready(old, status.phase, &short) {
                notes.push(Note::warning(
                    capacity::NOT_READY_EVENT,
                    format!("the sale is open short of its warm-up capacity: {}", short.message),
                ));
            }
            // The Deployments' changes trigger a reconcile too; this is the fallback.
            requeue_after = Some(requeue_after.map_or(self.refresh, |r| r.min(self.refresh)));
        }
        Ok(self.finish(old, status, notes, requeue_after))
    }

    /// The spec's terms, recorded, or why they are refused.
    async fn check(
        &self,
        m: &Manifest<'_>,
        terms: &Result<Terms, Vec<String>>,
        recorded: Option<&Sale>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Sale, (String, String)>> {
        let terms = match terms {
            Ok(t) => t,
            Err(problems) => return Ok(Err(("InvalidSpec".into(), problems.join("; ")))),
        };
        let owner = match self.catalogue.owner_of(terms.sale.product_id).await? {
            None => {
                return Ok(Err((
                    "ProductNotFound".into(),
                    format!("spec.productId: no product {}", terms.sale.product_id),
                )))
            }
            Some(owner) => owner,
        };
        if m.merchant_id.is_some_and(|me| me != owner) {
            return Ok(Err((
                "ProductNotYours".into(),
                format!("spec.productId: product {} belongs to another merchant", terms.sale.product_id),
            )));
        }
        if let Some(sale) = recorded {
            if let Some(refusal) = locked_change(sale, terms, now) {
                return Ok(Err(("SpecChangeRefused".into(), refusal)));
            }
        }
        match self.records.apply(&m.key(), m.merchant_id.unwrap_or(owner), terms).await {
            Ok(sale) => Ok(Ok(sale)),
            Err(LedgerError::StockBelowCommitted { committed, .. }) => Ok(Err((
                "StockBelowCommitted".into(),
                format!("spec.stock: {} is below the {committed} units already reserved or sold", terms.sale.stock),
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletion: close the sale, give back the replicas, wait until every reservation
    /// settled through the saga, then remove the sale's keys.
    pub async fn cleanup(&self, m: &Manifest<'_>, now: DateTime<Utc>) -> anyhow::Result<Cleanup> {
        let key = m.key();
        let mut notes = Vec::new();
        self.scaler.release(m.namespace, &key).await?;
        let Some(sale) = self.records.find(&key).await? else { return Ok(Cleanup::Done(notes)) };
        if sale.closed_at.is_none() {
            self.records.ledger.close(&key).await?;
            notes.push(Note::normal("Closed", "deleted: the sale is closed"));
        }
        if let Some(stock) = self.records.stock(sale.id).await? {
            if stock.reserved > 0 {
                let mut status = m.status.clone();
                (status.phase, status.remaining, status.reserved, status.sold) =
                    (Some(Phase::Closed), Some(stock.remaining), Some(stock.reserved), Some(stock.sold));
                let message = format!("deleting: waiting for {} reserved units to be paid or released", stock.reserved);
                set_condition(&mut status.conditions, READY, false, "Deleting", &message, m.generation, now);
                return Ok(Cleanup::Waiting(Outcome { status, notes, requeue_after: Some(self.refresh) }));
            }
        }
        self.records.ledger.retire(&key).await?;
        notes.push(Note::normal("Removed", "every reservation settled; the sale's keys are removed"));
        Ok(Cleanup::Done(notes))
    }

    fn finish(
        &self,
        old: &FlashSaleStatus,
        status: FlashSaleStatus,
        mut notes: Vec<Note>,
        requeue_after: Option<Duration>,
    ) -> Outcome {
        if status.phase != old.phase {
            if let Some(phase) = status.phase {
                let message = match phase {
                    Phase::Scheduled => "waiting for the warm-up".to_owned(),
                    Phase::WarmingUp => "stock pre-loaded, warm-up replicas held".to_owned(),
                    Phase::Open => "purchases are open".to_owned(),
                    Phase::SoldOut => format!(
                        "sold out: {} sold, {} awaiting payment",
                        status.sold.unwrap_or(0),
                        status.reserved.unwrap_or(0)
                    ),
                    Phase::Halted => {
                        format!("halted by the merchant ({HALTED_ANNOTATION}): purchases are refused with SALE_HALTED")
                    }
                    Phase::Closed => {
                        format!("closed: {} sold, {} left", status.sold.unwrap_or(0), status.remaining.unwrap_or(0))
                    }
                    Phase::Failed => "the spec was refused; see the Ready condition".to_owned(),
                };
                notes.push(if phase == Phase::Failed {
                    Note::warning(phase.as_str(), message)
                } else {
                    Note::normal(phase.as_str(), message)
                });
            }
        }
        Outcome { status, notes, requeue_after }
    }
}

/// The room's counts as the last status showed them.
fn last_counts(old: &FlashSaleStatus) -> goodsmall_sale::queue::QueueCounts {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    old.queue.as_ref().map_or_else(Default::default, |q| goodsmall_sale::queue::QueueCounts {
        joined: n(q.waiting) + n(q.admitted),
        admitted: n(q.admitted),
        expired: n(q.expired),
        in_turn: n(q.in_turn),
    })
}

/// Product and price are fixed once the sale has opened (orders carry them).
fn locked_change(sale: &Sale, terms: &Terms, now: DateTime<Utc>) -> Option<String> {
    let opened = sale.opens_at <= now;
    let changes_terms = sale.product_id != terms.sale.product_id || sale.price != terms.sale.price;
    (opened && changes_terms)
        .then(|| "productId and price cannot change once the sale has opened; the change is not applied".to_owned())
}

fn condition_is(status: &FlashSaleStatus, type_: &str, value: bool) -> bool {
    status.conditions.iter().any(|c| c.type_ == type_ && c.status == if value { "True" } else { "False" })
}

fn has_condition(status: &FlashSaleStatus, type_: &str, value: bool, reason: &str, message: &str) -> bool {
    status.conditions.iter().any(|c| {
        c.type_ == type_
            && c.status == if value { "True" } else { "False" }
            && c.reason == reason
            && c.message == message
    })
}

/// Sets a condition; its transition time moves only when its status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    let status = if value { "True" } else { "False" }.to_owned();
    let next = Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now,
        observed_generation: generation,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == next.status => *c = Condition { last_transition_time: c.last_transition_time, ..next },
        Some(c) => *c = next,
        None => conditions.push(next),
    }
}
