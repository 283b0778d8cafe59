//! The waiting room in Redis: every call is one run of `scripts/queue.lua`.

use crate::{
    keys,
    queue::{draw_place_key, QueueCounts, QueuePlace, QueueRefusal},
    redis_engine::RedisEngine,
    EngineError,
};

/// What `queue.lua` is asked.
#[derive(Clone, Copy)]
enum Op {
    Join,
    Place,
    Count,
}

impl RedisEngine {
    async fn queue_call(
        &self,
        sale_id: i64,
        op: Op,
        user_id: i64,
        now_ms: i64,
    ) -> Result<Vec<redis::Value>, EngineError> {
        let mut invocation = self.scripts.queue.key(keys::sale(sale_id));
        invocation.key(keys::queue(sale_id)).key(keys::turns(sale_id)).key(keys::pending_turns(sale_id));
        let op = match op {
            Op::Join => "JOIN",
            Op::Place => "PLACE",
            Op::Count => "COUNT",
        };
        invocation.arg(op).arg(user_id).arg(now_ms).arg(draw_place_key());
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    pub async fn join_queue(
        &self,
        sale_id: i64,
        user_id: i64,
        now_ms: i64,
    ) -> Result<Result<QueuePlace, QueueRefusal>, EngineError> {
        place(self.queue_call(sale_id, Op::Join, user_id, now_ms).await?)
    }

    pub async fn queue_place(
        &self,
        sale_id: i64,
        user_id: i64,
        now_ms: i64,
    ) -> Result<Result<QueuePlace, QueueRefusal>, EngineError> {
        place(self.queue_call(sale_id, Op::Place, user_id, now_ms).await?)
    }

    pub async fn queue_counts(
        &self,
        sale_id: i64,
        now_ms: i64,
    ) -> Result<Result<QueueCounts, QueueRefusal>, EngineError> {
        let answer = self.queue_call(sale_id, Op::Count, 0, now_ms).await?;
        let text = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<String>(v).ok());
        let int = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<u64>(v).ok());
        match (text(0).as_deref(), int(1), int(2), int(3), int(4)) {
            (Some("COUNTS"), Some(joined), Some(admitted), Some(expired), Some(in_turn)) => {
                Ok(Ok(QueueCounts { joined, admitted, expired, in_turn }))
            }
            (Some("NO"), ..) => refusal(&answer, text(1)),
            _ => Err(EngineError::Protocol(format!("queue: {answer:?}"))),
        }
    }
}

fn refusal<T>(answer: &[redis::Value], code: Option<String>) -> Result<Result<T, QueueRefusal>, EngineError> {
    match code.as_deref().and_then(QueueRefusal::from_code) {
        Some(refusal) => Ok(Err(refusal)),
        None => Err(EngineError::Protocol(format!("queue: {answer:?}"))),
    }
}

fn place(answer: Vec<redis::Value>) -> Result<Result<QueuePlace, QueueRefusal>, EngineError> {
    let text = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<String>(v).ok());
    let int = |i: usize| answer.get(i).and_then(|v| redis::from_redis_value::<i64>(v).ok());
    let place = match (text(0).as_deref(), int(1), int(2), int(3), int(4)) {
        (Some("NO"), ..) => return refusal(&answer, text(1)),
        (Some("PRE_QUEUE"), Some(joined), Some(opens_at_ms), ..) => {
            QueuePlace::PreQueue { joined: joined.unsigned_abs(), opens_at_ms }
        }
        (Some("WAITING"), Some(position), Some(units_left), Some(admit_per_second), Some(number)) => {
            QueuePlace::Waiting {
                position: position.unsigned_abs(),
                units_left,
                admit_per_second,
                number: number.unsigned_abs(),
            }
        }
        (Some("ADMITTED"), Some(turn_ends_ms), Some(number), ..) => {
            QueuePlace::Admitted { turn_ends_ms, number: number.unsigned_abs() }
        }
        (Some("EXPIRED"), Some(number), ..) => QueuePlace::Expired { number: number.unsigned_abs() },
        (Some("SOLD_OUT"), ..) => QueuePlace::SoldOut,
        (Some("CLOSED"), ..) => QueuePlace::Closed,
        _ => return Err(EngineError::Protocol(format!("queue: {answer:?}"))),
    };
    Ok(Ok(place))
}
