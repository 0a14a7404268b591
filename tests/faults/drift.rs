//! Drift injected on every channel kind (eBay, Amazon, Meta, Shopify, WooCommerce, Vendure) and
//! repaired by the daemon's own scheduled reconcile — `schedule.reconcile`, set here to every
//! second — never by `omnistock resync`.
//!
//! Each round changes quantities behind the daemon's back on every channel (`set_out_of_band`,
//! what a merchant editing in the marketplace's admin does): on two SKUs per channel, one of them
//! down to 0, raised above what it should show, or lowered, in turn. The test then waits for every
//! channel to show the desired quantities again and checks that the repair is the reconcile's: a
//! `drift` sync event for each injected (channel, SKU), the channel's reconcile tick claimed and
//! its last result recorded, and a new write of the desired value.
//!
//! `OMNISTOCK_FAULT_ROUNDS` raises the number of rounds (default 3); `OMNISTOCK_FAULT_SEED` replays
//! a run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::helpers::{Harness, Setup, sku};
use crate::invariants::{self, Expect};
use crate::summary::Figures;
use crate::util::{self, Rng};

const TEST: &str = "drift_on_every_channel_kind_is_repaired_by_the_scheduled_reconcile";
const CHANNELS: [&str; 6] = [
    "ebay_us",
    "amazon_us",
    "fb_shop",
    "shopify_shop",
    "woo_shop",
    "vendure_shop",
];
const SKUS: usize = 6;
/// How long a repair may take: the next reconcile tick (1 s), its snapshot, the push.
const REPAIR: Duration = Duration::from_secs(30);

/// How a quantity drifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drift {
    /// Sold out by hand.
    Zero,
    /// Raised above what the channel should show (the dangerous one: oversells).
    Up,
    /// Lowered, not to zero.
    Down,
}

const DRIFTS: [Drift; 3] = [Drift::Zero, Drift::Up, Drift::Down];

async fn drift_events(h: &Harness) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT channel, sku, COUNT(*) FROM sync_events WHERE kind = 'drift' AND sku IS NOT NULL \
         GROUP BY channel, sku",
    )
    .fetch_all(h.store.pool())
    .await
    .expect("drift events");
    rows.into_iter().map(|(c, s, n)| ((c, s), n)).collect()
}

async fn reconcile_tick(h: &Harness, channel: &str) -> Option<i64> {
    omnistock::schedule::last_tick(&h.store, &format!("{channel}:reconcile"))
        .await
        .expect("reconcile tick")
}

/// The last reconcile each channel runtime recorded: (differences found, rows marked).
fn last_reconciles(h: &Harness) -> BTreeMap<String, Option<(usize, usize)>> {
    h.daemon
        .as_ref()
        .expect("daemon")
        .shared
        .engine
        .runtimes()
        .iter()
        .map(|rt| {
            let last = rt.polls.lock().ok().and_then(|p| p.last_reconcile);
            (rt.spec.id.clone(), last)
        })
        .collect()
}

/// One injected drift.
#[derive(Debug)]
struct Injected {
    channel: String,
    sku: String,
    drift: Drift,
    value: u32,
    want: i64,
    writes_before: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_every_channel_kind_is_repaired_by_the_scheduled_reconcile() {
    let (mut rng, seed) = Rng::for_test(TEST);
    let rounds = util::knob("OMNISTOCK_FAULT_ROUNDS", 3);
    let mut h = Harness::new(Setup {
        channels: CHANNELS.to_vec(),
        skus: SKUS,
        quantity: 10,
        latency: Duration::from_millis(10),
        // Every second, in the cron crate's 6-field form (seconds first).
        channel_extra: "schedule = { reconcile = \"* * * * * *\" }",
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(Duration::from_secs(60), &[]).await;
    // Different quantities per SKU, so a repair to the wrong SKU's value shows.
    for i in 0..SKUS {
        util::set_stock(&h, &sku(i), 6 + 3 * i as i64, &format!("drift-test:{i}")).await;
    }
    h.wait_converged(Duration::from_secs(30), &[]).await;
    // The schedule runs before anything drifts.
    let running = util::wait_for(Duration::from_secs(15), || async {
        last_reconciles(&h).values().all(Option::is_some)
    })
    .await;
    assert!(
        running,
        "{TEST}: not every channel reconciled within 15 s: {:?}",
        last_reconciles(&h)
    );

    let mut v = Vec::new();
    let mut injected_total = 0u64;
    let mut by_drift = BTreeMap::<String, u64>::new();
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let events_before = drift_events(&h).await;
        let mut ticks_before = BTreeMap::new();
        for a in &h.accounts {
            ticks_before.insert(a.id.clone(), reconcile_tick(&h, &a.id).await);
        }
        let mut injected = Vec::new();
        for (ci, a) in h.accounts.iter().enumerate() {
            let first = rng.index(SKUS);
            let second = (first + 1 + rng.index(SKUS - 1)) % SKUS;
            for (k, i) in [first, second].into_iter().enumerate() {
                let s = sku(i);
                let drift = DRIFTS[(round + ci + k) % DRIFTS.len()];
                let (want, dirty) = h.desired(&a.id, &s).await;
                assert!(
                    !dirty && want >= 2,
                    "{} {s}: want {want} dirty {dirty}",
                    a.id
                );
                let value = match drift {
                    Drift::Zero => 0,
                    Drift::Up => want + rng.range(1, 40) as i64,
                    Drift::Down => rng.range(1, (want - 1) as u64) as i64,
                } as u32;
                let writes_before = a.writes_for(&s).len();
                a.set_out_of_band(&s, value);
                *by_drift
                    .entry(format!("{drift:?}").to_lowercase())
                    .or_default() += 1;
                injected.push(Injected {
                    channel: a.id.clone(),
                    sku: s,
                    drift,
                    value,
                    want,
                    writes_before,
                });
            }
        }
        injected_total += injected.len() as u64;
        let started = Instant::now();
        let repaired = util::wait_for(REPAIR, || async {
            injected
                .iter()
                .all(|d| h.account(&d.channel).shown(&d.sku).map(i64::from) == Some(d.want))
        })
        .await;
        slowest = slowest.max(started.elapsed());
        // The repair confirmed too (Meta applies a batch before the daemon hears it is done).
        h.wait_converged(REPAIR, &[]).await;
        let events = drift_events(&h).await;
        for d in &injected {
            let a = h.account(&d.channel);
            let shown = a.shown(&d.sku);
            let key = (d.channel.clone(), d.sku.clone());
            let new_events = events.get(&key).copied().unwrap_or(0)
                - events_before.get(&key).copied().unwrap_or(0);
            let writes = a.writes_for(&d.sku);
            let repair = writes[d.writes_before.min(writes.len())..]
                .iter()
                .filter_map(|w| w.visible_quantity.or(w.quantity))
                .any(|q| i64::from(q) == d.want);
            if !repaired && shown.map(i64::from) != Some(d.want) {
                v.push(format!(
                    "round {round}: {} {} drifted {:?} to {}, still shows {shown:?}, should be {} \
                     ({REPAIR:?} later)",
                    d.channel, d.sku, d.drift, d.value, d.want
                ));
            }
            // Exactly one: none means the repair was not the reconcile's; two means a reconcile
            // mistook a push in flight for drift.
            if new_events != 1 {
                v.push(format!(
                    "round {round}: {} {}: drift to {} recorded {new_events} times, expected once",
                    d.channel, d.sku, d.value
                ));
            }
            if !repair {
                v.push(format!(
                    "round {round}: {} {}: no write of {} after the drift to {}",
                    d.channel, d.sku, d.want, d.value
                ));
            }
        }
        for a in &h.accounts {
            let tick = reconcile_tick(&h, &a.id).await;
            if tick <= ticks_before[&a.id] {
                v.push(format!(
                    "round {round}: {}'s reconcile tick did not advance ({tick:?})",
                    a.id
                ));
            }
        }
    }
    let events: i64 = drift_events(&h).await.values().sum();
    let lasts = last_reconciles(&h);
    for a in &h.accounts {
        if lasts.get(&a.id).copied().flatten().is_none() {
            v.push(format!("{}: no reconcile recorded", a.id));
        }
    }
    v.extend(
        invariants::check(
            &h,
            &Expect {
                converge: Some(Duration::from_secs(30)),
                ..Expect::default()
            },
        )
        .await,
    );
    let mut figures = Figures {
        faults: injected_total,
        ..Figures::default()
    }
    .with("seed", seed)
    .with("channels", CHANNELS.len())
    .with("rounds", rounds)
    .with("drift_events", events)
    .with("slowest_repair_ms", slowest.as_millis());
    for (k, n) in &by_drift {
        figures = figures.with(k, n);
    }
    invariants::assert_none(TEST, &v, figures);
    h.finish().await;
}
