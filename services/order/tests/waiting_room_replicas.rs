//! The waiting room lives in the stock engine (Redis), not in a replica: two order
//! replicas answer the same places and admissions, and a replica's restart loses no place.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{terms, Backend};
use goodsmall_contracts::admission::{Admission, AdmissionMode};
use goodsmall_order::waiting_room::{Answer, Ticket, WaitingRoom};
use goodsmall_platform::http::ClientAddress;
use goodsmall_sale::{SaleId, UserId};

const SHOPPERS: i64 = 200;

/// Each shopper's ticket as (state, number in the queue), from `room`.
async fn places(room: &WaitingRoom, sale: SaleId) -> Vec<(String, Option<u64>)> {
    let mut places = Vec::new();
    for user in 1..=SHOPPERS {
        let Answer::Place(ticket) = room.place(sale, UserId(user)).await.unwrap() else {
            panic!("no place for {user}")
        };
        places.push(match ticket {
            Ticket::PreQueue { .. } => ("PRE_QUEUE".into(), None),
            Ticket::Waiting { number, .. } => ("WAITING".into(), Some(number)),
            Ticket::Admitted { number, .. } => ("ADMITTED".into(), Some(number)),
            Ticket::Expired { .. } | Ticket::SoldOut | Ticket::Closed => panic!("shopper {user} left the queue"),
        });
    }
    places
}

#[tokio::test]
async fn places_are_the_same_from_every_replica_and_survive_a_restart() {
    let backend = Backend::Distributed {
        database: goodsmall_testkit::mysql_url("queue_replicas").await,
        redis: goodsmall_testkit::redis_url().await,
    };
    let (a, b) = (backend.start().await, backend.start().await);
    let admission =
        Admission { mode: AdmissionMode::Queue, pre_queue_seconds: 3_600, admit_per_second: 10, turn_ttl_seconds: 600 };
    let opens_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let sale = a
        .sales
        .create(goodsmall_order::sales::NewSale { opens_at, admission: Some(admission), ..terms(1_000) })
        .await
        .unwrap();
    let sale = SaleId(sale.id);
    // Half join through each replica, from many addresses.
    for user in 1..=SHOPPERS {
        let room = if user % 2 == 0 { &a.waiting_room } else { &b.waiting_room };
        let from = ClientAddress(IpAddr::V4(Ipv4Addr::new(10, 0, (user / 256) as u8, (user % 256) as u8)));
        assert!(matches!(room.join(sale, UserId(user), from).await.unwrap(), Answer::Place(Ticket::PreQueue { .. })));
    }
    let wait = (opens_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await; // the opening is a set instant
                                    // A few admitted (10 a second) before the places are compared.
    goodsmall_testkit::eventually("three shoppers admitted", std::time::Duration::from_secs(10), async || {
        let counts = a.waiting_room.counts(sale).await.unwrap()?;
        (counts.admitted >= 3).then_some(())
    })
    .await;
    let from_a = places(&a.waiting_room, sale).await;
    assert!(from_a.iter().all(|(_, number)| number.is_some()), "everyone is placed after the opening");
    let from_b = places(&b.waiting_room, sale).await;
    let numbers = |p: &[(String, Option<u64>)]| p.iter().map(|(_, n)| *n).collect::<Vec<_>>();
    assert_eq!(numbers(&from_a), numbers(&from_b), "both replicas answer the same places");
    // An admission made by one replica is genuine at the other.
    let admitted = (1..=SHOPPERS).find(|u| from_b[*u as usize - 1].0 == "ADMITTED").expect("someone is admitted");
    let Answer::Place(Ticket::Admitted { token, .. }) = a.waiting_room.place(sale, UserId(admitted)).await.unwrap()
    else {
        panic!("{admitted} is not admitted at the other replica")
    };
    assert!(b.waiting_room.verify(sale, UserId(admitted), &token).await.unwrap().is_ok());
    // A replica restarts (the store keeps its data): nobody's place moved.
    a.stop().await;
    let restarted = backend.start().await;
    assert_eq!(numbers(&places(&restarted.waiting_room, sale).await), numbers(&from_a), "a restart lost places");
    assert!(restarted.waiting_room.verify(sale, UserId(admitted), &token).await.unwrap().is_ok());
    restarted.stop().await;
    b.stop().await;
}
