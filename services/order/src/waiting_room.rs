//! A sale's waiting room as shoppers meet it: joining (once per account, a few joins a
//! minute per address), their place, and the admission that lets them buy: a token
//! signed with the sale's own key (kept in the order database, so every replica and
//! every restart verifies the same way), bound to the account and the sale, ending with
//! the turn. The queue itself is the stock engine's (`goodsmall_sale::queue`).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use goodsmall_platform::{
    clock::{to_datetime, TimeOutOfRange},
    http::ClientAddress,
    kv::{Kv, KvError},
};
use goodsmall_sale::{
    queue::{QueueCounts, QueuePlace, QueueRefusal},
    EngineError, SaleId, StockEngine, UserId,
};
use ring::hmac;

use crate::{
    queue_snapshots::QueueSnapshots,
    sales::{Sales, SalesError},
};

/// The window of `order.queue_joins_per_address_per_minute`.
const JOIN_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum WaitingRoomError {
    #[error("waiting room: the stock engine failed")]
    Engine(#[from] EngineError),
    #[error("waiting room: reading the sale's admission key failed")]
    Sale(#[from] SalesError),
    #[error("waiting room: counting the address's joins failed")]
    Throttle(#[from] KvError),
    #[error("waiting room: sale {0}'s admission key is not 32 bytes of hex")]
    CorruptKey(i64),
    #[error("waiting room: sale {0} is not recorded")]
    NoSale(i64),
    #[error("waiting room: the stock engine answered a time no date holds")]
    Time(#[from] TimeOutOfRange),
}

/// Why an admission does not let its bearer buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionProblem {
    /// Not a token, forged, or another account's or sale's.
    Invalid,
}

/// What a shopper is answered about their place: the engine's [`QueuePlace`], with
/// times as times and the admission signed.
pub enum Ticket {
    PreQueue { joined: u64, opens_at: DateTime<Utc> },
    Waiting { position: u64, units_left: i64, admit_per_second: i64, number: u64 },
    Admitted { token: String, turn_ends: DateTime<Utc>, number: u64 },
    Expired { number: u64 },
    SoldOut,
    Closed,
}

/// A join's or a poll's outcome.
pub enum Answer {
    Place(Ticket),
    Refused(QueueRefusal),
    /// The address joined too often; try again after this long.
    TooManyJoins(Duration),
}

#[derive(Clone)]
pub struct WaitingRoom {
    engine: StockEngine,
    sales: Sales,
    kv: Kv,
    joins_per_address: i64,
    snapshots: QueueSnapshots,
    /// Each sale's signing key, read once.
    keys: Arc<RwLock<HashMap<SaleId, hmac::Key>>>,
}

impl WaitingRoom {
    /// `joins_per_address`: joins of one sale's queue a client address may make a minute.
    pub fn new(engine: StockEngine, sales: Sales, kv: Kv, joins_per_address: i64, snapshots: QueueSnapshots) -> Self {
        Self { engine, sales, kv, joins_per_address, snapshots, keys: Arc::default() }
    }

    /// Joins (a retry gets the same place), within the address's joins.
    pub async fn join(&self, sale: SaleId, user: UserId, from: ClientAddress) -> Result<Answer, WaitingRoomError> {
        let now = goodsmall_platform::clock::now_millis();
        // A shopper already in the queue is answered without counting against the address.
        match self.engine.queue_place(sale, user, now).await? {
            Err(QueueRefusal::NotJoined) => {}
            other => return self.engine_answer(sale, user, other).await,
        }
        let counter = format!("queue:joins:{sale}:{}", from.group());
        if self.kv.incr(&counter, JOIN_WINDOW).await? > self.joins_per_address {
            let wait = self.kv.ttl(&counter).await?.unwrap_or(JOIN_WINDOW);
            return Ok(Answer::TooManyJoins(wait));
        }
        let joined = self.engine.join_queue(sale, user, now).await?;
        self.engine_answer(sale, user, joined).await
    }

    /// The shopper's place now (their admission, when it is their turn): from this
    /// replica's memory when the shopper is far from the front ([`QueueSnapshots`]).
    pub async fn place(&self, sale: SaleId, user: UserId) -> Result<Answer, WaitingRoomError> {
        if let Some(waiting) = self.snapshots.waiting(sale, user) {
            return self.answer(sale, user, Ok(waiting)).await;
        }
        let now = goodsmall_platform::clock::now_millis();
        let place = self.engine.queue_place(sale, user, now).await?;
        self.engine_answer(sale, user, place).await
    }

    /// An answer of the engine's, remembered for the polls to come.
    async fn engine_answer(
        &self,
        sale: SaleId,
        user: UserId,
        place: Result<QueuePlace, QueueRefusal>,
    ) -> Result<Answer, WaitingRoomError> {
        if let Ok(place) = &place {
            self.snapshots.learn(sale, user, place);
        }
        self.answer(sale, user, place).await
    }

    async fn answer(
        &self,
        sale: SaleId,
        user: UserId,
        place: Result<QueuePlace, QueueRefusal>,
    ) -> Result<Answer, WaitingRoomError> {
        let place = match place {
            Ok(place) => place,
            Err(refusal) => return Ok(Answer::Refused(refusal)),
        };
        Ok(Answer::Place(match place {
            QueuePlace::PreQueue { joined, opens_at_ms } => {
                Ticket::PreQueue { joined, opens_at: to_datetime(opens_at_ms)? }
            }
            QueuePlace::Waiting { position, units_left, admit_per_second, number } => {
                Ticket::Waiting { position, units_left, admit_per_second, number }
            }
            QueuePlace::Admitted { turn_ends_ms, number } => Ticket::Admitted {
                token: self.sign(sale, user, turn_ends_ms).await?,
                turn_ends: to_datetime(turn_ends_ms)?,
                number,
            },
            QueuePlace::Expired { number } => Ticket::Expired { number },
            QueuePlace::SoldOut => Ticket::SoldOut,
            QueuePlace::Closed => Ticket::Closed,
        }))
    }

    /// The queue in numbers; `None` when the engine does not hold the sale (yet).
    pub async fn counts(&self, sale: SaleId) -> Result<Option<QueueCounts>, WaitingRoomError> {
        let now = goodsmall_platform::clock::now_millis();
        Ok(self.engine.queue_counts(sale, now).await?.ok())
    }

    /// The end of the turn an admission grants `user` in `sale`, when it is genuine
    /// (ended or not: the engine answers an ended turn, after a retry's first answer).
    pub async fn verify(
        &self,
        sale: SaleId,
        user: UserId,
        token: &str,
    ) -> Result<Result<i64, AdmissionProblem>, WaitingRoomError> {
        let Some((claims, signature)) = token.rsplit_once('.') else { return Ok(Err(AdmissionProblem::Invalid)) };
        let Some(turn_ends_ms) = parse_claims(claims, sale, user) else { return Ok(Err(AdmissionProblem::Invalid)) };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return Ok(Err(AdmissionProblem::Invalid)) };
        // A token for a sale that does not exist is not genuine either.
        let key = match self.key(sale).await {
            Err(WaitingRoomError::NoSale(_)) => return Ok(Err(AdmissionProblem::Invalid)),
            key => key?,
        };
        Ok(match hmac::verify(&key, claims.as_bytes(), &signature) {
            Ok(()) => Ok(turn_ends_ms),
            Err(_) => Err(AdmissionProblem::Invalid),
        })
    }

    async fn sign(&self, sale: SaleId, user: UserId, turn_ends_ms: i64) -> Result<String, WaitingRoomError> {
        let claims = format!("{sale}.{user}.{turn_ends_ms}");
        let signature = hmac::sign(&self.key(sale).await?, claims.as_bytes());
        Ok(format!("{claims}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    async fn key(&self, sale: SaleId) -> Result<hmac::Key, WaitingRoomError> {
        if let Some(key) = self.keys.read().expect("admission keys").get(&sale) {
            return Ok(key.clone());
        }
        let secret = self.sales.admission_secret(sale.0).await?.ok_or(WaitingRoomError::NoSale(sale.0))?;
        let bytes = decode_hex(&secret).ok_or(WaitingRoomError::CorruptKey(sale.0))?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        self.keys.write().expect("admission keys").insert(sale, key.clone());
        Ok(key)
    }
}

/// `<sale>.<user>.<turn's end>`, for this sale and account only.
fn parse_claims(claims: &str, sale: SaleId, user: UserId) -> Option<i64> {
    let mut parts = claims.split('.');
    let (for_sale, for_user, ends) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || for_sale != sale.to_string() || for_user != user.to_string() {
        return None;
    }
    ends.parse().ok()
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// A new signing key for a sale: 32 random bytes, in hex.
pub fn new_secret() -> String {
    rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_bind_the_sale_and_the_account() {
        assert_eq!(parse_claims("7.42.1000", SaleId(7), UserId(42)), Some(1000));
        for other in ["8.42.1000", "7.43.1000", "7.42", "7.42.1000.1", "7.42.soon", "07.42.1000"] {
            assert_eq!(parse_claims(other, SaleId(7), UserId(42)), None, "{other}");
        }
    }

    #[test]
    fn a_secret_is_32_random_bytes_in_hex() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(decode_hex(&a).is_some());
        assert!(decode_hex(&a[..62]).is_none());
        assert!(decode_hex(&a.replace(|c: char| c.is_ascii_digit(), "z")).is_none());
    }
}
