//! Catalog benchmarks (DESIGN §11, issue 2): CSV import of N rows and the desired-state recompute
//! of N SKUs × 4 channels, on SQLite (and PostgreSQL when `OMNISTOCK_BENCH_PG` holds an admin URL,
//! e.g. from `scripts/pg start`).
//!
//!     cargo bench --bench catalog                 # 100,000 SKUs
//!     OMNISTOCK_BENCH_SKUS=20000 cargo bench --bench catalog
//!
//! Prints one line per measurement; figures go in the README.

use std::time::Instant;

use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::catalog::{StockChange, change_stock, sync_locations};
use omnistock::store::Store;
use omnistock::sync::desired::{PriceKnobs, StockKnobs};
use omnistock::sync::plan::ChannelPlan;
use omnistock::sync::{SyncPlan, recompute_all};

fn plan(percent: u32) -> SyncPlan {
    SyncPlan {
        channels: ["amazon", "ebay", "facebook", "shop"]
            .iter()
            .map(|id| ChannelPlan {
                id: (*id).into(),
                locations: vec!["main".into()],
                stock: StockKnobs {
                    buffer: 1,
                    percent,
                    max: None,
                    min_shown: 0,
                },
                price: PriceKnobs::default(),
            })
            .collect(),
        rules: vec![],
    }
}

fn csv(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n * 64);
    s.push_str("sku,title,price,quantity,product_id,tags\n");
    for i in 0..n {
        s.push_str(&format!(
            "SKU-{i:07},Product {i} in a long enough title,{}.{:02},{},P{},tag{}\n",
            5 + i % 90,
            i % 100,
            i % 50,
            i / 3,
            i % 7
        ));
    }
    s.into_bytes()
}

async fn bench(label: &str, url: &str, n: usize) {
    let store = Store::open(url).await.expect("open");
    sync_locations(&store, &[("main".into(), "Main".into())])
        .await
        .unwrap();
    let bytes = csv(n);
    let opts = ImportOptions {
        dry_run: false,
        default_location: "main".into(),
        locations: vec!["main".into()],
        default_currency: "USD".into(),
    };
    let p = plan(100);
    let t = Instant::now();
    let r = import_bytes(&store, &p, &bytes, &opts).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label:<8} import {n} rows (+ desired state for 4 channels, {} rows): {secs:.2} s = {:.0} rows/s",
        r.desired.changed,
        n as f64 / secs
    );
    let t = Instant::now();
    let s = recompute_all(&store, &p).await.unwrap();
    println!(
        "{label:<8} recompute {} SKUs × 4 channels, nothing changed: {:.2} s",
        s.skus,
        t.elapsed().as_secs_f64()
    );
    let p50 = plan(50);
    let t = Instant::now();
    let s = recompute_all(&store, &p50).await.unwrap();
    println!(
        "{label:<8} recompute {} SKUs × 4 channels after a knob change ({} rows changed): {:.2} s",
        s.skus,
        s.changed,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let k = 1000;
    for i in 0..k {
        let sku = format!("SKU-{:07}", (i * 97) % n);
        change_stock(
            &store,
            &p50,
            &sku,
            "main",
            StockChange::Adjust(1),
            &format!("bench:{i}"),
        )
        .await
        .unwrap();
    }
    let per = t.elapsed().as_secs_f64() / k as f64 * 1000.0;
    println!(
        "{label:<8} manual stock change + recompute (one transaction each): {per:.2} ms per change"
    );
    store.close().await;
}

fn main() {
    let n: usize = std::env::var("OMNISTOCK_BENCH_SKUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        bench(
            "sqlite",
            &format!("sqlite://{}/bench.db", dir.path().display()),
            n,
        )
        .await;
        if let Ok(admin) = std::env::var("OMNISTOCK_BENCH_PG") {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
            let name = format!("omni_bench_{}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap();
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            bench("postgres", &format!("{base}/{name}"), n).await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
                .execute(&pool)
                .await;
        }
    });
}
