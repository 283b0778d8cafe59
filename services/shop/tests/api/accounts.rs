//! Sign-up, e-mail verification, login throttling and what is stored.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

use crate::helpers::{assert_problem, assert_status, unique_email, TestShop};

async fn signup_walkthrough_from_code_to_profile(shop: TestShop) {
    let email = unique_email("walk");
    let profile = shop.sign_up(&email, "s3cret-pass").await;
    assert_eq!(profile["email"], email);
    assert_eq!(profile["name"], "Park Jimin");
    assert_eq!(profile["role"], "shopper");
    let tokens = shop.login(&email.to_uppercase(), "s3cret-pass").await;
    assert_eq!(tokens["token_type"], "Bearer");
    let me = assert_status(shop.get("/api/users/me", tokens["access_token"].as_str()).await, StatusCode::OK).await;
    assert_eq!(me["email"], email);
    assert_eq!(me["address"], "12 Hannam-daero, Seoul");
}

async fn unverified_email_cannot_sign_up(shop: TestShop) {
    let body = json!({ "email": unique_email("nov"), "password": "s3cret-pass", "name": "N",
        "phone": "+82 10-1234-5678", "address": "Seoul, Korea" });
    assert_problem(shop.post("/api/users", None, body).await, StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED").await;
}

async fn five_wrong_codes_lock_the_code(shop: TestShop) {
    let email = unique_email("lock");
    assert_status(
        shop.post("/api/auth/email-verifications", None, json!({ "email": email })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let code = shop.verification_code(&email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm =
        |code: &str| shop.post("/api/auth/email-verifications/confirm", None, json!({ "email": email, "code": code }));
    for left in (1..=4).rev() {
        let problem = assert_problem(confirm(wrong).await, StatusCode::BAD_REQUEST, "INVALID_CODE").await;
        assert!(problem["detail"].as_str().unwrap().contains(&format!("{left} tries left")), "{problem}");
    }
    let locked = confirm(wrong).await;
    let wait = retry_after(&locked);
    assert_problem(locked, StatusCode::TOO_MANY_REQUESTS, "VERIFICATION_LOCKED").await;
    // The right code no longer works, and the address is still unverified.
    let locked = confirm(&code).await;
    assert!(retry_after(&locked) <= wait);
    assert_problem(locked, StatusCode::TOO_MANY_REQUESTS, "VERIFICATION_LOCKED").await;
    let body = json!({ "email": email, "password": "s3cret-pass", "name": "N", "phone": "+82 10-1234-5678",
        "address": "Seoul, Korea" });
    assert_problem(shop.post("/api/users", None, body).await, StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED").await;
    // Retry-After is when a new code may be asked for (within a second: it is rounded
    // up to whole seconds); that code unlocks the address.
    ask_for_a_code_once_allowed(&shop, &email, Duration::from_secs(wait + 1)).await;
    let code = shop.code_after(&email, 1).await;
    assert_status(confirm(&code).await, StatusCode::OK).await;
}

/// Asks for a verification code until the resend throttle lets it through (a refused
/// request changes nothing), for at most `patience`.
async fn ask_for_a_code_once_allowed(shop: &TestShop, email: &str, patience: Duration) {
    let what = format!("a new code for {email}");
    goodsmall_testkit::eventually(&what, patience, async || {
        let response = shop.post("/api/auth/email-verifications", None, json!({ "email": email })).await;
        match response.status() {
            StatusCode::ACCEPTED => Some(()),
            StatusCode::TOO_MANY_REQUESTS => None,
            other => panic!("{what}: {other} {}", response.text().await.unwrap_or_default()),
        }
    })
    .await;
}

/// The `Retry-After` seconds of an answer that must carry them.
fn retry_after(response: &reqwest::Response) -> u64 {
    let value =
        response.headers().get("retry-after").unwrap_or_else(|| panic!("{} without Retry-After", response.status()));
    value.to_str().unwrap().parse().unwrap()
}

async fn resending_a_code_is_throttled_and_mail_is_sent(shop: TestShop) {
    let email = unique_email("resend");
    assert_status(
        shop.post("/api/auth/email-verifications", None, json!({ "email": email })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    shop.verification_code(&email).await;
    let response = shop.post("/api/auth/email-verifications", None, json!({ "email": email })).await;
    assert!((1..=2).contains(&retry_after(&response)));
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "RESEND_TOO_SOON").await;
    assert_eq!(shop.mails_to(&email).await, 1, "a throttled request sends no mail");
}

async fn an_email_has_one_account(shop: TestShop) {
    let email = unique_email("dup");
    shop.sign_up(&email, "s3cret-pass").await;
    // Verified again (sign-up used the first verification up), past the resend throttle.
    let seen = shop.mails_to(&email).await;
    ask_for_a_code_once_allowed(&shop, &email, Duration::from_secs(5)).await;
    let code = shop.code_after(&email, seen).await;
    let confirmed =
        shop.post("/api/auth/email-verifications/confirm", None, json!({ "email": email, "code": code })).await;
    assert_status(confirmed, StatusCode::OK).await;
    let body = json!({ "email": email, "password": "other-pass-1", "name": "N", "phone": "+82 10-1234-5678",
        "address": "Seoul, Korea" });
    assert_problem(shop.post("/api/users", None, body).await, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
}

async fn sign_up_reports_every_bad_field(shop: TestShop) {
    let email = unique_email("fields");
    shop.verify_email(&email).await;
    let body = json!({ "email": email, "password": "short", "name": "", "phone": "call me", "address": "x" });
    let problem = assert_problem(
        shop.post("/api/users", None, body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let mut fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["address", "name", "password", "phone"]);
}

async fn personal_fields_are_not_stored_in_plain_text(shop: TestShop) {
    let email = unique_email("crypt");
    shop.sign_up(&email, "s3cret-pass").await;
    let db = shop.user_database().await;
    let rows = sqlx::query("SELECT email_hash, email_enc, name_enc, phone_enc, address_enc, password_hash FROM users")
        .fetch_all(&db)
        .await
        .unwrap();
    let row = rows.iter().find(|r| r.get::<String, _>("email_enc").starts_with("v1:")).expect("a user row");
    let stored: Vec<String> = (0..6).map(|i| row.get::<String, _>(i)).collect();
    for plain in [email.as_str(), "Park Jimin", "Jimin", "+82 10-1234-5678", "1234", "Hannam", "s3cret-pass"] {
        for value in &stored {
            assert!(!value.contains(plain), "{plain:?} stored in clear in {value:?}");
        }
    }
    assert!(stored[5].starts_with("$argon2id$"), "password hash is argon2id");
}

async fn repeated_failed_logins_are_throttled(shop: TestShop) {
    let email = unique_email("throttle");
    shop.sign_up(&email, "s3cret-pass").await;
    let login =
        |password: &'static str| shop.post("/api/auth/login", None, json!({ "email": email, "password": password }));
    for _ in 0..5 {
        assert_problem(login("wrong-pass-1").await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    }
    let response = login("s3cret-pass").await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
}

async fn unknown_account_and_wrong_password_look_the_same(shop: TestShop) {
    let email = unique_email("known");
    shop.sign_up(&email, "s3cret-pass").await;
    let unknown =
        shop.post("/api/auth/login", None, json!({ "email": unique_email("nobody"), "password": "s3cret-pass" })).await;
    let a = assert_problem(unknown, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    let wrong = shop.post("/api/auth/login", None, json!({ "email": email, "password": "nope-nope-1" })).await;
    let b = assert_problem(wrong, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    assert_eq!(a, b);
}

async fn profile_can_be_updated_with_validation(shop: TestShop) {
    let token = shop.shopper().await;
    let patch = |body| shop.call(reqwest::Method::PATCH, "/api/users/me", Some(&token), Some(body));
    let updated = assert_status(patch(json!({ "phone": "010-9876-5432" })).await, StatusCode::OK).await;
    assert_eq!(updated["phone"], "010-9876-5432");
    assert_eq!(updated["name"], "Park Jimin");
    let problem =
        assert_problem(patch(json!({ "address": "" })).await, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
    assert_eq!(problem["errors"][0]["field"], "address");
}

/// The HTTP call never waits for SMTP: with a mail server that accepts connections
/// and then says nothing, asking for a code still answers at once, and the mail
/// waits in the outbox for the background sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_mail_server_does_not_slow_the_request() {
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let transport = format!("smtp://{}", stalled.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = stalled.accept().await {
                open.push(socket); // never answer
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let shop = TestShop::embedded_with(&[("GOODSMALL_USER__MAIL__TRANSPORT", &transport)]).await;
    let started = std::time::Instant::now();
    let response = shop.post("/api/auth/email-verifications", None, json!({ "email": unique_email("stall") })).await;
    assert_status(response, StatusCode::ACCEPTED).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    // The background sender has connected and is stuck waiting for the server's greeting.
    let connected = async || (accepted.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(());
    goodsmall_testkit::eventually("the mail sender to connect", Duration::from_secs(10), connected).await;
    let pending: i64 =
        sqlx::query("SELECT COUNT(*) FROM mail_outbox").fetch_one(&shop.user_database().await).await.unwrap().get(0);
    assert_eq!(pending, 1, "the mail waits in the outbox");
    held.abort();
}

crate::in_both_modes!(
    signup_walkthrough_from_code_to_profile,
    unverified_email_cannot_sign_up,
    five_wrong_codes_lock_the_code,
    resending_a_code_is_throttled_and_mail_is_sent,
    an_email_has_one_account,
    sign_up_reports_every_bad_field,
    personal_fields_are_not_stored_in_plain_text,
    repeated_failed_logins_are_throttled,
    unknown_account_and_wrong_password_look_the_same,
    profile_can_be_updated_with_validation,
);
