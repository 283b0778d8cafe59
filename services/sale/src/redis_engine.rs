//! The Redis backend: every decision is one Lua script (`redis::Script` runs EVALSHA
//! and loads the script on a cache miss).

use std::{collections::HashMap, sync::Arc};

use redis::{aio::ConnectionManager, AsyncCommands, Script};

use crate::{
    keys, EngineError, FirstAnswer, KeyRecord, LoadOutcome, OpenReservation, RecordedOrder, Refusal, Reservation,
    ReservationRequest, SaleCounters, SaleDefinition, Settle, Units,
};

pub(crate) struct Scripts {
    load: Script,
    close: Script,
    halt: Script,
    reserve: Script,
    settle: Script,
    restore: Script,
    reserve_products: Script,
    release_products: Script,
    pub(crate) queue: Script,
}

#[derive(Clone)]
pub struct RedisEngine {
    pub(crate) conn: ConnectionManager,
    pub(crate) scripts: Arc<Scripts>,
}

impl RedisEngine {
    pub fn new(conn: ConnectionManager) -> Self {
        let scripts = Scripts {
            load: Script::new(include_str!("scripts/load.lua")),
            close: Script::new(include_str!("scripts/close.lua")),
            halt: Script::new(include_str!("scripts/halt.lua")),
            reserve: Script::new(include_str!("scripts/reserve.lua")),
            settle: Script::new(include_str!("scripts/settle.lua")),
            restore: Script::new(include_str!("scripts/restore.lua")),
            reserve_products: Script::new(include_str!("scripts/reserve_products.lua")),
            release_products: Script::new(include_str!("scripts/release_products.lua")),
            queue: Script::new(include_str!("scripts/queue.lua")),
        };
        Self { conn, scripts: Arc::new(scripts) }
    }

    pub async fn load_sale(&self, d: &SaleDefinition) -> Result<LoadOutcome, EngineError> {
        self.load(d, true).await?.ok_or_else(|| EngineError::Protocol("load: a created sale is absent".into()))
    }

    pub async fn update_sale(&self, d: &SaleDefinition) -> Result<Option<LoadOutcome>, EngineError> {
        self.load(d, false).await
    }

    async fn load(&self, d: &SaleDefinition, create: bool) -> Result<Option<LoadOutcome>, EngineError> {
        let answer: Vec<redis::Value> = self
            .scripts
            .load
            .key(keys::sale(d.sale_id))
            .arg(d.product_id)
            .arg(d.price_cents)
            .arg(d.opens_at_ms)
            .arg(d.closes_at_ms)
            .arg(d.per_user_limit)
            .arg(d.stock)
            .arg(i64::from(create))
            .arg(&queue_args(d))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let word = answer.first().and_then(|v| redis::from_redis_value::<String>(v).ok());
        match word.as_deref() {
            Some("CREATED") => Ok(Some(LoadOutcome::Created)),
            Some("UPDATED") => Ok(Some(LoadOutcome::Updated)),
            Some("UNCHANGED") => Ok(Some(LoadOutcome::Unchanged)),
            Some("ABSENT") => Ok(None),
            Some("BELOW_COMMITTED") => {
                let committed = answer.get(1).and_then(|v| redis::from_redis_value::<i64>(v).ok());
                let committed = committed.ok_or_else(|| EngineError::Protocol(format!("load: {answer:?}")))?;
                Err(EngineError::StockBelowCommitted { sale_id: d.sale_id, stock: d.stock, committed })
            }
            _ => Err(EngineError::Protocol(format!("load: {answer:?}"))),
        }
    }

    pub async fn close_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        let closed: i64 = self.scripts.close.key(keys::sale(sale_id)).invoke_async(&mut self.conn.clone()).await?;
        Ok(closed == 1)
    }

    pub async fn set_halted(&self, sale_id: i64, halted: bool) -> Result<bool, EngineError> {
        let found: i64 = self
            .scripts
            .halt
            .key(keys::sale(sale_id))
            .arg(i64::from(halted))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(found == 1)
    }

    pub async fn restore_sale(
        &self,
        d: &SaleDefinition,
        closed: bool,
        epoch: i64,
        orders: &[RecordedOrder],
    ) -> Result<bool, EngineError> {
        let mut invocation = self.scripts.restore.key(keys::sale(d.sale_id));
        for key in &keys::all_of_sale(d.sale_id)[1..] {
            invocation.key(key);
        }
        invocation
            .arg(d.product_id)
            .arg(d.price_cents)
            .arg(d.opens_at_ms)
            .arg(d.closes_at_ms)
            .arg(d.per_user_limit)
            .arg(d.stock)
            .arg(i64::from(closed))
            .arg(epoch)
            .arg(&queue_args(d));
        for o in orders {
            let state = match o.units {
                Units::Reserved => "R",
                Units::Sold => "S",
                Units::Released => "X",
            };
            invocation
                .arg(&o.order_id)
                .arg(o.user_id)
                .arg(o.quantity)
                .arg(state)
                .arg(o.idempotency_key.as_deref().unwrap_or_default());
        }
        let rebuilt: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(rebuilt == 1)
    }

    pub async fn remove_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        let removed: i64 = self.conn.clone().del(&keys::all_of_sale(sale_id)).await?;
        Ok(removed > 0)
    }

    pub async fn counters(&self, sale_id: i64) -> Result<Option<SaleCounters>, EngineError> {
        let key = keys::sale(sale_id);
        let fields: HashMap<String, String> = self.conn.clone().hgetall(&key).await?;
        // No hash: no such sale (never loaded, or removed).
        if fields.is_empty() {
            return Ok(None);
        }
        counters_from_hash(sale_id, &key, &fields).map(Some)
    }

    pub async fn held_by(&self, sale_id: i64, user_id: i64) -> Result<i64, EngineError> {
        // No field: the shopper holds nothing yet. A value that is not a number fails
        // the conversion to i64 (a Redis type error).
        let held: Option<i64> = self.conn.clone().hget(keys::buyers(sale_id), user_id).await?;
        Ok(held.unwrap_or(0))
    }

    pub async fn reserve(&self, r: &ReservationRequest<'_>) -> Result<Reservation, EngineError> {
        let (sale_id, user_id, key, quantity, order_id, now_ms) =
            (r.sale.0, r.user.0, r.key, r.quantity.get(), r.order, r.at_ms);
        let answer: Vec<redis::Value> = self
            .scripts
            .reserve
            .key(keys::sale(sale_id))
            .key(keys::buyers(sale_id))
            .key(keys::idempotency(sale_id))
            .key(keys::reservations(sale_id))
            .key(keys::pending_turns(sale_id))
            .arg(user_id)
            .arg(key)
            .arg(quantity)
            .arg(order_id)
            .arg(now_ms)
            .arg(r.turn_ends_ms.unwrap_or(0))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let text = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<String>(v).ok());
        let int = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<i64>(v).ok());
        let malformed = || EngineError::Protocol(format!("reserve: {answer:?}"));
        match text(0).as_deref() {
            Some("OK") => {
                let (Some(order_id), Some(quantity), Some(remaining), Some(repeated), Some(epoch)) =
                    (text(1), int(2), int(3), int(4), int(5))
                else {
                    return Err(malformed());
                };
                Ok(Reservation::Reserved { order_id, quantity, remaining, repeated: repeated == 1, epoch })
            }
            Some("NO") => {
                text(1).as_deref().and_then(Refusal::from_code).map(Reservation::Refused).ok_or_else(malformed)
            }
            _ => Err(malformed()),
        }
    }

    pub async fn settle(&self, sale_id: i64, order_id: &str, confirm: bool) -> Result<Settle, EngineError> {
        let answer: String = self
            .scripts
            .settle
            .key(keys::sale(sale_id))
            .key(keys::buyers(sale_id))
            .key(keys::reservations(sale_id))
            .arg(order_id)
            .arg(if confirm { "confirm" } else { "release" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match answer.as_str() {
            "CONFIRMED" => Settle::Confirmed,
            "RELEASED" => Settle::Released,
            "ALREADY" => Settle::AlreadySettled,
            "UNKNOWN" => Settle::Unknown,
            other => return Err(EngineError::Protocol(other.into())),
        })
    }

    pub async fn set_product_stock(&self, product_id: i64, available: i64) -> Result<(), EngineError> {
        Ok(self.conn.clone().set(keys::product_stock(product_id), available).await?)
    }

    pub async fn seed_product_stock(&self, product_id: i64, available: i64) -> Result<bool, EngineError> {
        Ok(self.conn.clone().set_nx(keys::product_stock(product_id), available).await?)
    }

    pub async fn first_answer(&self, sale_id: i64, user_id: i64, key: &str) -> Result<KeyRecord, EngineError> {
        let mut conn = self.conn.clone();
        // The epoch first: see StockEngine::first_answer. Every sale hash has `initial`.
        let (epoch, initial): (Option<i64>, Option<i64>) =
            redis::cmd("HMGET").arg(keys::sale(sale_id)).arg("epoch").arg("initial").query_async(&mut conn).await?;
        if initial.is_none() {
            return Ok(KeyRecord::NoSale);
        }
        let Some(order_id) =
            conn.hget::<_, _, Option<String>>(keys::idempotency(sale_id), format!("{user_id}:{key}")).await?
        else {
            return Ok(KeyRecord::NoAnswer);
        };
        let reservation: Option<String> = conn.hget(keys::reservations(sale_id), &order_id).await?;
        // `<user id>:<quantity>:<state>`; a first answer without its reservation has none to report.
        let quantity = match reservation.as_deref().map(|r| r.split(':').nth(1).map(str::parse::<i64>)) {
            None => 0,
            Some(Some(Ok(quantity))) => quantity,
            Some(_) => return Err(EngineError::Protocol(format!("reservation {order_id}: {reservation:?}"))),
        };
        Ok(KeyRecord::First(FirstAnswer { order_id, quantity, epoch: epoch.unwrap_or(crate::FIRST_EPOCH) }))
    }

    pub async fn buyer_count(&self, sale_id: i64) -> Result<usize, EngineError> {
        Ok(self.conn.clone().hlen(keys::buyers(sale_id)).await?)
    }

    pub async fn buyers(
        &self,
        sale_id: i64,
        at_most: usize,
    ) -> Result<Option<std::collections::HashSet<i64>>, EngineError> {
        let mut conn = self.conn.clone();
        let count: usize = conn.hlen(keys::buyers(sale_id)).await?;
        if count > at_most {
            return Ok(None);
        }
        let ids: Vec<String> = conn.hkeys(keys::buyers(sale_id)).await?;
        ids.iter()
            .map(|id| id.parse().map_err(|_| EngineError::Protocol(format!("buyer id {id}"))))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub async fn open_reservations(&self, sale_id: i64) -> Result<Vec<OpenReservation>, EngineError> {
        let mut conn = self.conn.clone();
        let mut found = Vec::new();
        // HSCAN's default batch is 10 entries: a drop's 100k reservations would take
        // 10k round trips. A thousand per call keeps each call short for Redis too.
        let mut scan = redis::cmd("HSCAN");
        scan.arg(keys::reservations(sale_id)).cursor_arg(0).arg("COUNT").arg(1000);
        let mut entries = scan.iter_async::<(String, String)>(&mut conn).await?;
        while let Some((order_id, value)) = entries.next_item().await {
            // `<user id>:<quantity>:<state>`
            let mut parts = value.split(':');
            let (Some(user), Some(quantity), Some("R")) = (parts.next(), parts.next(), parts.next()) else { continue };
            let (Ok(user_id), Ok(quantity)) = (user.parse(), quantity.parse()) else {
                return Err(EngineError::Protocol(format!("reservation {order_id}: {value}")));
            };
            found.push(OpenReservation { order_id, user_id, quantity });
        }
        Ok(found)
    }

    pub async fn product_stock(&self, product_id: i64) -> Result<Option<i64>, EngineError> {
        Ok(self.conn.clone().get(keys::product_stock(product_id)).await?)
    }

    pub async fn reserve_products(&self, order_id: &str, lines: &[(i64, i64)]) -> Result<Result<(), i64>, EngineError> {
        let mut invocation = self.scripts.reserve_products.key(keys::product_order(order_id));
        for (product_id, _) in lines {
            invocation.key(keys::product_stock(*product_id));
        }
        for (product_id, _) in lines {
            invocation.arg(*product_id);
        }
        for (_, quantity) in lines {
            invocation.arg(*quantity);
        }
        let answer: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        match answer.first().map(String::as_str) {
            Some("OK") => Ok(Ok(())),
            Some("SHORT") => match answer.get(1).map(|p| p.parse::<i64>()) {
                Some(Ok(product_id)) => Ok(Err(product_id)),
                _ => Err(EngineError::Protocol(format!("reserve_products: {answer:?}"))),
            },
            other => Err(EngineError::Protocol(format!("{other:?}"))),
        }
    }

    pub async fn release_products(&self, order_id: &str) -> Result<bool, EngineError> {
        // The script must name every key it touches, so read which products the order
        // holds first; the record's lines never change, only its state does.
        let order = keys::product_order(order_id);
        let fields: Vec<String> = self.conn.clone().hkeys(&order).await?;
        let mut invocation = self.scripts.release_products.key(&order);
        for field in fields.iter().filter(|f| *f != keys::PRODUCT_ORDER_STATE) {
            let product_id: i64 =
                field.parse().map_err(|_| EngineError::Protocol(format!("{order}: field {field}")))?;
            invocation.key(keys::product_stock(product_id)).arg(product_id);
        }
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }
}

/// The sale hash as counters. load.lua and restore.lua write every field at once except
/// `halted`, which is absent until the merchant first halts the sale.
/// The waiting room's terms as `load.lua` and `restore.lua` take them ('' for none).
fn queue_args(d: &SaleDefinition) -> [String; 3] {
    match d.queue {
        Some(q) => [q.pre_queue_ms.to_string(), q.admit_per_second.to_string(), q.turn_ttl_ms.to_string()],
        None => Default::default(),
    }
}

fn counters_from_hash(sale_id: i64, key: &str, fields: &HashMap<String, String>) -> Result<SaleCounters, EngineError> {
    let parse = |field: &'static str, value: &String| {
        value.parse::<i64>().map_err(|source| EngineError::Corrupt {
            key: key.to_owned(),
            field,
            value: value.clone(),
            source,
        })
    };
    let n = |field: &'static str| match fields.get(field) {
        Some(value) => parse(field, value),
        None => Err(EngineError::MissingField { key: key.to_owned(), field }),
    };
    let halted = fields.get("halted").map(|value| parse("halted", value)).transpose()?;
    Ok(SaleCounters {
        sale_id,
        product_id: n("product_id")?,
        initial: n("initial")?,
        remaining: n("remaining")?,
        reserved: n("reserved")?,
        sold: n("sold")?,
        price_cents: n("price_cents")?,
        opens_at_ms: n("opens_at_ms")?,
        closes_at_ms: n("closes_at_ms")?,
        per_user_limit: n("per_user_limit")?,
        closed: n("closed")? == 1,
        halted: halted == Some(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made_by_load() -> HashMap<String, String> {
        [
            ("product_id", "7"),
            ("price_cents", "12000"),
            ("opens_at_ms", "1000"),
            ("closes_at_ms", "2000"),
            ("per_user_limit", "2"),
            ("initial", "10"),
            ("remaining", "6"),
            ("reserved", "3"),
            ("sold", "1"),
            ("closed", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn a_sale_hash_reads_as_its_counters_and_an_absent_halted_is_not_halted() {
        let mut fields = made_by_load();
        let c = counters_from_hash(1, "sale:{1}", &fields).unwrap();
        assert_eq!(
            (c.product_id, c.initial, c.remaining, c.reserved, c.sold, c.closed, c.halted),
            (7, 10, 6, 3, 1, false, false)
        );
        fields.insert("halted".into(), "1".into());
        assert!(counters_from_hash(1, "sale:{1}", &fields).unwrap().halted);
    }

    #[test]
    fn a_field_that_is_not_a_number_is_an_error_naming_it() {
        for field in ["sold", "closed", "halted"] {
            let mut fields = made_by_load();
            fields.insert(field.into(), "lots".into());
            match counters_from_hash(1, "sale:{1}", &fields) {
                Err(EngineError::Corrupt { key, field: named, value, .. }) => {
                    assert_eq!((key.as_str(), named, value.as_str()), ("sale:{1}", field, "lots"))
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_field_is_an_error_not_zero() {
        let mut fields = made_by_load();
        fields.remove("remaining");
        match counters_from_hash(1, "sale:{1}", &fields) {
            Err(EngineError::MissingField { field: "remaining", .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    /// Through a real Redis: the stored value comes back in the error.
    #[tokio::test]
    async fn redis_counters_refuse_a_corrupt_field() {
        let client = redis::Client::open(goodsmall_testkit::redis_url().await).unwrap();
        let mut conn = ConnectionManager::new(client).await.unwrap();
        let engine = RedisEngine::new(conn.clone());
        let sale = SaleDefinition {
            sale_id: 1,
            product_id: 7,
            stock: 10,
            price_cents: 12_000,
            opens_at_ms: 1_000,
            closes_at_ms: 2_000,
            per_user_limit: 2,
            queue: None,
        };
        engine.load_sale(&sale).await.unwrap();
        assert_eq!(engine.counters(1).await.unwrap().map(|c| (c.remaining, c.halted)), Some((10, false)));
        let () = conn.hset(keys::sale(1), "sold", "lots").await.unwrap();
        match engine.counters(1).await {
            Err(EngineError::Corrupt { field: "sold", value, .. }) => assert_eq!(value, "lots"),
            other => panic!("{other:?}"),
        }
        assert_eq!(engine.held_by(1, 42).await.unwrap(), 0, "a shopper without units holds none");
    }
}
