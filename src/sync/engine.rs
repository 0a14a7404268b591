//! The engine: one runtime per channel account, each with four tasks.
//!
//! - **lease keeper**: takes the channel's lease and renews it every third of its lifetime; the
//!   other tasks work only while it holds the lease (several instances on one PostgreSQL spread
//!   channels between them; a CLI `resync` borrows a channel the same way);
//! - **dispatcher loop**: rounds of [`Dispatcher::round`] while there is work; when idle it waits
//!   for a wake-up (an order ingested, a stock change made in this process) or a short tick that
//!   notices changes made by other processes (`omnistock stock set`, an import);
//! - **order poller**: every `poll_interval_secs`, on the `schedule.orders` cron, and at once when
//!   woken (webhook hints, later);
//! - **reconcile schedule**: `schedule.reconcile`, claimed exactly once per tick.
//!
//! All tasks stop between units of work when the channel's token is cancelled (shutdown, or a
//! reload that changed the channel's section).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omnistock_connectors::{Connector, ErrorClass};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::SyncPlan;
use super::bulk::BulkRunner;
use super::dispatch::{Counters, DispatchOptions, Dispatcher, PushCounters, RoundError};
use super::intake::{self, PollReport};
use crate::reconcile;
use crate::store::lease::{Lease, channel_lease};
use crate::store::{Store, now_ms};

/// How often an idle dispatcher looks for changes made by other processes.
pub const IDLE_TICK: Duration = Duration::from_millis(250);

/// What a channel runtime needs from the config.
#[derive(Clone)]
pub struct ChannelSpec {
    /// Channel id.
    pub id: String,
    /// Marketplace type.
    pub kind: String,
    /// The connector.
    pub connector: Arc<dyn Connector>,
    /// Dispatcher options.
    pub dispatch: DispatchOptions,
    /// Seconds between order polls.
    pub poll_interval: Duration,
    /// Overlap window of the order cursor.
    pub overlap: Duration,
    /// `schedule.orders`.
    pub orders_schedule: Option<cron::Schedule>,
    /// `schedule.reconcile`.
    pub reconcile_schedule: Option<cron::Schedule>,
    /// Lease lifetime.
    pub lease_ttl: Duration,
    /// Identifies the channel's settings; a reload restarts the runtime when it changes.
    pub fingerprint: String,
}

/// Order-poll counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollCounters {
    /// Polls that finished.
    pub polls: u64,
    /// Polls that failed.
    pub failures: u64,
    /// Orders recorded for the first time.
    pub new_orders: u64,
    /// Status moves applied.
    pub updates: u64,
    /// Oversold lines recorded.
    pub oversold_lines: u64,
    /// When the last poll finished (unix ms).
    pub last_poll_at: Option<i64>,
    /// The last poll's error.
    pub last_error: Option<String>,
    /// The last reconcile: differences found, rows marked.
    pub last_reconcile: Option<(usize, usize)>,
}

/// A running channel.
pub struct ChannelRuntime {
    /// Its settings.
    pub spec: ChannelSpec,
    /// Push counters.
    pub counters: Counters,
    /// Poll counters.
    pub polls: Arc<Mutex<PollCounters>>,
    /// Wakes the dispatcher.
    pub push_now: Arc<Notify>,
    /// Wakes the order poller.
    pub poll_now: Arc<Notify>,
    /// The lease while held.
    pub lease: watch::Receiver<Option<Lease>>,
    /// Background bulk jobs.
    pub bulk: Arc<BulkRunner>,
    cancel: CancellationToken,
}

/// Why a channel has no runtime.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelProblem {
    /// Channel id.
    pub channel: String,
    /// Marketplace type.
    pub kind: String,
    /// What is wrong.
    pub error: String,
}

/// All channel runtimes of this process.
pub struct Engine {
    store: Store,
    owner: String,
    plan: watch::Receiver<Arc<SyncPlan>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    channels: Mutex<BTreeMap<String, Arc<ChannelRuntime>>>,
    problems: Mutex<Vec<ChannelProblem>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// An engine with no channels yet; tasks are spawned on `tracker` and stop with `cancel`.
    pub fn new(
        store: Store,
        owner: String,
        plan: watch::Receiver<Arc<SyncPlan>>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            owner,
            plan,
            tracker,
            cancel,
            channels: Mutex::new(BTreeMap::new()),
            problems: Mutex::new(Vec::new()),
        })
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Starts, restarts (settings changed) and stops runtimes so they match `specs`.
    pub fn apply(self: &Arc<Self>, specs: Vec<ChannelSpec>, problems: Vec<ChannelProblem>) {
        let mut channels = lock(&self.channels);
        let wanted: BTreeMap<String, ChannelSpec> =
            specs.into_iter().map(|s| (s.id.clone(), s)).collect();
        let stale: Vec<String> = channels
            .iter()
            .filter(|(id, rt)| {
                wanted
                    .get(*id)
                    .is_none_or(|s| s.fingerprint != rt.spec.fingerprint)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(rt) = channels.remove(&id) {
                info!(channel = %id, "Stopping channel (removed or its settings changed).");
                rt.cancel.cancel();
            }
        }
        for (id, spec) in wanted {
            if channels.contains_key(&id) {
                continue;
            }
            let rt = self.spawn(spec);
            channels.insert(id, rt);
        }
        *lock(&self.problems) = problems;
    }

    fn spawn(self: &Arc<Self>, spec: ChannelSpec) -> Arc<ChannelRuntime> {
        let (lease_tx, lease_rx) = watch::channel(None);
        let cancel = self.cancel.child_token();
        let rt = Arc::new(ChannelRuntime {
            bulk: BulkRunner::new(cancel.clone()),
            counters: Arc::new(Mutex::new(PushCounters::default())),
            polls: Arc::new(Mutex::new(PollCounters::default())),
            push_now: Arc::new(Notify::new()),
            poll_now: Arc::new(Notify::new()),
            lease: lease_rx,
            cancel,
            spec,
        });
        info!(channel = %rt.spec.id, kind = %rt.spec.kind, "Starting channel.");
        self.tracker.spawn(keep_lease(
            self.store.clone(),
            self.owner.clone(),
            Arc::clone(&rt),
            lease_tx,
        ));
        self.tracker
            .spawn(dispatch_loop(self.store.clone(), Arc::clone(&rt)));
        self.tracker.spawn(poll_loop(
            self.store.clone(),
            self.plan.clone(),
            Arc::clone(self),
            Arc::clone(&rt),
        ));
        if let Some(s) = rt.spec.orders_schedule.clone() {
            let rt2 = Arc::clone(&rt);
            let lease = rt.lease.clone();
            self.tracker.spawn(crate::schedule::run_schedule(
                self.store.clone(),
                format!("{}:orders", rt.spec.id),
                s,
                rt.cancel.clone(),
                move || lease.borrow().is_some(),
                move |_| {
                    rt2.poll_now.notify_one();
                    async { Ok(()) }
                },
            ));
        }
        if let Some(s) = rt.spec.reconcile_schedule.clone() {
            let rt2 = Arc::clone(&rt);
            let store = self.store.clone();
            let lease = rt.lease.clone();
            self.tracker.spawn(crate::schedule::run_schedule(
                self.store.clone(),
                format!("{}:reconcile", rt.spec.id),
                s,
                rt.cancel.clone(),
                move || lease.borrow().is_some(),
                move |_| {
                    let rt = Arc::clone(&rt2);
                    let store = store.clone();
                    async move { reconcile_channel(&store, &rt).await }
                },
            ));
        }
        rt
    }

    /// Wakes every dispatcher (after a stock change in this process).
    pub fn wake_pushers(&self) {
        for rt in lock(&self.channels).values() {
            rt.push_now.notify_one();
        }
    }

    /// Asks a channel's poller to poll now; false when the channel has no runtime.
    pub fn poll_now(&self, channel: &str) -> bool {
        match lock(&self.channels).get(channel) {
            Some(rt) => {
                rt.poll_now.notify_one();
                true
            }
            None => false,
        }
    }

    /// The running channels.
    pub fn runtimes(&self) -> Vec<Arc<ChannelRuntime>> {
        lock(&self.channels).values().cloned().collect()
    }

    /// Channels that could not start.
    pub fn problems(&self) -> Vec<ChannelProblem> {
        lock(&self.problems).clone()
    }

    /// Stops every runtime (their tasks end between units of work).
    pub fn stop_all(&self) {
        for (_, rt) in std::mem::take(&mut *lock(&self.channels)) {
            rt.cancel.cancel();
        }
    }
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn keep_lease(
    store: Store,
    owner: String,
    rt: Arc<ChannelRuntime>,
    tx: watch::Sender<Option<Lease>>,
) {
    let name = channel_lease(&rt.spec.id);
    let ttl = rt.spec.lease_ttl;
    let every = (ttl / 3).max(Duration::from_millis(100));
    let mut waiting_logged = false;
    loop {
        let current: Option<Lease> = tx.borrow().clone();
        let next = match current {
            Some(l) => match l.renew(&store, ttl).await {
                Ok(true) => Some(l),
                Ok(false) => {
                    warn!(channel = %rt.spec.id, "Lost the channel lease; pausing pushes and polls.");
                    None
                }
                Err(e) => {
                    warn!(channel = %rt.spec.id, error = %e, "Cannot renew the channel lease.");
                    Some(l)
                }
            },
            None => match Lease::acquire(&store, &name, &owner, ttl).await {
                Ok(Some(l)) => {
                    info!(channel = %rt.spec.id, epoch = l.epoch, "Own the channel.");
                    waiting_logged = false;
                    Some(l)
                }
                Ok(None) => {
                    if !waiting_logged {
                        info!(channel = %rt.spec.id, "Another process owns the channel; waiting for it.");
                        waiting_logged = true;
                    }
                    None
                }
                Err(e) => {
                    warn!(channel = %rt.spec.id, error = %e, "Cannot take the channel lease.");
                    None
                }
            },
        };
        let had = tx.borrow().is_some();
        let has = next.is_some();
        tx.send_replace(next);
        if has && !had {
            rt.push_now.notify_one();
            rt.poll_now.notify_one();
        }
        // While waiting for another owner, try more often so a released lease is picked up soon.
        let wait = if has {
            every
        } else {
            every.min(Duration::from_secs(1))
        };
        if !sleep_or_cancel(wait, &rt.cancel).await {
            let held = tx.borrow().clone();
            if let Some(l) = held
                && let Err(e) = l.release(&store).await
            {
                debug!(channel = %rt.spec.id, error = %e, "Could not release the lease on shutdown.");
            }
            return;
        }
    }
}

async fn dispatch_loop(store: Store, rt: Arc<ChannelRuntime>) {
    let dispatcher = Arc::new(Dispatcher {
        channel: rt.spec.id.clone(),
        connector: Arc::clone(&rt.spec.connector),
        store,
        options: rt.spec.dispatch.clone(),
        counters: Arc::clone(&rt.counters),
        bulk: Arc::clone(&rt.bulk),
    });
    let mut failures: u32 = 0;
    let mut lease_rx = rt.lease.clone();
    let mut resumed_epoch: Option<i64> = None;
    loop {
        if rt.cancel.is_cancelled() {
            return;
        }
        let Some(lease) = lease_rx.borrow_and_update().clone() else {
            tokio::select! {
                _ = rt.cancel.cancelled() => return,
                _ = lease_rx.changed() => continue,
            }
        };
        if resumed_epoch != Some(lease.epoch) {
            // A new lease (start, takeover): pick up the bulk jobs a previous owner recorded.
            match dispatcher.bulk.resume(&dispatcher, &lease).await {
                Ok(_) => resumed_epoch = Some(lease.epoch),
                Err(e) => {
                    warn!(channel = %rt.spec.id, error = %e, "Cannot read recorded bulk jobs yet.")
                }
            }
        }
        match dispatcher.round(&lease, None).await {
            Ok(r) if r.picked == 0 => {
                failures = 0;
                tokio::select! {
                    _ = rt.cancel.cancelled() => return,
                    _ = rt.push_now.notified() => {}
                    _ = tokio::time::sleep(IDLE_TICK) => {}
                }
            }
            Ok(_) => failures = 0,
            Err(RoundError::LeaseLost(_)) => {
                warn!(channel = %rt.spec.id, "Results not recorded: the lease was lost; another process will push.");
                // The keeper notices at its next renewal; wait for it.
                tokio::select! {
                    _ = rt.cancel.cancelled() => return,
                    _ = lease_rx.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(RoundError::Call(e)) if e.class() == ErrorClass::RateLimited => {
                // The connector paused its budget; the next call waits there. Nothing is burnt.
                debug!(channel = %rt.spec.id, error = %e, "Throttled by the marketplace.");
                if !sleep_or_cancel(Duration::from_millis(20), &rt.cancel).await {
                    return;
                }
            }
            Err(RoundError::Call(e)) => {
                failures = failures.saturating_add(1);
                let wait = rt.spec.dispatch.backoff.delay(failures);
                bump_failures(&rt.counters, failures);
                warn!(channel = %rt.spec.id, class = e.class().as_str(), error = %e, retry_in_ms = wait.as_millis() as u64, "Push failed; the channel backs off.");
                if !sleep_or_cancel(wait, &rt.cancel).await {
                    return;
                }
            }
            Err(RoundError::Store(e)) => {
                failures = failures.saturating_add(1);
                warn!(channel = %rt.spec.id, error = %e, "Database error while pushing; retrying.");
                if !sleep_or_cancel(
                    rt.spec
                        .dispatch
                        .backoff
                        .delay(failures)
                        .min(Duration::from_secs(5)),
                    &rt.cancel,
                )
                .await
                {
                    return;
                }
            }
        }
    }
}

fn bump_failures(c: &Counters, n: u32) {
    match c.lock() {
        Ok(mut g) => g.consecutive_failures = n,
        Err(p) => p.into_inner().consecutive_failures = n,
    }
}

async fn poll_loop(
    store: Store,
    plan: watch::Receiver<Arc<SyncPlan>>,
    engine: Arc<Engine>,
    rt: Arc<ChannelRuntime>,
) {
    if !rt.spec.connector.capabilities().has_orders {
        return;
    }
    let mut failures: u32 = 0;
    loop {
        let interval = if failures == 0 {
            rt.spec.poll_interval
        } else {
            rt.spec
                .dispatch
                .backoff
                .delay(failures)
                .max(Duration::from_millis(200))
                .min(rt.spec.poll_interval.max(Duration::from_secs(1)) * 4)
        };
        tokio::select! {
            _ = rt.cancel.cancelled() => return,
            _ = rt.poll_now.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
        if rt.lease.borrow().is_none() {
            continue;
        }
        let plan = Arc::clone(&plan.borrow());
        let started = Instant::now();
        let result = intake::poll_orders(
            &store,
            &plan,
            &rt.spec.id,
            rt.spec.connector.as_ref(),
            rt.spec.overlap,
        )
        .await;
        match result {
            Ok(report) => {
                failures = 0;
                note_poll(&rt, &report);
                if report.skus_touched > 0 {
                    engine.wake_pushers();
                }
                debug!(channel = %rt.spec.id, ms = started.elapsed().as_millis() as u64, "Order poll done.");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                warn!(channel = %rt.spec.id, error = %e, "Order poll failed; retrying with backoff.");
                let mut p = lock(&rt.polls);
                p.failures += 1;
                p.last_error = Some(e.to_string());
            }
        }
    }
}

fn note_poll(rt: &ChannelRuntime, r: &PollReport) {
    let mut p = lock(&rt.polls);
    p.polls += 1;
    p.new_orders += r.new as u64;
    p.updates += r.updated as u64;
    p.oversold_lines += r.oversold_lines as u64;
    p.last_poll_at = Some(now_ms());
    p.last_error = r
        .failed
        .first()
        .map(|(id, e)| format!("{} order(s) not ingested, first {id}: {e}", r.failed.len()));
}

/// A scheduled reconcile of one channel: snapshot, diff, mark what drifted.
pub async fn reconcile_channel(store: &Store, rt: &ChannelRuntime) -> anyhow::Result<()> {
    let started = now_ms();
    let desired = reconcile::load_desired(store, &rt.spec.id, None).await?;
    let remote = reconcile::snapshot(rt.spec.connector.as_ref(), |_| {}).await?;
    let diff = reconcile::diff(&rt.spec.id, &desired, &remote, started, None);
    let applied = reconcile::apply(store, &diff, false, None).await?;
    lock(&rt.polls).last_reconcile = Some((diff.differences.len(), applied.marked));
    info!(
        channel = %rt.spec.id,
        compared = diff.compared,
        differences = diff.differences.len(),
        marked = applied.marked,
        "Reconciled."
    );
    if applied.marked > 0 {
        rt.push_now.notify_one();
    }
    Ok(())
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .field("channels", &lock(&self.channels).keys().collect::<Vec<_>>())
            .finish()
    }
}
