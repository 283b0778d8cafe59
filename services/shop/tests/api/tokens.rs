//! Access and refresh tokens: forged, expired, revoked, rotated, reused.

use goodsmall_platform::auth::{Claims, KeyPair, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, assert_status, unique_email, TestShop};

fn sign(private_pem: &str, exp_offset_secs: i64, issuer: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = Claims {
        sub: "1".into(),
        sid: "0123456789abcdef0123456789abcdef".into(),
        role: Role::Admin,
        iss: issuer.into(),
        aud: "goodsmall-api".into(),
        iat: (now - 3600) as u64,
        exp: (now + exp_offset_secs) as u64,
    };
    let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
}

async fn bad_access_tokens_are_refused_by_every_service(shop: TestShop) {
    let forged = sign(&KeyPair::generate().private_pem, 600, "goodsmall");
    let expired = sign(&shop.keys.private_pem, -120, "goodsmall");
    let other_issuer = sign(&shop.keys.private_pem, 600, "evil");
    let valid = sign(&shop.keys.private_pem, 600, "goodsmall");
    // `alg: none` with the valid token's claims.
    let payload = valid.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    for path in ["/api/users/me", "/api/cart"] {
        assert_problem(shop.get(path, None).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
        assert_problem(shop.get(path, Some("not-a-jwt")).await, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
        assert_problem(shop.get(path, Some(&forged)).await, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
        assert_problem(shop.get(path, Some(&unsigned)).await, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
        assert_problem(shop.get(path, Some(&other_issuer)).await, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
        assert_problem(shop.get(path, Some(&expired)).await, StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED").await;
        let basic = shop.client.get(shop.url(path)).header("authorization", "Basic Zm9vOmJhcg==").send().await.unwrap();
        assert_problem(basic, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
    }
}

async fn logout_revokes_the_session_everywhere(shop: TestShop) {
    let email = unique_email("logout");
    shop.sign_up(&email, "s3cret-pass").await;
    let first = shop.login(&email, "s3cret-pass").await;
    let second = shop.login(&email, "s3cret-pass").await;
    let token = first["access_token"].as_str().unwrap();
    assert_status(shop.get("/api/cart", Some(token)).await, StatusCode::OK).await;
    assert_status(shop.post("/api/auth/logout", Some(token), json!({})).await, StatusCode::NO_CONTENT).await;
    for path in ["/api/users/me", "/api/cart"] {
        assert_problem(shop.get(path, Some(token)).await, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED").await;
    }
    let refresh = shop.post("/api/auth/refresh", None, json!({ "refresh_token": first["refresh_token"] })).await;
    assert_problem(refresh, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    // Another session of the same account is untouched.
    assert_status(shop.get("/api/users/me", second["access_token"].as_str()).await, StatusCode::OK).await;
}

async fn refresh_tokens_rotate_and_reuse_kills_the_family(shop: TestShop) {
    let email = unique_email("rotate");
    shop.sign_up(&email, "s3cret-pass").await;
    let first = shop.login(&email, "s3cret-pass").await;
    let refresh = |token: &serde_json::Value| shop.post("/api/auth/refresh", None, json!({ "refresh_token": token }));
    let second = assert_status(refresh(&first["refresh_token"]).await, StatusCode::OK).await;
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_status(shop.get("/api/users/me", second["access_token"].as_str()).await, StatusCode::OK).await;
    // The first refresh token is presented again: it leaked, so the family dies.
    assert_problem(refresh(&first["refresh_token"]).await, StatusCode::UNAUTHORIZED, "REFRESH_TOKEN_REUSED").await;
    assert_problem(refresh(&second["refresh_token"]).await, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    for tokens in [&first, &second] {
        let response = shop.get("/api/users/me", tokens["access_token"].as_str()).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED").await;
    }
    assert_problem(refresh(&json!("made-up")).await, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
}

async fn password_change_logs_out_every_session(shop: TestShop) {
    let email = unique_email("pw");
    shop.sign_up(&email, "s3cret-pass").await;
    let here = shop.login(&email, "s3cret-pass").await;
    let elsewhere = shop.login(&email, "s3cret-pass").await;
    let token = here["access_token"].as_str().unwrap();
    let change = |current: &str| {
        shop.call(
            reqwest::Method::PUT,
            "/api/users/me/password",
            Some(token),
            Some(json!({ "current_password": current, "new_password": "n3w-password" })),
        )
    };
    assert_problem(change("wrong-pass-1").await, StatusCode::FORBIDDEN, "WRONG_CURRENT_PASSWORD").await;
    assert_status(change("s3cret-pass").await, StatusCode::NO_CONTENT).await;
    for session in [&here, &elsewhere] {
        assert_problem(
            shop.get("/api/cart", session["access_token"].as_str()).await,
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
        )
        .await;
        let refresh = shop.post("/api/auth/refresh", None, json!({ "refresh_token": session["refresh_token"] })).await;
        assert_problem(refresh, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    }
    let old = shop.post("/api/auth/login", None, json!({ "email": email, "password": "s3cret-pass" })).await;
    assert_problem(old, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    shop.login(&email, "n3w-password").await;
}

crate::in_both_modes!(
    bad_access_tokens_are_refused_by_every_service,
    logout_revokes_the_session_everywhere,
    refresh_tokens_rotate_and_reuse_kills_the_family,
    password_change_logs_out_every_session,
);
