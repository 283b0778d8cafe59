//! The stock engine's contract. Every scenario runs against both backends; each answer
//! is asserted, and the two backends' full transcripts (every answer plus the counters
//! after every step) must be identical. Conservation (`initial = remaining + reserved
//! + sold`) is checked for every known sale after every step.

mod common;

use std::{collections::BTreeSet, future::Future};

use common::{assert_conserved, engines, sale, CLOSES, OPENS};
use goodsmall_sale::{
    keys, EngineError, KeyRecord, LoadOutcome, Quantity, Refusal, Reservation, ReservationRequest, SaleCounters,
    SaleDefinition, SaleId, Settle, StockEngine, UserId,
};

/// One backend under test: forwards each call, records the answer, checks conservation.
struct Probe {
    e: StockEngine,
    log: Vec<String>,
    sales: BTreeSet<i64>,
}

impl Probe {
    fn name(&self) -> &'static str {
        self.e.backend_name()
    }

    async fn step(&mut self, what: String) {
        self.log.push(what);
        for &id in &self.sales {
            let c = assert_conserved(&self.e, id).await;
            self.log.push(format!("  {c:?}"));
        }
    }

    async fn load(&mut self, d: &SaleDefinition) -> Result<LoadOutcome, EngineError> {
        let r = self.e.load_sale(d).await;
        if r.is_ok() {
            self.sales.insert(d.sale_id);
        }
        self.step(format!("load {d:?} -> {r:?}")).await;
        r
    }

    async fn close(&mut self, sale_id: i64) -> bool {
        let r = self.e.close_sale(sale_id).await.unwrap();
        self.step(format!("close {sale_id} -> {r}")).await;
        r
    }

    async fn halt(&mut self, sale_id: i64, halted: bool) -> bool {
        let r = self.e.set_halted(sale_id, halted).await.unwrap();
        self.step(format!("halt {sale_id} {halted} -> {r}")).await;
        r
    }

    async fn counters(&mut self, sale_id: i64) -> Option<SaleCounters> {
        self.e.counters(sale_id).await.unwrap()
    }

    async fn reserve(
        &mut self,
        sale_id: i64,
        user: i64,
        key: &str,
        quantity: i64,
        order: &str,
        now: i64,
    ) -> Reservation {
        let r = self
            .e
            .reserve(&ReservationRequest {
                sale: SaleId(sale_id),
                user: UserId(user),
                key,
                quantity: Quantity::new(quantity).unwrap(),
                order,
                at_ms: now,
                turn_ends_ms: None,
            })
            .await
            .unwrap();
        self.step(format!("reserve {sale_id} u{user} {key} x{quantity} {order} @{now} -> {r:?}")).await;
        r
    }

    async fn refused(&mut self, sale_id: i64, user: i64, quantity: i64, now: i64) -> Refusal {
        let before = self.e.counters(sale_id).await.unwrap();
        let held = self.held(sale_id, user).await;
        match self.reserve(sale_id, user, "refused", quantity, "never", now).await {
            Reservation::Refused(r) => {
                assert_eq!(
                    self.e.counters(sale_id).await.unwrap(),
                    before,
                    "{}: a refusal changed the counters",
                    self.name()
                );
                assert_eq!(
                    self.held(sale_id, user).await,
                    held,
                    "{}: a refusal changed what the buyer holds",
                    self.name()
                );
                r
            }
            other => panic!("{}: expected a refusal, got {other:?}", self.name()),
        }
    }

    async fn release(&mut self, sale_id: i64, order: &str) -> Settle {
        let r = self.e.release(sale_id, order).await.unwrap();
        self.step(format!("release {sale_id} {order} -> {r:?}")).await;
        r
    }

    async fn confirm(&mut self, sale_id: i64, order: &str) -> Settle {
        let r = self.e.confirm(sale_id, order).await.unwrap();
        self.step(format!("confirm {sale_id} {order} -> {r:?}")).await;
        r
    }

    async fn held(&mut self, sale_id: i64, user: i64) -> i64 {
        self.e.held_by(SaleId(sale_id), UserId(user)).await.unwrap()
    }

    async fn set_stock(&mut self, product_id: i64, n: i64) {
        self.e.set_product_stock(product_id, n).await.unwrap();
        self.step(format!("set stock {product_id} = {n}")).await;
    }

    async fn stock(&mut self, product_id: i64) -> Option<i64> {
        self.e.product_stock(product_id).await.unwrap()
    }

    async fn stocks(&mut self, ids: &[i64]) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        for &id in ids {
            out.push(self.stock(id).await);
        }
        out
    }

    async fn checkout(&mut self, order: &str, lines: &[(i64, i64)]) -> Result<Result<(), i64>, EngineError> {
        let r = self.e.reserve_products(order, lines).await;
        self.step(format!("checkout {order} {lines:?} -> {r:?}")).await;
        r
    }

    async fn uncheckout(&mut self, order: &str) -> bool {
        let r = self.e.release_products(order).await.unwrap();
        self.step(format!("release products {order} -> {r}")).await;
        r
    }
}

/// Runs `scenario` on the in-process engine and on Redis; their transcripts must match.
async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Probe) -> Fut,
    Fut: Future<Output = Probe>,
{
    let mut transcripts = Vec::new();
    for e in engines().await {
        let probe = scenario(Probe { e, log: Vec::new(), sales: BTreeSet::new() }).await;
        transcripts.push(probe.log);
    }
    let (memory, redis) = (&transcripts[0], &transcripts[1]);
    for (i, (m, r)) in memory.iter().zip(redis).enumerate() {
        assert_eq!(m, r, "backends differ at transcript line {i}");
    }
    assert_eq!(memory.len(), redis.len(), "backends' transcripts differ in length");
}

fn reserved(order: &str, quantity: i64, remaining: i64, repeated: bool) -> Reservation {
    Reservation::Reserved { order_id: order.into(), quantity, remaining, repeated, epoch: goodsmall_sale::FIRST_EPOCH }
}

#[test]
fn refusal_codes_are_the_api_codes() {
    let codes: Vec<_> = Refusal::ALL.iter().map(Refusal::code).collect();
    assert_eq!(
        codes,
        [
            "SALE_NOT_FOUND",
            "SALE_NOT_OPEN",
            "SALE_CLOSED",
            "SOLD_OUT",
            "SALE_HALTED",
            "INSUFFICIENT_STOCK",
            "PURCHASE_LIMIT",
            "ADMISSION_REQUIRED",
            "ADMISSION_EXPIRED"
        ]
    );
}

#[tokio::test]
async fn each_refusal_comes_at_its_moment_and_in_order() {
    on_both(|mut p| async move {
        let n = p.name();
        assert_eq!(p.refused(1, 10, 1, OPENS).await, Refusal::UnknownSale, "{n}");
        assert_eq!(p.counters(1).await, None, "{n}: a refusal creates nothing");
        assert_eq!(p.load(&sale(1, 3, 2)).await.unwrap(), LoadOutcome::Created, "{n}");
        assert_eq!(p.refused(1, 10, 1, OPENS - 1).await, Refusal::SaleNotOpen, "{n}");
        assert_eq!(p.refused(1, 10, 1, CLOSES).await, Refusal::SaleClosed, "{n}: the window is [opens, closes)");
        assert_eq!(p.refused(1, 10, 4, OPENS).await, Refusal::InsufficientStock, "{n}: checked before the limit");
        assert_eq!(p.refused(1, 10, 3, OPENS).await, Refusal::PurchaseLimit, "{n}");
        assert_eq!(p.reserve(1, 10, "k", 2, "o1", OPENS).await, reserved("o1", 2, 1, false), "{n}: opens inclusive");
        assert_eq!(p.refused(1, 10, 1, OPENS).await, Refusal::PurchaseLimit, "{n}: holds 2 of 2");
        assert_eq!(p.refused(1, 11, 2, OPENS).await, Refusal::InsufficientStock, "{n}");
        assert_eq!(
            p.reserve(1, 11, "k", 1, "o2", CLOSES - 1).await,
            reserved("o2", 1, 0, false),
            "{n}: last millisecond"
        );
        assert_eq!(p.refused(1, 12, 1, OPENS).await, Refusal::SoldOut, "{n}");
        assert_eq!(p.refused(1, 12, 5, OPENS).await, Refusal::SoldOut, "{n}: sold out before insufficient");
        assert_eq!(p.refused(1, 10, 1, OPENS).await, Refusal::SoldOut, "{n}: sold out before the limit");
        assert_eq!(p.refused(1, 12, 1, OPENS - 1).await, Refusal::SaleNotOpen, "{n}: the window before stock");
        assert_eq!(p.refused(1, 12, 1, CLOSES).await, Refusal::SaleClosed, "{n}");
        assert_eq!(p.held(1, 12).await, 0, "{n}");

        // Closing early: the flag beats the window, and beats "not open" too.
        assert!(p.close(1).await, "{n}");
        assert!(p.counters(1).await.unwrap().closed, "{n}");
        assert_eq!(p.refused(1, 13, 1, OPENS).await, Refusal::SaleClosed, "{n}");
        p.load(&sale(2, 5, 1)).await.unwrap();
        assert!(p.close(2).await);
        assert_eq!(p.refused(2, 13, 1, OPENS - 1).await, Refusal::SaleClosed, "{n}");
        assert!(!p.close(99).await, "{n}: no such sale");
        assert_eq!(p.counters(99).await, None, "{n}: closing creates nothing");

        // A quantity below 1 cannot be asked for: it is refused where the request is made.
        let invalid = Quantity::new(0);
        assert!(matches!(invalid, Err(goodsmall_sale::QuantityBelowOne(0))), "{n}: {invalid:?}");
        p
    })
    .await;
}

#[tokio::test]
async fn a_halt_refuses_new_purchases_keeps_first_answers_and_lifts_cleanly() {
    on_both(|mut p| async move {
        let n = p.name();
        assert!(!p.halt(1, true).await, "{n}: no such sale");
        assert_eq!(p.counters(1).await, None, "{n}: halting creates nothing");
        p.load(&sale(1, 5, 2)).await.unwrap();
        assert_eq!(p.reserve(1, 10, "k", 1, "o1", OPENS).await, reserved("o1", 1, 4, false), "{n}");
        assert!(p.halt(1, true).await, "{n}");
        assert!(p.counters(1).await.unwrap().halted, "{n}");
        assert_eq!(p.refused(1, 11, 1, OPENS).await, Refusal::Halted, "{n}");
        assert_eq!(p.refused(1, 11, 1, OPENS - 1).await, Refusal::Halted, "{n}: before the window opens too");
        assert_eq!(p.refused(1, 11, 9, OPENS).await, Refusal::Halted, "{n}: before the stock checks");
        assert_eq!(
            p.reserve(1, 10, "k", 1, "o-new", OPENS).await,
            reserved("o1", 1, 4, true),
            "{n}: an accepted purchase's retry still gets its order"
        );
        assert_eq!(p.confirm(1, "o1").await, Settle::Confirmed, "{n}: a reservation goes on through the saga");
        assert_eq!(p.load(&sale(1, 6, 2)).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert!(p.counters(1).await.unwrap().halted, "{n}: a change of terms keeps the halt");
        assert!(p.halt(1, false).await, "{n}");
        assert_eq!(p.reserve(1, 11, "k", 1, "o2", OPENS).await, reserved("o2", 1, 4, false), "{n}: lifted");
        p.halt(1, true).await;
        p.close(1).await;
        assert_eq!(p.refused(1, 12, 1, OPENS).await, Refusal::SaleClosed, "{n}: closed beats halted");
        p
    })
    .await;
}

#[tokio::test]
async fn a_repeated_key_returns_the_first_success_and_changes_nothing() {
    on_both(|mut p| async move {
        let n = p.name();
        p.load(&sale(1, 5, 3)).await.unwrap();
        // A refusal is not remembered: the same key is decided again once the sale opens.
        assert_eq!(p.reserve(1, 1, "k", 2, "o1", OPENS - 10).await, Reservation::Refused(Refusal::SaleNotOpen), "{n}");
        assert_eq!(p.reserve(1, 1, "k", 2, "o1", OPENS).await, reserved("o1", 2, 3, false), "{n}");
        let before = p.counters(1).await;
        assert_eq!(
            p.reserve(1, 1, "k", 1, "o-new", OPENS + 1).await,
            reserved("o1", 2, 3, true),
            "{n}: first answer, not the new quantity"
        );
        assert_eq!(p.counters(1).await, before, "{n}: a repeat changes nothing");
        assert_eq!(p.held(1, 1).await, 2, "{n}");
        // Keys are per buyer.
        assert_eq!(p.reserve(1, 2, "k", 1, "o2", OPENS).await, reserved("o2", 1, 2, false), "{n}");
        // Still the first answer after it was released (and nothing comes back twice).
        assert_eq!(p.release(1, "o1").await, Settle::Released, "{n}");
        let before = p.counters(1).await;
        assert_eq!(p.reserve(1, 1, "k", 2, "o3", OPENS).await, reserved("o1", 2, 4, true), "{n}");
        assert_eq!(p.counters(1).await, before, "{n}");
        assert_eq!(p.held(1, 1).await, 0, "{n}");
        // ... and after the sale closed.
        assert_eq!(p.confirm(1, "o2").await, Settle::Confirmed, "{n}");
        p.close(1).await;
        assert_eq!(p.reserve(1, 2, "k", 1, "o4", CLOSES + 1).await, reserved("o2", 1, 4, true), "{n}");
        assert_eq!(p.reserve(1, 2, "k2", 1, "o4", OPENS).await, Reservation::Refused(Refusal::SaleClosed), "{n}");
        p
    })
    .await;
}

#[tokio::test]
async fn the_limit_counts_reserved_and_sold_units_and_a_release_frees_them() {
    on_both(|mut p| async move {
        let n = p.name();
        p.load(&sale(1, 10, 3)).await.unwrap();
        assert!(matches!(p.reserve(1, 1, "a", 2, "o1", OPENS).await, Reservation::Reserved { .. }), "{n}");
        assert_eq!(p.confirm(1, "o1").await, Settle::Confirmed, "{n}");
        assert_eq!(p.refused(1, 1, 2, OPENS).await, Refusal::PurchaseLimit, "{n}: 2 sold + 2");
        assert!(matches!(p.reserve(1, 1, "c", 1, "o2", OPENS).await, Reservation::Reserved { .. }), "{n}");
        assert_eq!(p.held(1, 1).await, 3, "{n}: 2 sold + 1 reserved");
        assert_eq!(p.refused(1, 1, 1, OPENS).await, Refusal::PurchaseLimit, "{n}");
        assert_eq!(p.release(1, "o2").await, Settle::Released, "{n}: payment failed");
        assert_eq!(p.held(1, 1).await, 2, "{n}");
        assert!(matches!(p.reserve(1, 1, "e", 1, "o3", OPENS).await, Reservation::Reserved { .. }), "{n}");
        assert_eq!(p.release(1, "o1").await, Settle::Released, "{n}: a refund");
        assert_eq!(p.held(1, 1).await, 1, "{n}");
        assert_eq!(p.counters(1).await.map(|c| (c.remaining, c.reserved, c.sold)), Some((9, 1, 0)), "{n}");
        assert!(matches!(p.reserve(1, 1, "f", 2, "o4", OPENS).await, Reservation::Reserved { .. }), "{n}");
        assert_eq!(p.held(1, 1).await, 3, "{n}");
        assert!(matches!(p.reserve(1, 2, "a", 3, "o5", OPENS).await, Reservation::Reserved { .. }), "{n}: per buyer");
        p
    })
    .await;
}

#[tokio::test]
async fn release_and_confirm_settle_exactly_once() {
    on_both(|mut p| async move {
        let n = p.name();
        p.load(&sale(1, 4, 4)).await.unwrap();
        for (user, q, order) in [(1, 1, "o1"), (2, 1, "o2"), (3, 2, "o3")] {
            assert!(matches!(p.reserve(1, user, "k", q, order, OPENS).await, Reservation::Reserved { .. }), "{n}");
        }
        assert_eq!(p.confirm(1, "o1").await, Settle::Confirmed, "{n}");
        assert_eq!(p.confirm(1, "o1").await, Settle::AlreadySettled, "{n}");
        assert_eq!(p.release(1, "o1").await, Settle::Released, "{n}: refund of a sold unit");
        assert_eq!(p.release(1, "o1").await, Settle::AlreadySettled, "{n}");
        assert_eq!(p.confirm(1, "o1").await, Settle::AlreadySettled, "{n}: released cannot be sold");
        assert_eq!(p.release(1, "o2").await, Settle::Released, "{n}");
        assert_eq!(p.release(1, "o2").await, Settle::AlreadySettled, "{n}");
        assert_eq!(p.confirm(1, "o2").await, Settle::AlreadySettled, "{n}");
        assert_eq!(p.release(1, "nope").await, Settle::Unknown, "{n}");
        assert_eq!(p.confirm(1, "nope").await, Settle::Unknown, "{n}");
        assert_eq!(p.release(404, "o3").await, Settle::Unknown, "{n}: another sale's order");
        assert_eq!(p.counters(1).await.map(|c| (c.remaining, c.reserved, c.sold)), Some((2, 2, 0)), "{n}");
        assert_eq!(p.confirm(1, "o3").await, Settle::Confirmed, "{n}");
        assert_eq!(p.counters(1).await.map(|c| (c.remaining, c.reserved, c.sold)), Some((2, 0, 2)), "{n}");
        assert_eq!((p.held(1, 1).await, p.held(1, 2).await, p.held(1, 3).await), (0, 0, 2), "{n}");
        p
    })
    .await;
}

#[tokio::test]
async fn loading_is_idempotent_and_moves_stock_without_resetting_buyers() {
    on_both(|mut p| async move {
        let n = p.name();
        let mut d = sale(1, 5, 2);
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Created, "{n}");
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Unchanged, "{n}");
        let c = p.counters(1).await.unwrap();
        assert_eq!(
            (c.product_id, c.initial, c.remaining, c.price_cents, c.per_user_limit, c.closed),
            (7, 5, 5, 12_000, 2, false),
            "{n}"
        );
        d.price_cents = 9_900;
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert_eq!(p.counters(1).await.map(|c| (c.price_cents, c.remaining)), Some((9_900, 5)), "{n}");
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Unchanged, "{n}");

        p.reserve(1, 1, "k", 2, "o1", OPENS).await;
        p.reserve(1, 2, "k", 1, "o2", OPENS).await;
        p.confirm(1, "o2").await; // committed: 2 reserved + 1 sold
        d.stock = 10;
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert_eq!(p.counters(1).await.map(|c| (c.initial, c.remaining)), Some((10, 7)), "{n}: raised");
        d.stock = 4;
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert_eq!(p.counters(1).await.map(|c| (c.initial, c.remaining)), Some((4, 1)), "{n}: lowered");
        d.stock = 2;
        let below = p.load(&d).await;
        assert!(
            matches!(below, Err(EngineError::StockBelowCommitted { sale_id: 1, stock: 2, committed: 3 })),
            "{n}: {below:?}"
        );
        assert_eq!(
            p.counters(1).await.map(|c| (c.initial, c.remaining)),
            Some((4, 1)),
            "{n}: a refused load changes nothing"
        );
        d.stock = 3;
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert_eq!(p.refused(1, 3, 1, OPENS).await, Refusal::SoldOut, "{n}: lowered to exactly what is committed");

        // Buyers and idempotency keys survive an update.
        d.stock = 6;
        p.load(&d).await.unwrap();
        assert_eq!(p.refused(1, 1, 1, OPENS).await, Refusal::PurchaseLimit, "{n}");
        assert_eq!(p.reserve(1, 1, "k", 2, "o9", OPENS).await, reserved("o1", 2, 3, true), "{n}");
        // A moved window applies at once; a closed sale stays closed.
        d.opens_at_ms = OPENS + 500;
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert_eq!(p.refused(1, 3, 1, OPENS).await, Refusal::SaleNotOpen, "{n}");
        p.close(1).await;
        d.stock = 8;
        assert_eq!(p.load(&d).await.unwrap(), LoadOutcome::Updated, "{n}");
        assert_eq!(p.refused(1, 3, 1, OPENS + 500).await, Refusal::SaleClosed, "{n}");

        for bad in [
            SaleDefinition { stock: -1, ..sale(2, 0, 1) },
            sale(2, 5, 0),
            SaleDefinition { closes_at_ms: OPENS, ..sale(2, 5, 1) },
        ] {
            assert!(matches!(p.load(&bad).await, Err(EngineError::InvalidInput(_))), "{n}: {bad:?}");
        }
        assert_eq!(p.counters(2).await, None, "{n}");
        p
    })
    .await;
}

#[tokio::test]
async fn cart_checkout_takes_every_line_or_none_and_gives_back_once() {
    on_both(|mut p| async move {
        let n = p.name();
        p.set_stock(1, 5).await;
        p.set_stock(2, 1).await;
        assert_eq!(p.checkout("c1", &[(1, 2), (2, 2)]).await.unwrap(), Err(2), "{n}");
        assert_eq!(p.checkout("c1", &[(1, 2), (3, 1)]).await.unwrap(), Err(3), "{n}: no stock key");
        assert_eq!(p.checkout("c1", &[(1, 3), (1, 3)]).await.unwrap(), Err(1), "{n}: lines of one product add up");
        assert_eq!(p.stocks(&[1, 2, 3]).await, [Some(5), Some(1), None], "{n}: nothing taken");
        // A refusal is not remembered either: the same order id may succeed later.
        assert_eq!(p.checkout("c1", &[(2, 1), (1, 2), (1, 2)]).await.unwrap(), Ok(()), "{n}");
        assert_eq!(p.stocks(&[1, 2]).await, [Some(1), Some(0)], "{n}");
        assert_eq!(p.checkout("c1", &[(1, 1)]).await.unwrap(), Ok(()), "{n}: a repeat succeeds");
        assert_eq!(p.stocks(&[1, 2]).await, [Some(1), Some(0)], "{n}: and takes nothing");
        assert_eq!(p.checkout("c2", &[(1, 1), (1, 1)]).await.unwrap(), Err(1), "{n}");
        assert_eq!(p.checkout("c2", &[(1, 1)]).await.unwrap(), Ok(()), "{n}");
        assert_eq!(p.stocks(&[1, 2]).await, [Some(0), Some(0)], "{n}");

        assert!(p.uncheckout("c1").await, "{n}");
        assert_eq!(p.stocks(&[1, 2]).await, [Some(4), Some(1)], "{n}: c1's lines back");
        assert!(!p.uncheckout("c1").await, "{n}: only once");
        assert_eq!(p.checkout("c1", &[(1, 1)]).await.unwrap(), Ok(()), "{n}: a late repeat ...");
        assert_eq!(p.stocks(&[1, 2]).await, [Some(4), Some(1)], "{n}: ... takes nothing");
        assert!(!p.uncheckout("never").await, "{n}");
        assert!(p.uncheckout("c2").await, "{n}");
        assert_eq!(p.stocks(&[1, 2]).await, [Some(5), Some(1)], "{n}: all back");

        for bad in [&[(1, 0)][..], &[(1, -2)], &[]] {
            assert!(matches!(p.checkout("c3", bad).await, Err(EngineError::InvalidInput(_))), "{n}: {bad:?}");
        }
        p.set_stock(1, 10).await;
        assert_eq!(p.stock(1).await, Some(10), "{n}: the product service's number wins");
        p
    })
    .await;
}

/// The layout other processes read and write (product service, operator), pinned on
/// the real store; and scripts survive a SCRIPT FLUSH (EVALSHA falls back to EVAL).
#[tokio::test]
async fn redis_keys_follow_the_documented_layout() {
    use redis::AsyncCommands;
    let mut raw = common::redis_connection().await;
    let e = StockEngine::redis(raw.clone());
    assert_eq!(
        (keys::sale(5), keys::buyers(5), keys::idempotency(5), keys::reservations(5)),
        ("sale:{5}".into(), "sale:{5}:buyers".into(), "sale:{5}:idem".into(), "sale:{5}:reservations".into())
    );
    assert_eq!(
        (keys::product_stock(123), keys::product_order("c1")),
        ("product:stock:v1:123".into(), "product:order:v1:c1".into())
    );

    e.set_product_stock(123, 7).await.unwrap();
    assert_eq!(raw.get::<_, i64>("product:stock:v1:123").await.unwrap(), 7);
    raw.set::<_, _, ()>("product:stock:v1:124", 3).await.unwrap();
    assert_eq!(e.product_stock(124).await.unwrap(), Some(3), "written by the product service");

    e.load_sale(&sale(5, 10, 3)).await.unwrap();
    let hash: std::collections::HashMap<String, i64> = raw.hgetall("sale:{5}").await.unwrap();
    let expected = [
        ("product_id", 7),
        ("price_cents", 12_000),
        ("opens_at_ms", OPENS),
        ("closes_at_ms", CLOSES),
        ("per_user_limit", 3),
        ("initial", 10),
        ("remaining", 10),
        ("reserved", 0),
        ("sold", 0),
        ("closed", 0),
    ];
    let expected: std::collections::HashMap<String, i64> = expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(hash, expected);

    redis::cmd("SCRIPT").arg("FLUSH").query_async::<()>(&mut raw).await.unwrap();
    assert_eq!(
        e.reserve(&ReservationRequest {
            sale: SaleId(5),
            user: UserId(1),
            key: "k",
            quantity: Quantity::new(2).unwrap(),
            order: "o1",
            at_ms: OPENS,
            turn_ends_ms: None,
        })
        .await
        .unwrap(),
        reserved("o1", 2, 8, false)
    );
    assert_eq!(raw.hget::<_, _, i64>("sale:{5}:buyers", "1").await.unwrap(), 2);
    assert_eq!(raw.hget::<_, _, String>("sale:{5}:idem", "1:k").await.unwrap(), "o1");
    assert_eq!(raw.hget::<_, _, String>("sale:{5}:reservations", "o1").await.unwrap(), "1:2:R");
    e.confirm(5, "o1").await.unwrap();
    assert_eq!(raw.hget::<_, _, String>("sale:{5}:reservations", "o1").await.unwrap(), "1:2:S");
    e.close_sale(5).await.unwrap();
    assert_eq!(raw.hget::<_, _, i64>("sale:{5}", "closed").await.unwrap(), 1);

    e.reserve_products("c1", &[(123, 2)]).await.unwrap().unwrap();
    let order: std::collections::HashMap<String, String> = raw.hgetall("product:order:v1:c1").await.unwrap();
    let expected: std::collections::HashMap<String, String> =
        [("123".into(), "2".into()), ("state".into(), "R".into())].into();
    assert_eq!(order, expected);
}

/// Seeding never overwrites live stock; open reservations are exactly those neither
/// confirmed nor released (what the orphan sweeper of the order service looks at).
#[tokio::test]
async fn seeding_and_open_reservations_agree_on_both_backends() {
    for e in engines().await {
        let name = e.backend_name();
        assert!(e.seed_product_stock(9, 5).await.unwrap(), "{name}: first seed sets");
        e.reserve_products("c9", &[(9, 2)]).await.unwrap().unwrap();
        assert!(!e.seed_product_stock(9, 5).await.unwrap(), "{name}: a second seed must not overwrite");
        assert_eq!(e.product_stock(9).await.unwrap(), Some(3), "{name}: the decrement survives a late seed");

        e.load_sale(&sale(6, 10, 5)).await.unwrap();
        for (user, order) in [(1, "a"), (2, "b"), (3, "c")] {
            e.reserve(&ReservationRequest {
                sale: SaleId(6),
                user: UserId(user),
                key: order,
                quantity: Quantity::new(user).unwrap(),
                order,
                at_ms: OPENS,
                turn_ends_ms: None,
            })
            .await
            .unwrap();
        }
        e.confirm(6, "a").await.unwrap();
        e.release(6, "b").await.unwrap();
        let open = e.open_reservations(6).await.unwrap();
        assert_eq!(
            open,
            vec![goodsmall_sale::OpenReservation { order_id: "c".into(), user_id: 3, quantity: 3 }],
            "{name}"
        );
        assert!(e.open_reservations(404).await.unwrap().is_empty(), "{name}: unknown sale");
    }
}

/// A big drop's open reservations come back whole, across many scan batches.
#[tokio::test]
async fn thousands_of_open_reservations_are_all_listed_on_both_backends() {
    const HELD: i64 = 2_500;
    for e in engines().await {
        let name = e.backend_name();
        e.load_sale(&sale(12, HELD + 10, 1)).await.unwrap();
        for user in 1..=HELD {
            let order = format!("order-{user}");
            e.reserve(&ReservationRequest {
                sale: SaleId(12),
                user: UserId(user),
                key: &order,
                quantity: Quantity::new(1).unwrap(),
                order: &order,
                at_ms: OPENS,
                turn_ends_ms: None,
            })
            .await
            .unwrap();
        }
        e.confirm(12, "order-1").await.unwrap();
        let open = e.open_reservations(12).await.unwrap();
        let users: std::collections::BTreeSet<i64> = open.iter().map(|r| r.user_id).collect();
        assert_eq!(
            (open.len(), users.len()),
            (HELD as usize - 1, HELD as usize - 1),
            "{name}: each open reservation once"
        );
        assert_eq!((users.first(), users.last()), (Some(&2), Some(&HELD)), "{name}");
    }
}

/// What the sold-out fast path reads to answer a retry: the first success only.
#[tokio::test]
async fn the_first_answer_of_a_key_is_readable_on_both_backends() {
    for e in engines().await {
        let name = e.backend_name();
        e.load_sale(&sale(8, 2, 2)).await.unwrap();
        assert_eq!(e.first_answer(SaleId(8), UserId(1), "k").await.unwrap(), KeyRecord::NoAnswer, "{name}");
        e.reserve(&ReservationRequest {
            sale: SaleId(8),
            user: UserId(1),
            key: "k",
            quantity: Quantity::new(2).unwrap(),
            order: "o1",
            at_ms: OPENS,
            turn_ends_ms: None,
        })
        .await
        .unwrap();
        assert_eq!(
            e.reserve(&ReservationRequest {
                sale: SaleId(8),
                user: UserId(2),
                key: "k",
                quantity: Quantity::new(1).unwrap(),
                order: "o2",
                at_ms: OPENS,
                turn_ends_ms: None,
            })
            .await
            .unwrap(),
            Reservation::Refused(Refusal::SoldOut),
            "{name}"
        );
        let first =
            goodsmall_sale::FirstAnswer { order_id: "o1".into(), quantity: 2, epoch: goodsmall_sale::FIRST_EPOCH };
        assert_eq!(e.first_answer(SaleId(8), UserId(1), "k").await.unwrap(), KeyRecord::First(first), "{name}");
        assert_eq!(
            e.first_answer(SaleId(8), UserId(2), "k").await.unwrap(),
            KeyRecord::NoAnswer,
            "{name}: refusals are not remembered"
        );
        assert_eq!(
            e.first_answer(SaleId(404), UserId(1), "k").await.unwrap(),
            KeyRecord::NoSale,
            "{name}: unknown sale"
        );
    }
}

/// A lost sale is rebuilt from its orders in one step: the rebuilt counters are what the
/// orders leave, settling works on the rebuilt reservations, the limit still counts what
/// each buyer holds, every recorded key answers its first order (released ones too) with
/// the rebuild's epoch, a buyer whose units went back is still a buyer, and a restore of
/// a live sale changes nothing.
#[tokio::test]
async fn a_restored_sale_holds_what_its_orders_hold_and_removal_deletes_it() {
    use goodsmall_sale::{FirstAnswer, RecordedOrder, Units};
    let order = |id: &str, user_id, quantity, units, key: Option<&str>| RecordedOrder {
        order_id: id.into(),
        user_id,
        quantity,
        units,
        idempotency_key: key.map(Into::into),
    };
    let orders = [
        order("a", 1, 2, Units::Sold, Some("buy-a")),
        order("b", 2, 1, Units::Reserved, Some("buy-b")),
        order("c", 3, 1, Units::Released, Some("buy-c")),
        order("d", 4, 1, Units::Reserved, None),
    ];
    on_both(|mut p| {
        let orders = orders.clone();
        async move {
            let n = p.name();
            let rebuilt = p.e.restore_sale(&sale(11, 5, 2), false, 77, &orders).await.unwrap();
            p.sales.insert(11);
            p.step(format!("restore -> {rebuilt}")).await;
            assert!(rebuilt, "{n}");
            let c = p.counters(11).await.unwrap();
            assert_eq!((c.initial, c.remaining, c.reserved, c.sold, c.closed), (5, 1, 2, 2, false), "{n}");
            assert_eq!(p.refused(11, 1, 1, OPENS).await, Refusal::PurchaseLimit, "{n}: buyer 1 holds 2 already");
            let epoch = |r: Reservation| match r {
                Reservation::Reserved { epoch, .. } => epoch,
                other => panic!("{n}: {other:?}"),
            };
            assert_eq!(
                p.reserve(11, 1, "buy-a", 1, "new", OPENS).await,
                Reservation::Reserved { order_id: "a".into(), quantity: 2, remaining: 1, repeated: true, epoch: 77 },
                "{n}"
            );
            assert_eq!(
                p.reserve(11, 3, "buy-c", 1, "new", OPENS).await,
                Reservation::Reserved { order_id: "c".into(), quantity: 1, remaining: 1, repeated: true, epoch: 77 },
                "{n}: a released order is still the key's first answer"
            );
            assert_eq!(
                p.e.first_answer(SaleId(11), UserId(2), "buy-b").await.unwrap(),
                KeyRecord::First(FirstAnswer { order_id: "b".into(), quantity: 1, epoch: 77 }),
                "{n}"
            );
            assert_eq!(
                p.e.first_answer(SaleId(11), UserId(4), "anything").await.unwrap(),
                KeyRecord::NoAnswer,
                "{n}: an order without a key answers no key"
            );
            let buyers = p.e.buyers(11, 10).await.unwrap().unwrap();
            assert_eq!(buyers, [1, 2, 3, 4].into(), "{n}: buyer 3's units went back, but it is still a buyer");
            assert_eq!(p.held(11, 3).await, 0, "{n}");
            assert_eq!(
                epoch(p.reserve(11, 3, "again", 1, "e", OPENS).await),
                77,
                "{n}: new reservations carry the rebuild's epoch"
            );
            assert_eq!(p.confirm(11, "b").await, Settle::Confirmed);
            assert_eq!(p.release(11, "a").await, Settle::Released);
            assert_eq!(
                p.release(11, "c").await,
                Settle::AlreadySettled,
                "{n}: released before the loss, released once"
            );
            let again = p.e.restore_sale(&sale(11, 50, 2), true, 78, &[]).await.unwrap();
            p.step(format!("restore again -> {again}")).await;
            assert!(!again, "{n}: a live sale is not rebuilt");
            let c = p.counters(11).await.unwrap();
            assert_eq!((c.initial, c.remaining, c.reserved, c.sold, c.closed), (5, 2, 2, 1, false), "{n}");
            assert_eq!(
                p.e.update_sale(&sale(11, 6, 2)).await.unwrap(),
                Some(LoadOutcome::Updated),
                "{n}: an update of a held sale"
            );
            assert!(p.e.remove_sale(11).await.unwrap(), "{n}");
            p.sales.remove(&11);
            assert_eq!(p.counters(11).await, None, "{n}: removed");
            assert_eq!(
                p.e.update_sale(&sale(11, 6, 2)).await.unwrap(),
                None,
                "{n}: an update never creates a lost sale"
            );
            assert_eq!(p.counters(11).await, None, "{n}: still absent");
            assert_eq!(p.e.open_reservations(11).await.unwrap(), vec![], "{n}");
            assert!(!p.e.remove_sale(11).await.unwrap(), "{n}: nothing left to remove");
            p
        }
    })
    .await;
}
