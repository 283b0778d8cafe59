//! Wrong passwords slow down the address they come from, never the account's owner:
//! each client below connects from its own loopback address (127.0.0.x), which is the
//! client address the user service throttles by.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, assert_status, unique_email, TestShop};

/// A login client connecting from 127.0.0.`host`.
struct Client<'a> {
    shop: &'a TestShop,
    http: reqwest::Client,
}

impl<'a> Client<'a> {
    fn from(shop: &'a TestShop, host: u8) -> Self {
        let http = reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self { shop, http }
    }

    async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.shop.url("/api/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request sent")
    }

    /// A wrong password, answered as such (not throttled).
    async fn fails(&self, email: &str, times: usize) {
        for _ in 0..times {
            assert_problem(self.login(email, "wrong-pass-1").await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
                .await;
        }
    }

    /// Refused with 429 TOO_MANY_ATTEMPTS: its `Retry-After` in seconds.
    async fn waits(&self, email: &str, password: &str) -> u64 {
        let response = self.login(email, password).await;
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
        retry_after.expect("a Retry-After header")
    }

    /// Tries a wrong password until it is answered instead of refused (the wait is over).
    async fn fails_once_the_wait_is_over(&self, email: &str, patience: Duration) {
        let started = Instant::now();
        loop {
            let response = self.login(email, "wrong-pass-1").await;
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                assert_problem(response, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
                return;
            }
            assert!(started.elapsed() < patience, "still refused after {patience:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn a_guesser_cannot_lock_the_owner_out(shop: TestShop) {
    let email = unique_email("owner");
    shop.sign_up(&email, "s3cret-pass").await;
    let (guesser, owner) = (Client::from(&shop, 2), Client::from(&shop, 3));
    guesser.fails(&email, 5).await;
    assert!(
        guesser.waits(&email, "s3cret-pass").await >= 1,
        "the guesser's address waits, even with the right password"
    );
    let tokens = assert_status(owner.login(&email, "s3cret-pass").await, StatusCode::OK).await;
    assert!(tokens["access_token"].is_string(), "the owner logs in from their own address: {tokens}");
}

async fn each_further_failure_doubles_the_wait(shop: TestShop) {
    let email = unique_email("backoff");
    shop.sign_up(&email, "s3cret-pass").await;
    let guesser = Client::from(&shop, 4);
    guesser.fails(&email, 5).await;
    assert_eq!(guesser.waits(&email, "wrong-pass-1").await, 1);
    guesser.fails_once_the_wait_is_over(&email, Duration::from_secs(5)).await;
    assert_eq!(guesser.waits(&email, "wrong-pass-1").await, 2, "the next wait is twice as long");
    // A success after the wait starts the address afresh.
    let started = Instant::now();
    let response = loop {
        let response = guesser.login(&email, "s3cret-pass").await;
        if response.status() != StatusCode::TOO_MANY_REQUESTS || started.elapsed() > Duration::from_secs(5) {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_status(response, StatusCode::OK).await;
    guesser.fails(&email, 5).await;
}

/// Past the account's ceiling (100 failures from all addresses in 15 minutes) guessers
/// spread over many addresses are slowed too: each waits after a single failure. A
/// fresh address still gets its try at once.
async fn past_the_account_ceiling_every_guesser_waits_but_the_owner_gets_in(shop: TestShop) {
    let email = unique_email("ceiling");
    shop.sign_up(&email, "s3cret-pass").await;
    // 20 addresses × 5 free failures each: the ceiling, with no address waiting yet.
    for host in 10..30 {
        Client::from(&shop, host).fails(&email, 5).await;
    }
    let (late, owner) = (Client::from(&shop, 30), Client::from(&shop, 31));
    late.fails(&email, 1).await;
    assert!(late.waits(&email, "wrong-pass-1").await >= 1, "a new guesser waits after one failure");
    assert_status(owner.login(&email, "s3cret-pass").await, StatusCode::OK).await;
}

crate::in_both_modes!(
    a_guesser_cannot_lock_the_owner_out,
    each_further_failure_doubles_the_wait,
    past_the_account_ceiling_every_guesser_waits_but_the_owner_gets_in,
);
