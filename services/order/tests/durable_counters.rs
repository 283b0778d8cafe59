//! What `GET /api/sales/{id}` reports survives the stock engine losing the sale: the
//! order service is restarted with an emptied engine (a Redis restarted without its
//! data; the one-process shop's in-process engine) and a closed sale still reads as
//! before, from its orders; a closed FlashSale's sale is rebuilt in the engine, so the
//! orders settling after the restart still move it. On MariaDB + Redis and on SQLite +
//! the in-process engine.

mod common;

use common::{backends, terms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sale_reads_the_same_after_the_engine_lost_it() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.create(terms(10)).await.unwrap();
        let paid = service.bought(&sale, 1, 1).await;
        service.paid(&sale, &paid).await;
        service.bought(&sale, 2, 2).await;
        service.sales.close(sale.id).await.unwrap();
        assert_eq!(service.counters(sale.id).await, (7, 2, 1), "{name}: before");

        let service = backend.restart(service).await;
        assert!(
            service.engine.counters(sale.id).await.unwrap().is_none(),
            "{name}: a closed plain sale is not put back into the engine"
        );
        assert_eq!(service.counters(sale.id).await, (7, 2, 1), "{name}: from the orders after the restart");
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_flash_sale_is_rebuilt_and_keeps_settling() {
    for backend in backends().await {
        let name = backend.database().split(':').next().unwrap().to_owned();
        let service = backend.start().await;
        let sale = service.sales.apply_flash_sale("local/restart-drop", terms(5)).await.unwrap();
        service.sales.ensure_loaded(&sale).await.unwrap();
        let unpaid = service.bought(&sale, 3, 1).await;
        service.sales.close(sale.id).await.unwrap();
        assert_eq!(service.counters(sale.id).await, (4, 1, 0), "{name}: before");

        let service = backend.restart(service).await;
        let rebuilt = service
            .engine
            .counters(sale.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: the FlashSale's sale is back in the engine"));
        assert!(rebuilt.closed, "{name}: and still closed");
        service.paid(&sale, &unpaid).await;
        assert_eq!(service.counters(sale.id).await, (4, 0, 1), "{name}: the payment after the restart moved it");
        service.stop().await;
    }
}
