//! The controller's API calls against kube's mocked `tower` service (the controller-rs
//! pattern): the exact finalizer, scale, Event and status calls for warm-up, sold out,
//! close (with an overlapping sale), an autoscaler-managed Deployment, and deletion.
//! The sale records are real (SQLite and the in-process engine).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use goodsmall_operator::{
    controller::{reconcile, Context, FINALIZER},
    crd::{FlashSale, FlashSaleSpec, FlashSaleStatus, Phase, Warmup},
    local::CatalogueFn,
    metrics::Metrics,
    reconcile::Reconciler,
    records::SaleRecords,
    scaling::kubernetes::KubeScaler,
};
use goodsmall_order::sales::{NewSale, Sales};
use goodsmall_platform::{configuration::DatabaseSettings, db::Database, money::Price};
use goodsmall_sale::{Quantity, ReservationRequest, SaleId, StockEngine, UserId};
use http::{Method, Request, Response, StatusCode};
use kube::{
    client::Body,
    runtime::{
        controller::Action,
        events::{Recorder, Reporter},
    },
    Client,
};
use serde_json::{json, Value};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The mocked API server: each `expect` takes the next request, checks its method and
/// path, answers, and returns the request body for the test to inspect.
struct ApiServer(Handle);

impl ApiServer {
    async fn expect(&mut self, method: Method, path: &str, status: StatusCode, reply: Value) -> Value {
        self.expect_with(method, path, status, |_| reply).await
    }

    /// Like `expect`, answering with what `reply` makes of the request body.
    async fn expect_with(
        &mut self,
        method: Method,
        path: &str,
        status: StatusCode,
        reply: impl FnOnce(&Value) -> Value,
    ) -> Value {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("expected {method} {path}, but no call came"))
            .unwrap_or_else(|| panic!("expected {method} {path}: the client is gone"));
        assert_eq!((request.method(), request.uri().path()), (&method, path), "unexpected call");
        let body = request.into_body().collect_bytes().await.unwrap();
        let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
        let reply = reply(&json);
        send.send_response(
            Response::builder().status(status).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
        );
        json
    }

    async fn ok(&mut self, method: Method, path: &str, reply: Value) -> Value {
        self.expect(method, path, StatusCode::OK, reply).await
    }

    async fn no_keda(&mut self) {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "NotFound", "code": 404,
        });
        self.expect(Method::GET, "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects", StatusCode::NOT_FOUND, status)
            .await;
    }

    async fn hpas(&mut self, items: Vec<Value>) {
        let list = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList", "metadata": {}, "items": items,
        });
        self.ok(Method::GET, "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers", list).await;
    }

    /// The PATCH of `goodsmall-order`'s scale subresource, answered with `replicas`.
    async fn order_scale(&mut self, replicas: i32) -> Value {
        let scale = json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": { "name": "goodsmall-order" },
            "spec": { "replicas": replicas },
        });
        self.ok(Method::PATCH, "/apis/apps/v1/namespaces/shop/deployments/goodsmall-order/scale", scale).await
    }

    async fn deployment(&mut self, name: &str, replicas: i32, annotations: Value) {
        self.ok(
            Method::GET,
            &format!("/apis/apps/v1/namespaces/shop/deployments/{name}"),
            deployment(name, replicas, annotations),
        )
        .await;
    }

    /// An Event is created; the API server answers with it.
    async fn event(&mut self) -> Value {
        self.expect_with(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/shop/events",
            StatusCode::CREATED,
            Value::clone,
        )
        .await
    }

    async fn status(&mut self, fs: &FlashSale) -> FlashSaleStatus {
        let patch = self
            .ok(
                Method::PATCH,
                "/apis/goodsmall.io/v1alpha1/namespaces/shop/flashsales/drop/status",
                serde_json::to_value(fs).unwrap(),
            )
            .await;
        serde_json::from_value(patch["status"].clone()).expect("a FlashSale status")
    }

    /// A repeated Event: the recorder creates it once, then updates its series.
    async fn repeated_event(&mut self, first: bool) -> Value {
        let (request, send) = self.0.next_request().await.expect("an Event call");
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        assert!(path.starts_with("/apis/events.k8s.io/v1/namespaces/shop/events"), "{method} {path}");
        // Later ones update the series, or create anew when the first is still in flight.
        assert!(method == Method::POST || (!first && method == Method::PATCH), "{method} {path}");
        let body: Value = serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        let reply = if method == Method::POST {
            body.clone()
        } else {
            json!({ "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": { "name": "drop.1" } })
        };
        send.send_response(Response::builder().body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap());
        body
    }

    async fn nothing_more(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(200), self.0.next_request()).await;
        assert!(next.is_err() || next.unwrap().is_none(), "an unexpected extra API call");
    }
}

/// A Deployment whose `replicas` pods are all Ready.
fn deployment(name: &str, replicas: i32, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": "shop", "annotations": annotations },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } }, "spec": { "containers": [] } },
        },
        "status": { "replicas": replicas, "readyReplicas": replicas },
    })
}

struct Fixture {
    ctx: Arc<Context>,
    server: ApiServer,
    sales: Sales,
    engine: StockEngine,
}

async fn fixture() -> Fixture {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "shop");
    let file = std::env::temp_dir().join(format!("{}.db", goodsmall_testkit::unique_name("goodsmall-operator")));
    let settings = DatabaseSettings {
        url: format!("sqlite://{}", file.display()).into(),
        max_connections: 2,
        create_if_missing: true,
    };
    let db = Database::connect(
        "order",
        &settings,
        &goodsmall_order::startup::migrations(),
        &goodsmall_platform::metrics::Metrics::new(),
    )
    .await
    .unwrap();
    let engine = StockEngine::memory();
    let sales = Sales::new(db, engine.clone());
    let reconciler = Reconciler {
        records: SaleRecords::new(Arc::new(sales.clone()), engine.clone()),
        catalogue: Arc::new(CatalogueFn(|_| async { Ok(Some(1)) })),
        scaler: Arc::new(KubeScaler::new(client.clone(), "goodsmall-order".into(), "goodsmall-payment".into())),
        refresh: Duration::from_secs(10),
    };
    let recorder = Recorder::new(client.clone(), Reporter { controller: "goodsmall-operator".into(), instance: None });
    let ctx = Arc::new(Context::new(client, reconciler, recorder, Arc::new(Metrics::default())));
    Fixture { ctx, server: ApiServer(handle), sales, engine }
}

fn flash_sale(
    opens_in: chrono::Duration,
    closes_in: chrono::Duration,
    warmup: Warmup,
    phase: Option<Phase>,
) -> FlashSale {
    let now = Utc::now();
    let spec = FlashSaleSpec {
        product_id: 7,
        stock: 3,
        price: "25.00".into(),
        opens_at: now + opens_in,
        closes_at: now + closes_in,
        per_user_limit: 3,
        warmup,
        admission: None,
    };
    let mut fs = FlashSale::new("drop", spec);
    fs.metadata.namespace = Some("shop".into());
    fs.metadata.generation = Some(1);
    fs.metadata.uid = Some("8c8f9d3e-0000-4000-8000-000000000001".into());
    fs.metadata.finalizers = Some(vec![FINALIZER.into()]);
    // A status past the warm-up has its stock loaded, as the reconcile that warmed it up
    // wrote.
    let conditions = match phase {
        None | Some(Phase::Scheduled) => vec![],
        Some(_) => vec![goodsmall_operator::crd::Condition {
            type_: "StockLoaded".into(),
            status: "True".into(),
            reason: "Loaded".into(),
            message: "the sale is in the stock engine".into(),
            last_transition_time: now,
            observed_generation: Some(1),
        }],
    };
    fs.status = Some(FlashSaleStatus { phase, conditions, ..Default::default() });
    fs
}

fn warmup(order: i32, payment: i32) -> Warmup {
    Warmup { lead: "10m".into(), order_replicas: Some(order), payment_replicas: Some(payment) }
}

fn condition<'a>(s: &'a FlashSaleStatus, type_: &str) -> &'a goodsmall_operator::crd::Condition {
    s.conditions.iter().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_} condition in {s:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_flash_sale_gets_the_finalizer_first() {
    let Fixture { ctx, mut server, .. } = fixture().await;
    let mut fs = flash_sale(chrono::Duration::hours(2), chrono::Duration::hours(3), Warmup::default(), None);
    fs.metadata.finalizers = None;
    let reconciling = tokio::spawn(reconcile(Arc::new(fs.clone()), ctx));
    let patch = server
        .ok(
            Method::PATCH,
            "/apis/goodsmall.io/v1alpha1/namespaces/shop/flashsales/drop",
            serde_json::to_value(&fs).unwrap(),
        )
        .await;
    assert_eq!(patch[1], json!({ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] }), "{patch}");
    reconciling.await.unwrap().expect("reconciled");
    server.nothing_more().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_preloads_and_raises_a_deployment_and_a_keda_scaled_object() {
    let Fixture { ctx, mut server, engine, .. } = fixture().await;
    let fs = flash_sale(chrono::Duration::minutes(5), chrono::Duration::hours(1), warmup(8, 4), Some(Phase::Scheduled));
    let reconciling = tokio::spawn(reconcile(Arc::new(fs.clone()), ctx.clone()));
    let keda_payment = json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": { "name": "payment-scaler", "namespace": "shop" },
        "spec": { "scaleTargetRef": { "name": "goodsmall-payment" }, "minReplicaCount": 1, "maxReplicaCount": 20 },
    });
    let keda_list = json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObjectList", "metadata": {}, "items": [keda_payment.clone()],
    });

    // The order Deployment has no autoscaler: its scale subresource, claims first.
    server.ok(Method::GET, "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects", keda_list.clone()).await;
    server.hpas(vec![]).await;
    server.deployment("goodsmall-order", 2, json!({})).await;
    let claims = server
        .ok(
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/goodsmall-order",
            deployment("goodsmall-order", 2, json!({})),
        )
        .await;
    assert_eq!(
        claims["metadata"]["annotations"],
        json!({ "goodsmall.io/baseline-replicas": "2", "goodsmall.io/warmup-claims": "{\"shop/drop\":8}" })
    );
    let scale = server.order_scale(8).await;
    assert_eq!(scale, json!({ "spec": { "replicas": 8 } }));
    // KEDA manages the payment Deployment: its minimum goes up instead (its Ready pods
    // read from the Deployment).
    server.ok(Method::GET, "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects", keda_list).await;
    server.deployment("goodsmall-payment", 1, json!({})).await;
    let raised = server
        .ok(Method::PATCH, "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/payment-scaler", keda_payment)
        .await;
    assert_eq!(raised["spec"], json!({ "minReplicaCount": 4 }));
    assert_eq!(raised["metadata"]["annotations"]["goodsmall.io/baseline-replicas"], "1");

    let loaded = server.event().await;
    assert_eq!((loaded["reason"].as_str(), loaded["type"].as_str()), (Some("StockLoaded"), Some("Normal")), "{loaded}");
    let warming = server.event().await;
    assert_eq!(warming["reason"], "WarmingUp");
    assert_eq!(warming["regarding"]["name"], "drop");
    let status = server.status(&fs).await;
    assert_eq!(
        (status.phase, status.remaining, status.observed_generation),
        (Some(Phase::WarmingUp), Some(3), Some(1))
    );
    for type_ in ["StockLoaded", "Ready"] {
        let c = condition(&status, type_);
        assert_eq!((c.status.as_str(), c.observed_generation), ("True", Some(1)), "{c:?}");
    }
    // Asked for, not yet there: the new pods are not Ready.
    let scaled = condition(&status, "Scaled");
    assert_eq!((scaled.status.as_str(), scaled.reason.as_str()), ("False", "WarmupReplicasPending"), "{scaled:?}");
    assert_eq!(scaled.message, "goodsmall-order 2/8 ready, goodsmall-payment 1/4 ready");
    assert_eq!(
        status.scaling.iter().map(|t| (t.deployment.as_str(), t.replicas, t.ready)).collect::<Vec<_>>(),
        [("goodsmall-order", 8, 2), ("goodsmall-payment", 4, 1)]
    );
    let action = reconciling.await.unwrap().expect("reconciled");
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(10)),
        "looked at again at the refresh while the pods come up"
    );
    server.nothing_more().await;
    assert_eq!(
        engine.counters(status.sale_id.unwrap()).await.unwrap().map(|c| c.remaining),
        Some(3),
        "pre-loaded in the engine"
    );
    let metrics = ctx.metrics.render();
    for line in [
        "goodsmall_operator_reconciliations_total 1",
        "goodsmall_operator_flash_sales{phase=\"WarmingUp\"} 1",
        "goodsmall_operator_flash_sales{phase=\"Open\"} 0",
        "goodsmall_operator_reconcile_duration_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_exponentially_with_a_warning_event() {
    let Fixture { ctx, mut server, .. } = fixture().await;
    let fs = Arc::new(flash_sale(
        chrono::Duration::minutes(5),
        chrono::Duration::hours(1),
        warmup(8, 4),
        Some(Phase::Scheduled),
    ));
    let error = goodsmall_operator::controller::Error::Sale(anyhow::anyhow!("the stock engine does not answer"));
    let mut delays = Vec::new();
    for attempt in 0..3 {
        delays.push(goodsmall_operator::controller::error_policy(fs.clone(), &error, ctx.clone()));
        let event = server.repeated_event(attempt == 0).await;
        if attempt == 0 {
            assert_eq!(
                (event["type"].as_str(), event["reason"].as_str()),
                (Some("Warning"), Some("ReconcileFailed")),
                "{event}"
            );
            assert_eq!(event["note"], "the stock engine does not answer; retrying in 5s", "{event}");
        }
    }
    assert_eq!(delays, [5, 10, 20].map(|secs| Action::requeue(Duration::from_secs(secs))));
    assert!(ctx.metrics.render().contains("goodsmall_operator_reconcile_errors_total{reason=\"sale\"} 3"));
    let settling = goodsmall_operator::controller::Error::Settling(2, Duration::from_secs(10));
    let action = goodsmall_operator::controller::error_policy(fs, &settling, ctx);
    assert_eq!(action, Action::requeue(Duration::from_secs(10)), "waiting for reservations is not a failure");
    server.nothing_more().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_opening_the_phase_moves_to_open_and_the_replicas_stay_held() {
    let Fixture { ctx, mut server, sales, .. } = fixture().await;
    let fs =
        flash_sale(chrono::Duration::seconds(-1), chrono::Duration::hours(1), warmup(8, 4), Some(Phase::WarmingUp));
    let sale = sales.apply_flash_sale("shop/drop", new_sale(&fs)).await.unwrap();
    sales.ensure_loaded(&sale).await.unwrap();
    let reconciling = tokio::spawn(reconcile(Arc::new(fs.clone()), ctx));
    // Both workloads already carry this sale's claims: nothing to patch.
    for (workload, replicas, baseline) in [("goodsmall-order", 8, "2"), ("goodsmall-payment", 4, "1")] {
        server.no_keda().await;
        server.hpas(vec![]).await;
        let claims = format!("{{\"shop/drop\":{replicas}}}");
        server
            .deployment(
                workload,
                replicas,
                json!({ "goodsmall.io/baseline-replicas": baseline, "goodsmall.io/warmup-claims": claims }),
            )
            .await;
    }
    let open = server.event().await;
    assert_eq!((open["reason"].as_str(), open["note"].as_str()), (Some("Open"), Some("purchases are open")));
    let status = server.status(&fs).await;
    assert_eq!((status.phase, status.remaining), (Some(Phase::Open), Some(3)));
    assert_eq!(
        status.scaling.iter().map(|t| (t.name.as_str(), t.replicas)).collect::<Vec<_>>(),
        [("goodsmall-order", 8), ("goodsmall-payment", 4)]
    );
    let scaled = condition(&status, "Scaled");
    assert_eq!(
        (scaled.status.as_str(), scaled.reason.as_str()),
        ("True", "WarmupReplicasReady"),
        "every pod asked for is Ready: {scaled:?}"
    );
    let action = reconciling.await.unwrap().expect("reconciled");
    assert_eq!(action, Action::requeue(Duration::from_secs(10)), "open: the status refresh");
    server.nothing_more().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_sale_that_sells_out_reports_sold_out() {
    let Fixture { ctx, mut server, sales, engine } = fixture().await;
    let fs =
        flash_sale(chrono::Duration::minutes(-5), chrono::Duration::hours(1), Warmup::default(), Some(Phase::Open));
    let sale = sales.apply_flash_sale("shop/drop", new_sale(&fs)).await.unwrap();
    sales.ensure_loaded(&sale).await.unwrap();
    engine
        .reserve(&ReservationRequest {
            sale: SaleId(sale.id),
            user: UserId(1),
            key: "k",
            quantity: Quantity::new(3).unwrap(),
            order: "o1",
            at_ms: Utc::now().timestamp_millis(),
            turn_ends_ms: None,
        })
        .await
        .unwrap();
    let reconciling = tokio::spawn(reconcile(Arc::new(fs.clone()), ctx));
    for workload in ["goodsmall-order", "goodsmall-payment"] {
        server.no_keda().await;
        server.hpas(vec![]).await;
        server.deployment(workload, 2, json!({})).await; // no replicas asked: nothing to change
    }
    let sold_out = server.event().await;
    assert_eq!(sold_out["reason"], "SoldOut");
    assert_eq!(sold_out["note"], "sold out: 0 sold, 3 awaiting payment");
    let status = server.status(&fs).await;
    assert_eq!(
        (status.phase, status.remaining, status.reserved, status.sold),
        (Some(Phase::SoldOut), Some(0), Some(3), Some(0))
    );
    assert_eq!(condition(&status, "Scaled").reason, "NoReplicasRequested");
    reconciling.await.unwrap().expect("reconciled");
    server.nothing_more().await;
}

fn new_sale(fs: &FlashSale) -> NewSale {
    NewSale {
        product_id: 7,
        merchant_id: 1,
        stock: fs.spec.stock,
        price: Price::from_cents(2_500),
        opens_at: fs.spec.opens_at,
        closes_at: fs.spec.closes_at,
        per_user_limit: fs.spec.per_user_limit,
        admission: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_close_restores_the_baseline_but_keeps_another_sales_claim() {
    let Fixture { ctx, mut server, sales, .. } = fixture().await;
    let fs = flash_sale(chrono::Duration::hours(-2), chrono::Duration::hours(-1), warmup(8, 4), Some(Phase::Open));
    let sale = sales.apply_flash_sale("shop/drop", new_sale(&fs)).await.unwrap();
    let reconciling = tokio::spawn(reconcile(Arc::new(fs.clone()), ctx));
    // This sale alone raised the order Deployment: back to 2.
    server.no_keda().await;
    server.hpas(vec![]).await;
    server
        .deployment(
            "goodsmall-order",
            8,
            json!({ "goodsmall.io/baseline-replicas": "2", "goodsmall.io/warmup-claims": "{\"shop/drop\":8}" }),
        )
        .await;
    let cleared = server
        .ok(
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/goodsmall-order",
            deployment("goodsmall-order", 8, json!({})),
        )
        .await;
    assert_eq!(
        cleared["metadata"]["annotations"],
        json!({ "goodsmall.io/baseline-replicas": null, "goodsmall.io/warmup-claims": null }),
        "annotations removed"
    );
    let scale = server.order_scale(2).await;
    assert_eq!(scale, json!({ "spec": { "replicas": 2 } }));
    // An HPA manages payment and another sale still holds it at 6: only our claim goes.
    server.no_keda().await;
    let hpa = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "payment",
            "namespace": "shop",
            "annotations": {
                "goodsmall.io/baseline-replicas": "1",
                "goodsmall.io/warmup-claims": "{\"shop/drop\":4,\"shop/other\":6}",
            },
        },
        "spec": {
            "scaleTargetRef": { "kind": "Deployment", "name": "goodsmall-payment", "apiVersion": "apps/v1" },
            "minReplicas": 6,
            "maxReplicas": 10,
        },
    });
    server.hpas(vec![hpa.clone()]).await;
    let kept =
        server.ok(Method::PATCH, "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/payment", hpa).await;
    assert_eq!(kept["spec"], json!({ "minReplicas": 6 }), "the other sale's claim is the largest left");
    assert_eq!(kept["metadata"]["annotations"]["goodsmall.io/warmup-claims"], "{\"shop/other\":6}");
    let closed = server.event().await;
    assert_eq!(closed["reason"], "Closed");
    let status = server.status(&fs).await;
    assert_eq!((status.phase, status.sale_id), (Some(Phase::Closed), Some(sale.id)));
    assert_eq!(condition(&status, "Scaled").reason, "Baseline");
    reconciling.await.unwrap().expect("reconciled");
    server.nothing_more().await;
    assert!(sales.find(sale.id).await.unwrap().unwrap().closed_at.is_some(), "the sale is recorded closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_closes_the_sale_removes_its_keys_then_the_finalizer() {
    let Fixture { ctx, mut server, sales, engine } = fixture().await;
    let mut fs = flash_sale(chrono::Duration::minutes(-5), chrono::Duration::hours(1), warmup(8, 4), Some(Phase::Open));
    fs.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    let sale = sales.apply_flash_sale("shop/drop", new_sale(&fs)).await.unwrap();
    sales.ensure_loaded(&sale).await.unwrap();
    let reconciling = tokio::spawn(reconcile(Arc::new(fs.clone()), ctx));
    server.no_keda().await;
    server.hpas(vec![]).await;
    server
        .deployment(
            "goodsmall-order",
            8,
            json!({ "goodsmall.io/baseline-replicas": "3", "goodsmall.io/warmup-claims": "{\"shop/drop\":8}" }),
        )
        .await;
    server
        .ok(
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/goodsmall-order",
            deployment("goodsmall-order", 8, json!({})),
        )
        .await;
    let scale = server.order_scale(3).await;
    assert_eq!(scale, json!({ "spec": { "replicas": 3 } }));
    server.no_keda().await;
    server.hpas(vec![]).await;
    server.deployment("goodsmall-payment", 1, json!({})).await;
    assert_eq!(server.event().await["reason"], "Closed");
    assert_eq!(server.event().await["reason"], "Removed");
    let patch = server
        .ok(
            Method::PATCH,
            "/apis/goodsmall.io/v1alpha1/namespaces/shop/flashsales/drop",
            serde_json::to_value(&fs).unwrap(),
        )
        .await;
    assert_eq!(patch[1], json!({ "op": "remove", "path": "/metadata/finalizers/0" }), "{patch}");
    reconciling.await.unwrap().expect("reconciled");
    server.nothing_more().await;
    assert_eq!(engine.counters(sale.id).await.unwrap(), None, "the sale's keys are gone");
    assert_eq!(
        sales.find_flash_sale("shop/drop").await.unwrap().map(|s| s.id),
        None,
        "the record no longer belongs to the manifest"
    );
}
