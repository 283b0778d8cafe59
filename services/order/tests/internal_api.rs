//! The operator's internal API of the order service: only the operator's token opens
//! it, and through it the operator records, loads, closes and retires a FlashSale's
//! sale without touching the order database itself.

use goodsmall_contracts::{
    internal_api::{self, FoundSale, Loaded, StockBelowCommittedProblem},
    sales::{NewSale, Sale},
};
use goodsmall_order::{
    configuration::{LifecycleSettings, OrderSettings},
    products::ProductOwners,
    startup,
};
use goodsmall_platform::{
    auth::{internal::InternalSigner, Authenticator, KeyPair, Role, TokenSigner},
    configuration::{DatabaseSettings, HttpSettings},
    events::{Bus, InProcessBus},
    kv::Kv,
    metrics::Metrics,
    money::Price,
    service::{RunningService, Shared},
};
use goodsmall_sale::{Quantity, ReservationRequest, SaleId, StockEngine, UserId};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

struct Service {
    base: String,
    engine: StockEngine,
    client: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(operator_key: Option<&str>) -> Service {
    let kv = Kv::memory();
    let engine = StockEngine::memory();
    let shutdown = CancellationToken::new();
    let authenticator = Authenticator::new(&KeyPair::generate().public_pem, "goodsmall", kv.clone()).unwrap();
    let shared = Shared { metrics: Metrics::new(), kv, authenticator, shutdown: shutdown.clone() };
    let settings = OrderSettings {
        database: DatabaseSettings {
            url: goodsmall_testkit::sqlite_url("internal_api").into(),
            max_connections: 5,
            create_if_missing: true,
        },
        lifecycle: LifecycleSettings::default(),
        group_commits: 1,
        product_api_url: None,
        operator_public_key_pem: operator_key.map(str::to_owned),
        queue_joins_per_address_per_minute: 20,
    };
    let products = ProductOwners::in_process(|_| async { Ok(Some(1)) });
    let service =
        startup::build(&settings, &shared, &Bus::InProcess(InProcessBus::default()), engine.clone(), products)
            .await
            .expect("the order service starts");
    let http = HttpSettings { port: 0, ..HttpSettings::default() };
    let running = RunningService::bind("order", &http, service.parts, &shared).await.unwrap();
    let base = format!("http://{}", running.local_addr());
    tokio::spawn(running.run());
    Service { base, engine, client: reqwest::Client::new(), _shutdown: shutdown.drop_guard() }
}

fn terms(stock: i64) -> NewSale {
    let opens_at = chrono::Utc::now() - chrono::Duration::minutes(1);
    NewSale {
        product_id: 7,
        merchant_id: 3,
        stock,
        price: Price::from_cents(9900),
        opens_at,
        closes_at: opens_at + chrono::Duration::hours(1),
        per_user_limit: 2,
        admission: None,
    }
}

#[tokio::test]
async fn the_operator_records_loads_closes_and_retires_a_flash_sale_through_it() {
    let keys = KeyPair::generate();
    let s = start(Some(&keys.public_pem)).await;
    let signer = InternalSigner::new(&keys.private_pem, "operator-test").unwrap();
    let url = format!("{}{}", s.base, internal_api::path("shop", "spring-drop"));
    let call =
        |method: reqwest::Method, path: String| s.client.request(method, path).bearer_auth(signer.token().unwrap());

    let found: FoundSale = call(reqwest::Method::GET, url.clone()).send().await.unwrap().json().await.unwrap();
    assert!(found.sale.is_none(), "no sale before the first apply");
    let applied = call(reqwest::Method::PUT, url.clone()).json(&terms(10)).send().await.unwrap();
    assert_eq!(applied.status(), StatusCode::OK);
    let sale: Sale = applied.json().await.unwrap();
    assert_eq!((sale.product_id, sale.merchant_id, sale.stock, sale.price.cents()), (7, 3, 10, 9900));
    assert!(s.engine.counters(sale.id).await.unwrap().is_none(), "recorded, not yet loaded");

    let loaded: Loaded = call(reqwest::Method::POST, format!("{url}/load")).send().await.unwrap().json().await.unwrap();
    assert_eq!(loaded.rebuilt_from_orders, Some(0), "loaded for the first time");
    assert_eq!(s.engine.counters(sale.id).await.unwrap().unwrap().remaining, 10);
    let again: Loaded = call(reqwest::Method::POST, format!("{url}/load")).send().await.unwrap().json().await.unwrap();
    assert_eq!(again.rebuilt_from_orders, None, "already there");
    // The public API sees the same sale.
    let public: Value =
        s.client.get(format!("{}/api/sales/{}", s.base, sale.id)).send().await.unwrap().json().await.unwrap();
    assert_eq!(public["remaining"], 10);

    // A stock below what is held is refused with the held units.
    s.engine
        .reserve(&ReservationRequest {
            sale: SaleId(sale.id),
            user: UserId(50),
            key: "k",
            quantity: Quantity::new(2).unwrap(),
            order: "ord-1",
            at_ms: chrono::Utc::now().timestamp_millis(),
            turn_ends_ms: None,
        })
        .await
        .unwrap();
    let refused = call(reqwest::Method::PUT, url.clone()).json(&terms(1)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: StockBelowCommittedProblem = refused.json().await.unwrap();
    assert_eq!(
        (problem.code.as_str(), problem.sale_id, problem.committed),
        (internal_api::STOCK_BELOW_COMMITTED, sale.id, 2)
    );

    assert_eq!(
        call(reqwest::Method::POST, format!("{url}/close")).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert!(s.engine.counters(sale.id).await.unwrap().unwrap().closed);
    assert_eq!(call(reqwest::Method::DELETE, url.clone()).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(s.engine.counters(sale.id).await.unwrap().is_none(), "its keys are gone");
    let found: FoundSale = call(reqwest::Method::GET, url.clone()).send().await.unwrap().json().await.unwrap();
    assert!(found.sale.is_none(), "the record no longer belongs to the manifest");
    assert_eq!(
        call(reqwest::Method::DELETE, url.clone()).send().await.unwrap().status(),
        StatusCode::NO_CONTENT,
        "retiring twice is fine"
    );
    // Loading or closing a manifest with no sale is the route's own 404, named.
    for action in ["load", "close"] {
        let missing = call(reqwest::Method::POST, format!("{url}/{action}")).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{action}");
        let problem: Value = missing.json().await.unwrap();
        assert_eq!(problem["code"], "SALE_NOT_FOUND", "{action}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("shop/spring-drop"), "{action}: {problem}");
    }
}

/// The apply checks the terms by the rules `POST /api/sales` and a FlashSale share: bad
/// terms are a 422 problem naming each field, and nothing is recorded.
#[tokio::test]
async fn the_apply_refuses_bad_terms_with_the_shared_rules() {
    let keys = KeyPair::generate();
    let s = start(Some(&keys.public_pem)).await;
    let token = InternalSigner::new(&keys.private_pem, "operator-test").unwrap().token().unwrap();
    let url = format!("{}{}", s.base, internal_api::path("shop", "bad-drop"));
    let mut bad = serde_json::to_value(terms(0)).unwrap();
    bad["per_user_limit"] = json!(goodsmall_contracts::sales::MAX_PER_USER_LIMIT + 1);
    bad["price"] = json!("0.00");
    bad["closes_at"] = bad["opens_at"].clone();
    let refused = s.client.put(&url).bearer_auth(&token).json(&bad).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "VALIDATION_FAILED", "{problem}");
    let errors: Vec<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}", e["field"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            "stock: must be between 1 and 100000000, got 0",
            "per_user_limit: must be between 1 and 1000, got 1001",
            "price: price must be greater than zero",
            "closes_at: must be after opens_at",
        ]
    );
    let found: FoundSale = s.client.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert!(found.sale.is_none(), "nothing recorded");
    // The widest terms the rules allow are recorded.
    let widest = NewSale {
        per_user_limit: goodsmall_contracts::sales::MAX_PER_USER_LIMIT,
        admission: None,
        ..terms(goodsmall_contracts::sales::MAX_STOCK)
    };
    let applied = s.client.put(&url).bearer_auth(&token).json(&widest).send().await.unwrap();
    assert_eq!(applied.status(), StatusCode::OK);
}

#[tokio::test]
async fn only_the_operators_token_opens_it() {
    let (keys, other) = (KeyPair::generate(), KeyPair::generate());
    let s = start(Some(&keys.public_pem)).await;
    let url = format!("{}{}", s.base, internal_api::path("shop", "drop"));
    let code = |r: reqwest::Response| async move {
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    };
    let unauthenticated = (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED".to_owned());
    let invalid = (StatusCode::UNAUTHORIZED, "INVALID_TOKEN".to_owned());
    assert_eq!(code(s.client.get(&url).send().await.unwrap()).await, unauthenticated);
    assert_eq!(
        code(s.client.put(&url).json(&terms(5)).send().await.unwrap()).await,
        unauthenticated,
        "checked before the body"
    );
    let forged = InternalSigner::new(&other.private_pem, "intruder").unwrap().token().unwrap();
    assert_eq!(code(s.client.get(&url).bearer_auth(forged).send().await.unwrap()).await, invalid);
    // A merchant's (or admin's) access token is not the operator's, whoever signed it.
    let admin = TokenSigner::new(&keys.private_pem, "goodsmall".into(), std::time::Duration::from_secs(60))
        .unwrap()
        .issue(1, Role::Admin, "s")
        .unwrap();
    assert_eq!(code(s.client.delete(&url).bearer_auth(admin).send().await.unwrap()).await, invalid);
    // Bad input with a good token is a 4xx problem, never a 5xx.
    let token = InternalSigner::new(&keys.private_pem, "operator").unwrap().token().unwrap();
    let bad = s.client.put(&url).bearer_auth(&token).json(&json!({ "stock": "ten" })).send().await.unwrap();
    assert!(bad.status().is_client_error(), "{}", bad.status());
    let document: Value =
        s.client.get(format!("{}/api/openapi.json", s.base)).send().await.unwrap().json().await.unwrap();
    assert!(
        document["paths"].as_object().unwrap().keys().all(|p| !p.starts_with("/internal")),
        "not in the public document"
    );
}

#[tokio::test]
async fn without_an_operator_key_there_is_no_internal_api() {
    let keys = KeyPair::generate();
    let s = start(None).await;
    let token = InternalSigner::new(&keys.private_pem, "operator").unwrap().token().unwrap();
    let answer = s
        .client
        .get(format!("{}{}", s.base, internal_api::path("shop", "drop")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let document: Value =
        s.client.get(format!("{}/api/openapi.json", s.base)).send().await.unwrap().json().await.unwrap();
    assert!(document["paths"].as_object().unwrap().keys().all(|p| !p.starts_with("/internal")));
}
