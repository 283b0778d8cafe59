//! The Redis backend: every decision is one Lua script (`redis::Script` runs EVALSHA
//! and loads the script on a cache miss).

use std::sync::Arc;

use redis::{aio::ConnectionManager, AsyncCommands, Script};

use crate::{keys, EngineError, FirstAnswer, KeyRecord, LoadOutcome, OpenReservation, Refusal, RecordedOrder, Reservation, SaleCounters, SaleDefinition, Settle, Units};

struct Scripts {
    load: Script,
    close: Script,
    halt: Script,
    reserve: Script,
    settle: Script,
    restore: Script,
    reserve_products: Script,
    release_products: Script,
}

#[derive(Clone)]
pub struct RedisEngine {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
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
        let found: i64 = self.scripts.halt.key(keys::sale(sale_id)).arg(i64::from(halted)).invoke_async(&mut self.conn.clone()).await?;
        Ok(found == 1)
    }

    pub async fn restore_sale(&self, d: &SaleDefinition, closed: bool, epoch: i64, orders: &[RecordedOrder]) -> Result<bool, EngineError> {
        let mut invocation = self.scripts.restore.key(keys::sale(d.sale_id));
        invocation.key(keys::buyers(d.sale_id)).key(keys::idempotency(d.sale_id)).key(keys::reservations(d.sale_id));
        invocation.arg(d.product_id).arg(d.price_cents).arg(d.opens_at_ms).arg(d.closes_at_ms).arg(d.per_user_limit).arg(d.stock).arg(i64::from(closed)).arg(epoch);
        for o in orders {
            let state = match o.units {
                Units::Reserved => "R",
                Units::Sold => "S",
                Units::Released => "X",
            };
            invocation.arg(&o.order_id).arg(o.user_id).arg(o.quantity).arg(state).arg(o.idempotency_key.as_deref().unwrap_or_default());
        }
        let rebuilt: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(rebuilt == 1)
    }

    pub async fn remove_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        let keys = [keys::sale(sale_id), keys::buyers(sale_id), keys::idempotency(sale_id), keys::reservations(sale_id)];
        let removed: i64 = self.conn.clone().del(&keys).await?;
        Ok(removed > 0)
    }

    pub async fn counters(&self, sale_id: i64) -> Result<Option<SaleCounters>, EngineError> {
        let fields: std::collections::HashMap<String, String> = self.conn.clone().hgetall(keys::sale(sale_id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let n = |k: &str| fields.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(Some(SaleCounters {
            sale_id,
            product_id: n("product_id"),
            initial: n("initial"),
            remaining: n("remaining"),
            reserved: n("reserved"),
            sold: n("sold"),
            price_cents: n("price_cents"),
            opens_at_ms: n("opens_at_ms"),
            closes_at_ms: n("closes_at_ms"),
            per_user_limit: n("per_user_limit"),
            closed: n("closed") == 1,
            halted: n("halted") == 1,
        }))
    }

    pub async fn held_by(&self, sale_id: i64, user_id: i64) -> Result<i64, EngineError> {
        let held: Option<i64> = self.conn.clone().hget(keys::buyers(sale_id), user_id).await?;
        Ok(held.unwrap_or(0))
    }

    pub async fn reserve(&self, sale_id: i64, user_id: i64, key: &str, quantity: i64, order_id: &str, now_ms: i64) -> Result<Reservation, EngineError> {
        let answer: Vec<redis::Value> = self
            .scripts
            .reserve
            .key(keys::sale(sale_id))
            .key(keys::buyers(sale_id))
            .key(keys::idempotency(sale_id))
            .key(keys::reservations(sale_id))
            .arg(user_id)
            .arg(key)
            .arg(quantity)
            .arg(order_id)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let text = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<String>(v).ok());
        let int = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<i64>(v).ok());
        let malformed = || EngineError::Protocol(format!("reserve: {answer:?}"));
        match text(0).as_deref() {
            Some("OK") => {
                let (Some(order_id), Some(quantity), Some(remaining), Some(repeated), Some(epoch)) = (text(1), int(2), int(3), int(4), int(5)) else {
                    return Err(malformed());
                };
                Ok(Reservation::Reserved { order_id, quantity, remaining, repeated: repeated == 1, epoch })
            }
            Some("NO") => text(1).as_deref().and_then(Refusal::from_code).map(Reservation::Refused).ok_or_else(malformed),
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
        let (epoch, initial): (Option<i64>, Option<i64>) = redis::cmd("HMGET").arg(keys::sale(sale_id)).arg("epoch").arg("initial").query_async(&mut conn).await?;
        if initial.is_none() {
            return Ok(KeyRecord::NoSale);
        }
        let Some(order_id) = conn.hget::<_, _, Option<String>>(keys::idempotency(sale_id), format!("{user_id}:{key}")).await? else { return Ok(KeyRecord::NoAnswer) };
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

    pub async fn buyers(&self, sale_id: i64, at_most: usize) -> Result<Option<std::collections::HashSet<i64>>, EngineError> {
        let mut conn = self.conn.clone();
        let count: usize = conn.hlen(keys::buyers(sale_id)).await?;
        if count > at_most {
            return Ok(None);
        }
        let ids: Vec<String> = conn.hkeys(keys::buyers(sale_id)).await?;
        ids.iter().map(|id| id.parse().map_err(|_| EngineError::Protocol(format!("buyer id {id}")))).collect::<Result<_, _>>().map(Some)
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
            Some("SHORT") => Ok(Err(answer.get(1).and_then(|p| p.parse().ok()).unwrap_or(0))),
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
            let product_id: i64 = field.parse().map_err(|_| EngineError::Protocol(format!("{order}: field {field}")))?;
            invocation.key(keys::product_stock(product_id)).arg(product_id);
        }
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }
}
