//! The operator and the HPA on real CPU (metrics-server): the warm-up raises the order
//! HPA's minimum, purchase load makes the HPA add pods above it, the close gives the
//! minimum back and the HPA scales down. The two never fight: the minimum moves once up
//! and once down (no flapping), and the test prints the replica sequence it saw.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::{release::Release, shoppers};

/// What the HPA looked like at one moment: (seconds since the apply, minReplicas,
/// desired, current replicas).
type Sample = (u64, i64, i64, i64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_load_scales_the_order_service_above_the_warm_up_and_back_after_the_close() {
    // Quick decisions so that the test takes minutes: scale up at once, down after 10 s.
    let behavior = concat!(
        r#"{"scaleUp":{"stabilizationWindowSeconds":0},"#,
        r#""scaleDown":{"stabilizationWindowSeconds":10,"#,
        r#""policies":[{"type":"Percent","value":100,"periodSeconds":5}]}}"#
    );
    let (release, product) = Release::with_product(
        "pods-hpa",
        // 100m asked per order pod: idle pods (their background workers) stay well under
        // the target, a purchase crowd goes over it.
        &[
            "--set",
            "order.autoscaling.maxReplicas=4",
            "--set",
            "order.autoscaling.targetCPUUtilizationPercentage=50",
            "--set",
            "order.resources.requests.cpu=100m",
            "--set-json",
            &format!("order.autoscaling.behavior={behavior}"),
            // The crowd's orders go unpaid: released by the close, nothing left to settle.
            "--set",
            "payment.timeoutSecs=20",
        ],
    )
    .await;
    let release = Arc::new(release);

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let applied = Instant::now();
    let sampler = {
        let (release, samples, sampling) = (release.clone(), samples.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                let hpa = release.get("hpa/goodsmall-order");
                let field = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
                let sample = (
                    applied.elapsed().as_secs(),
                    field(&hpa["spec"]["minReplicas"]),
                    field(&hpa["status"]["desiredReplicas"]),
                    field(&hpa["status"]["currentReplicas"]),
                );
                let mut samples = samples.lock().unwrap();
                if samples.last().map(|s| (s.1, s.2, s.3)) != Some((sample.1, sample.2, sample.3)) {
                    samples.push(sample);
                }
                drop(samples);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    // Open for 50 s, warmed up to 2 order pods; shoppers buy until the HPA asks for more.
    let stock = 100_000;
    release.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&release.flash_sale_manifest(
            "busy",
            product,
            stock,
            Duration::from_secs(20),
            Duration::from_secs(50),
            "15s",
            Some(2),
        )),
    );
    let open = release.flash_sale_until("busy", "Open", Duration::from_secs(60), |fs| fs["status"]["phase"] == "Open");
    let sale = open["status"]["saleId"].as_i64().unwrap();
    let going = Arc::new(AtomicBool::new(true));
    let buying = {
        let (release, going) = (release.clone(), going.clone());
        tokio::spawn(async move { shoppers::buy_while(&release, sale, 10_000, 4, Duration::ZERO, going).await })
    };
    let scaled_up = release.wait_for("the HPA above the warm-up's 2 pods", Duration::from_secs(45), || {
        let hpa = release.get("hpa/goodsmall-order");
        (hpa["status"]["desiredReplicas"].as_i64().unwrap_or(0) > 2).then(|| applied.elapsed())
    });
    eprintln!("the HPA asked for more than 2 order pods {scaled_up:.1?} after the apply");
    going.store(false, Ordering::SeqCst);
    let crowd = buying.await.unwrap();
    assert_eq!(crowd.server_errors, 0, "no 5xx under load: {crowd:?}");

    // The close gives the minimum back; the HPA, with no load, scales down to it.
    release.flash_sale_until("busy", "Closed", Duration::from_secs(120), |fs| fs["status"]["phase"] == "Closed");
    // The HPA scales down in steps, each after fresh metrics (132 s after the close in a
    // quiet run); a failure shows the samples seen.
    let back_at_one = || {
        let hpa = release.get("hpa/goodsmall-order");
        (hpa["spec"]["minReplicas"] == 1 && hpa["status"]["currentReplicas"] == 1).then_some(())
    };
    let diagnose = || {
        let seen = samples.lock().unwrap().clone();
        format!("(s since apply, minReplicas, desired, current): {seen:?}\n{}", release.diagnose())
    };
    release.node.wait_for("the HPA back at its own minimum of 1", Duration::from_secs(300), back_at_one, diagnose);
    sampling.store(false, Ordering::SeqCst);
    sampler.join().unwrap();
    let samples = samples.lock().unwrap().clone();
    eprintln!("(s since apply, minReplicas, desired, current): {samples:?}");

    // The minimum moved 1 → 2 → 1, each value one unbroken run: nobody fought over it.
    let mut minimums: Vec<i64> = samples.iter().map(|s| s.1).collect();
    minimums.dedup();
    assert_eq!(minimums, [1, 2, 1], "the HPA's minimum over the drop: {samples:?}");
    let most = samples.iter().map(|s| s.3).max().unwrap();
    assert!(most > 2, "the HPA ran more pods than the warm-up asked for: {samples:?}");
}
