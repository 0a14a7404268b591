//! The dispatcher's bulk path (`omnistock::sync::bulk`) against a scripted connector whose bulk
//! jobs finish only when the test says so: a job is recorded before it is polled, a restart polls
//! it instead of submitting again, a per-item push overtaking a pending job is sent once more after
//! it, an aborted job retries every item, and a submission of unknown fate is resolved. On SQLite
//! and PostgreSQL (`OMNISTOCK_TEST_DB`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::catalog::{StockChange, change_stock};
use omnistock::store::Store;
use omnistock::store::lease::{Lease, channel_lease};
use omnistock::sync::SyncPlan;
use omnistock::sync::bulk::BulkRunner;
use omnistock::sync::dispatch::{DispatchOptions, Dispatcher, PushCounters};
use omnistock_connectors::common::Backoff;
use omnistock_connectors::{
    BulkDraft, BulkItem, BulkJob, BulkStatus, Capabilities, Connector, ConnectorError, Health,
    ItemOutcome, ListingUpdate, OrdersPage, Sku, SnapshotPage, StockUpdate,
};
use tokio_util::sync::CancellationToken;

use crate::support::{TestDb, fresh_db, plan};

const CHANNEL: &str = "amz";

/// How a job ends when released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ending {
    Done,
    Fatal,
}

#[derive(Default)]
struct FakeState {
    /// What the marketplace shows: SKU → quantity.
    shown: HashMap<String, u32>,
    /// Drafts by document id.
    drafts: HashMap<String, Vec<BulkItem>>,
    /// Jobs by id: (document id, finished?).
    jobs: HashMap<String, (String, bool)>,
    submits: usize,
    per_item_writes: Vec<(String, u32)>,
    /// Jobs finish when polled after this is set.
    release: Option<Ending>,
    /// bulk_choice takes everything when at least this many are due.
    bulk_threshold: usize,
    /// `bulk_in_flight_since` answers this.
    in_flight: bool,
    /// `bulk_submit` fails with a timeout (the job is created anyway) while true.
    submit_times_out: bool,
}

/// A connector with a bulk path whose jobs wait for the test.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<FakeState>>);

impl Scripted {
    fn st(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }
}

#[async_trait]
impl Connector for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: 5,
            max_listing_batch: 5,
            stock_carries_price: true,
            has_orders: false,
            max_bulk_batch: 1_000,
        }
    }

    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut st = self.st();
        for u in items {
            st.shown.insert(u.sku.to_string(), u.quantity);
            st.per_item_writes.push((u.sku.to_string(), u.quantity));
        }
        Ok(vec![
            ItemOutcome::Applied { external_id: None };
            items.len()
        ])
    }

    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut st = self.st();
        for u in items {
            st.shown.insert(u.sku.to_string(), u.quantity);
            st.per_item_writes.push((u.sku.to_string(), u.quantity));
        }
        Ok(vec![
            ItemOutcome::Applied { external_id: None };
            items.len()
        ])
    }

    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        Ok(vec![ItemOutcome::Applied { external_id: None }; skus.len()])
    }

    async fn fetch_orders(&self, _: i64, _: Option<String>) -> Result<OrdersPage, ConnectorError> {
        Ok(OrdersPage::default())
    }

    async fn snapshot_page(&self, _: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        Ok(SnapshotPage::default())
    }

    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        Ok(Health {
            summary: "scripted".into(),
            latency: Duration::ZERO,
        })
    }

    fn bulk_choice(&self, dirty: usize) -> usize {
        if dirty >= self.st().bulk_threshold {
            dirty
        } else {
            0
        }
    }

    async fn bulk_prepare(&self, items: &[BulkItem]) -> Result<BulkDraft, ConnectorError> {
        let mut st = self.st();
        let id = format!("doc-{}", st.drafts.len() + 1);
        st.drafts.insert(id.clone(), items.to_vec());
        Ok(BulkDraft {
            document_id: id,
            prepared_at_ms: omnistock::store::now_ms(),
            items: items.len(),
        })
    }

    async fn bulk_submit(&self, draft: &BulkDraft) -> Result<BulkJob, ConnectorError> {
        let mut st = self.st();
        st.submits += 1;
        let id = format!("feed-{}", st.submits);
        st.jobs
            .insert(id.clone(), (draft.document_id.clone(), false));
        if st.submit_times_out {
            return Err(ConnectorError::Timeout {
                message: "createFeed timed out".into(),
            });
        }
        Ok(BulkJob {
            id,
            document_id: draft.document_id.clone(),
            submitted_at_ms: omnistock::store::now_ms(),
            items: draft.items,
        })
    }

    async fn bulk_poll(&self, job: &BulkJob) -> Result<BulkStatus, ConnectorError> {
        let mut st = self.st();
        let Some(ending) = st.release else {
            return Ok(BulkStatus::Pending {
                poll_after: Duration::from_millis(20),
            });
        };
        let doc = st
            .jobs
            .get(&job.id)
            .map(|j| j.0.clone())
            .expect("known job");
        let items = st.drafts.get(&doc).cloned().expect("known draft");
        st.jobs.insert(job.id.clone(), (doc, true));
        let outcomes = items
            .iter()
            .map(|i| {
                if ending == Ending::Fatal {
                    return ItemOutcome::Retry {
                        error: "feed FATAL".into(),
                    };
                }
                let q = match i {
                    BulkItem::Stock(u) => u.quantity,
                    BulkItem::Listing(u) => u.quantity,
                    BulkItem::Delist(_) => 0,
                };
                // The job applies its (possibly older) value now, after any per-item call.
                st.shown.insert(i.sku().to_string(), q);
                ItemOutcome::Applied { external_id: None }
            })
            .collect();
        Ok(BulkStatus::Done { outcomes })
    }

    async fn bulk_in_flight_since(&self, _: i64) -> Result<bool, ConnectorError> {
        Ok(self.st().in_flight)
    }
}

struct World {
    _db: TestDb,
    store: Store,
    plan: SyncPlan,
    fake: Scripted,
    lease: Lease,
}

impl World {
    async fn new(skus: usize, threshold: usize) -> World {
        let db = fresh_db().await;
        let store = Store::open(&db.url).await.expect("open store");
        omnistock::catalog::sync_locations(&store, &[("main".into(), "Main".into())])
            .await
            .expect("locations");
        let plan = plan(&[CHANNEL]);
        let mut csv = String::from("sku,title,price,quantity\n");
        for i in 0..skus {
            csv.push_str(&format!("B-{i:04},Item {i},9.99,{}\n", 10 + i % 7));
        }
        import_bytes(
            &store,
            &plan,
            csv.as_bytes(),
            &ImportOptions {
                dry_run: false,
                default_location: "main".into(),
                locations: vec!["main".into()],
                default_currency: "USD".into(),
            },
        )
        .await
        .expect("import");
        let fake = Scripted::default();
        fake.st().bulk_threshold = threshold;
        let lease = Lease::acquire(
            &store,
            &channel_lease(CHANNEL),
            "test",
            Duration::from_secs(60),
        )
        .await
        .expect("lease")
        .expect("free lease");
        World {
            _db: db,
            store,
            plan,
            fake,
            lease,
        }
    }

    fn dispatcher(&self, runner: Arc<BulkRunner>) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            channel: CHANNEL.into(),
            connector: Arc::new(self.fake.clone()),
            store: self.store.clone(),
            options: DispatchOptions {
                stock_batch: 5,
                listing_batch: 5,
                concurrency: 2,
                backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
            },
            counters: Arc::new(Mutex::new(PushCounters::default())),
            bulk: runner,
            gate: None,
        })
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(CHANNEL)
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    async fn jobs(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM bulk_jobs WHERE channel = $1")
            .await
    }

    async fn dirty(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND desired_version > pushed_version")
            .await
    }

    async fn desired(&self, sku: &str) -> u32 {
        let q: i64 = sqlx::query_scalar(
            "SELECT desired_qty FROM channel_items WHERE channel = $1 AND sku = $2",
        )
        .bind(CHANNEL)
        .bind(sku)
        .fetch_one(self.store.pool())
        .await
        .expect("desired");
        u32::try_from(q).expect("non-negative")
    }

    async fn job_state(&self) -> Option<String> {
        sqlx::query_scalar("SELECT state FROM bulk_jobs WHERE channel = $1")
            .bind(CHANNEL)
            .fetch_optional(self.store.pool())
            .await
            .expect("job state")
    }
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_is_recorded_before_polling_and_a_restart_polls_it_instead_of_resubmitting() {
    let w = World::new(40, 20).await;
    let cancel = CancellationToken::new();
    let d = w.dispatcher(BulkRunner::new(cancel.clone()));
    let r = d.round(&w.lease, None).await.expect("round");
    assert_eq!(r.picked, 40, "all 40 rows went into the job");
    until("the job is submitted and recorded", || async {
        w.job_state().await.as_deref() == Some("submitted")
    })
    .await;
    assert_eq!(w.fake.st().submits, 1);
    assert!(
        w.fake.st().per_item_writes.is_empty(),
        "nothing went per item"
    );
    // Held rows are not picked again while their job is pending.
    let r = d.round(&w.lease, None).await.expect("round");
    assert_eq!(r.picked, 0);

    // "Crash": the runner stops; the job row stays.
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(w.jobs().await, 1);
    assert_eq!(w.dirty().await, 40);

    // A new owner resumes: it polls the recorded job, never submits it again.
    let d2 = w.dispatcher(BulkRunner::new(CancellationToken::new()));
    assert_eq!(d2.bulk.resume(&d2, &w.lease).await.expect("resume"), 1);
    w.fake.st().release = Some(Ending::Done);
    until("the job's results are recorded", || async {
        w.jobs().await == 0
    })
    .await;
    assert_eq!(w.dirty().await, 0);
    assert_eq!(w.fake.st().submits, 1, "the job was not resubmitted");
    for i in 0..40 {
        let sku = format!("B-{i:04}");
        let want = w.desired(&sku).await;
        let shown = w.fake.st().shown.get(&sku).copied();
        assert_eq!(shown, Some(want), "{sku}");
    }
    let held: i64 = w
        .count("SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND bulk_version <> 0")
        .await;
    assert_eq!(held, 0, "rows released");
    assert_eq!(d2.bulk.counters().resumed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_a_pending_feed_goes_at_once_and_again_after_the_feed() {
    let w = World::new(30, 20).await;
    let d = w.dispatcher(BulkRunner::new(CancellationToken::new()));
    d.round(&w.lease, None).await.expect("round");
    until("the job is submitted", || async {
        w.job_state().await.as_deref() == Some("submitted")
    })
    .await;
    // An order lowers one SKU while the feed is pending: it goes out by a per-item push now.
    change_stock(
        &w.store,
        &w.plan,
        "B-0003",
        "main",
        StockChange::Set(1),
        "manual:t1",
    )
    .await
    .expect("stock change");
    let r = d.round(&w.lease, None).await.expect("round");
    assert_eq!(r.picked, 1, "only the changed row is due");
    assert_eq!(w.fake.st().shown.get("B-0003"), Some(&1));
    // The feed then applies its older value; its completion sends the current one again.
    w.fake.st().release = Some(Ending::Done);
    until("the job finishes", || async { w.jobs().await == 0 }).await;
    assert_eq!(w.dirty().await, 1, "the overtaken row is due again");
    assert_ne!(
        w.fake.st().shown.get("B-0003"),
        Some(&1),
        "the feed's old value landed"
    );
    let r = d.round(&w.lease, None).await.expect("round");
    assert_eq!(r.applied, 1);
    assert_eq!(
        w.fake.st().shown.get("B-0003"),
        Some(&1),
        "current value is the last write"
    );
    assert_eq!(w.dirty().await, 0);
    assert_eq!(d.bulk.counters().resent_after_overtake, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_feed_retries_every_item_and_few_items_go_per_item() {
    let w = World::new(25, 20).await;
    let d = w.dispatcher(BulkRunner::new(CancellationToken::new()));
    w.fake.st().release = Some(Ending::Fatal);
    d.round(&w.lease, None).await.expect("round");
    until("the job ends", || async {
        w.jobs().await == 0 && w.fake.st().submits == 1
    })
    .await;
    let backed_off: i64 = w
        .count("SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND attempts = 1 AND desired_version > pushed_version")
        .await;
    assert_eq!(backed_off, 25, "every item is retried, none lost");
    // Below the connector's threshold the retries go per item.
    w.fake.st().bulk_threshold = 1_000;
    let deadline = Instant::now() + Duration::from_secs(10);
    d.drain(&w.lease, None, deadline, |_| {})
        .await
        .expect("drain");
    assert_eq!(w.dirty().await, 0);
    assert_eq!(w.fake.st().per_item_writes.len(), 25);
    assert_eq!(w.fake.st().submits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_of_unknown_fate_holds_its_rows_until_no_feed_is_processing() {
    let w = World::new(20, 20).await;
    {
        let mut st = w.fake.st();
        st.submit_times_out = true;
        st.in_flight = true;
    }
    let d = w.dispatcher(BulkRunner::new(CancellationToken::new()));
    d.round(&w.lease, None).await.expect("round");
    until("the job is recorded as prepared", || async {
        w.job_state().await.as_deref() == Some("prepared") && w.fake.st().submits == 1
    })
    .await;
    // While a feed that may be ours is processing, its rows are held: nothing is due.
    w.fake.st().bulk_threshold = 1_000;
    let r = d.round(&w.lease, None).await.expect("round");
    assert_eq!(r.picked, 0);
    assert_eq!(w.jobs().await, 1);
    // No feed processing any more (it ran or never existed): the rows go out again.
    w.fake.st().in_flight = false;
    until("the job is dropped", || async { w.jobs().await == 0 }).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    d.drain(&w.lease, None, deadline, |_| {})
        .await
        .expect("drain");
    assert_eq!(w.dirty().await, 0);
    assert_eq!(w.fake.st().per_item_writes.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_larger_than_one_statement_chunk_take_and_release_every_row() {
    // 1,100 rows: a job of 1,000 (the fake's maximum), then one for the rest; the row updates of a job go
    // in chunks of 500 SKUs, so this crosses chunk boundaries.
    let w = World::new(1_100, 20).await;
    let d = w.dispatcher(BulkRunner::new(CancellationToken::new()));
    d.round(&w.lease, None).await.expect("round");
    until("the first job is submitted", || async {
        w.job_state().await.as_deref() == Some("submitted")
    })
    .await;
    let held: i64 = w
        .count("SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND bulk_version = desired_version")
        .await;
    assert_eq!(
        held, 1_000,
        "every row of the job is held at its own version"
    );
    w.fake.st().release = Some(Ending::Done);
    let deadline = Instant::now() + Duration::from_secs(20);
    d.drain(&w.lease, None, deadline, |_| {})
        .await
        .expect("drain");
    until("both jobs are done", || async { w.jobs().await == 0 }).await;
    assert_eq!(w.dirty().await, 0);
    assert_eq!(w.fake.st().submits, 2);
    let held: i64 = w
        .count("SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND bulk_version <> 0")
        .await;
    assert_eq!(held, 0, "every row released");
    // The round that started the first job also sent a few of the other 100 one by one.
    assert!(w.fake.st().per_item_writes.len() < 100);
}
