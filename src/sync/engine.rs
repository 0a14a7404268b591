//! The engine: one runtime per channel account, each with four tasks.
//!
//! - **lease keeper**: takes the channel's lease and renews it every third of its lifetime; the
//!   other tasks work only while it holds the lease (a CLI `resync` borrows a channel the same
//!   way). Several instances on one PostgreSQL spread channels between them: each takes at most
//!   its fair share, `ceil(channels / live instances)` (live = a fresh heartbeat in `instances`),
//!   and hands extra channels over when another instance joins — after its in-flight round has
//!   recorded its results. A lease nobody takes for a whole lifetime is taken whatever the share
//!   (instances whose configs differ must not leave a channel orphaned);
//! - **dispatcher loop**: rounds of [`Dispatcher::round`] while there is work; when idle it waits
//!   for a wake-up (an order ingested, a stock change made in this process) or a short tick that
//!   notices changes made by other processes (`omnistock stock set`, an import);
//! - **order poller**: every `poll_interval_secs`, on the `schedule.orders` cron, and at once when
//!   woken (webhook hints, later);
//! - **reconcile schedule**: `schedule.reconcile`, claimed exactly once per tick.
//!
//! All tasks stop between units of work when the channel's token is cancelled (shutdown, or a
//! reload that changed the channel's section).
//!
//! Every marketplace call of a channel runs inside a send gate
//! ([`omnistock_connectors::common::gate`]) that is open only while the local lease deadline
//! (three quarters of a lifetime after the last successful renewal, on the monotonic clock) has
//! not passed. A process frozen past its lease (`kill -STOP`, a paused VM) wakes with the gate
//! closed: the batch it was about to send is not sent, and the fence keeps it from recording
//! anything.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omnistock_connectors::common::{SendGate, maybe_gated};
use omnistock_connectors::{Connector, ErrorClass};
use serde::Serialize;
use tokio::sync::{Notify, RwLock, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::SyncPlan;
use super::bulk::BulkRunner;
use super::dispatch::{Counters, DispatchOptions, Dispatcher, PushCounters, RoundError};
use super::intake::{self, PollReport};
use crate::reconcile;
use crate::store::lease::{Lease, Peek, channel_lease, held_per_owner, peek};
use crate::store::{Backend, Store, instances, now_ms};

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
    /// Until when (monotonic) this process may send to the channel; `None` without a lease.
    deadline: Arc<Mutex<Option<Instant>>>,
    /// Units of work (a dispatch round, an order poll, a reconcile) hold it shared; handing the
    /// channel to another instance takes it exclusively, so results are recorded before the lease
    /// is released.
    work: RwLock<()>,
    cancel: CancellationToken,
}

impl ChannelRuntime {
    /// The send gate of this channel: open while the local lease deadline has not passed.
    pub fn send_gate(&self) -> SendGate {
        let deadline = Arc::clone(&self.deadline);
        Arc::new(move || lock(&deadline).is_some_and(|d| Instant::now() < d))
    }

    fn set_deadline(&self, d: Option<Instant>) {
        *lock(&self.deadline) = d;
    }
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
    /// Live instances sharing the database (this one included), from the heartbeats.
    live: AtomicUsize,
    /// Channels other live instances could still take before reaching their share: how many
    /// this instance may hand over.
    room_elsewhere: AtomicUsize,
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
            live: AtomicUsize::new(1),
            room_elsewhere: AtomicUsize::new(0),
        })
    }

    /// Starts heartbeating this instance in `instances` every third of `ttl` and counting the
    /// live ones (fresh within `ttl`), which sets the fair share of channels. On PostgreSQL it
    /// also relays poll hints between instances. Ends (and removes the row) on shutdown.
    pub fn spawn_membership(self: &Arc<Self>, ttl: Duration) {
        let me = Arc::clone(self);
        self.tracker.spawn(async move { me.membership(ttl).await });
    }

    async fn membership(&self, ttl: Duration) {
        let started_at = now_ms();
        let every = (ttl / 3).max(Duration::from_millis(100));
        let mut beats: u64 = 0;
        loop {
            match instances::heartbeat(&self.store, &self.owner, started_at).await {
                Ok(()) => {
                    if let Err(e) = self.count_instances(ttl).await {
                        warn!(error = %e, "Cannot count live instances.");
                    }
                }
                Err(e) => warn!(error = %e, "Cannot record this instance's heartbeat."),
            }
            beats += 1;
            if beats % 1024 == 1 {
                let _ = instances::prune(&self.store, Duration::from_secs(86_400)).await;
            }
            if !sleep_or_cancel(every, &self.cancel).await {
                if let Err(e) = instances::leave(&self.store, &self.owner).await {
                    debug!(error = %e, "Could not remove this instance's row on shutdown.");
                }
                return;
            }
        }
    }

    async fn count_instances(&self, ttl: Duration) -> Result<(), crate::store::StoreError> {
        let live = instances::live(&self.store, ttl).await?;
        let n = live.len().max(1);
        let before = self.live.swap(n, Ordering::SeqCst);
        let share = self.fair_share();
        if before != n {
            info!(
                instances = n,
                share, "Instances sharing the database changed."
            );
        }
        // Room on instances that heartbeat like a live one (within half a lease lifetime): a
        // crashed instance's row still counts as live for a while, but must never be handed a
        // channel.
        let held = held_per_owner(&self.store).await?;
        let fresh_after = now_ms() - i64::try_from((ttl / 2).as_millis()).unwrap_or(0);
        let room: usize = live
            .iter()
            .filter(|i| i.owner != self.owner && i.heartbeat_at > fresh_after)
            .map(|i| share.saturating_sub(held.get(&i.owner).copied().unwrap_or(0)))
            .sum();
        self.room_elsewhere.store(room, Ordering::SeqCst);
        Ok(())
    }

    /// Live instances sharing the database, as last counted.
    pub fn live_instances(&self) -> usize {
        self.live.load(Ordering::SeqCst).max(1)
    }

    /// How many channels this instance should own: `ceil(channels / live instances)`.
    pub fn fair_share(&self) -> usize {
        lock(&self.channels)
            .len()
            .div_ceil(self.live_instances())
            .max(1)
    }

    /// Ids of the channels whose lease this process holds, sorted.
    pub fn held(&self) -> Vec<String> {
        lock(&self.channels)
            .iter()
            .filter(|(_, rt)| rt.lease.borrow().is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// True when this process holds more than its share, `channel` is one of the extras (the
    /// last ones by id, so every keeper agrees which) and another live instance has room for it;
    /// claims that room.
    fn should_hand_off(&self, channel: &str) -> bool {
        let held = self.held();
        let share = self.fair_share();
        held.len() > share
            && held
                .iter()
                .position(|c| c == channel)
                .is_some_and(|i| i >= share)
            && self
                .room_elsewhere
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                .is_ok()
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
            deadline: Arc::new(Mutex::new(None)),
            work: RwLock::new(()),
            cancel,
            spec,
        });
        info!(channel = %rt.spec.id, kind = %rt.spec.kind, "Starting channel.");
        self.tracker.spawn(keep_lease(
            self.store.clone(),
            Arc::clone(self),
            Arc::clone(&rt),
            lease_tx,
        ));
        if self.store.backend() == Backend::Postgres {
            self.tracker
                .spawn(relay_poll_requests(self.store.clone(), Arc::clone(&rt)));
        }
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
                    async move {
                        let _work = rt.work.read().await;
                        maybe_gated(Some(rt.send_gate()), reconcile_channel(&store, &rt)).await
                    }
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

    /// Asks a channel's poller to poll now; false when this process does not own the channel
    /// (see [`request_poll`] for the instance that does).
    pub fn poll_now(&self, channel: &str) -> bool {
        match lock(&self.channels).get(channel) {
            Some(rt) if rt.lease.borrow().is_some() => {
                rt.poll_now.notify_one();
                true
            }
            _ => false,
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
    engine: Arc<Engine>,
    rt: Arc<ChannelRuntime>,
    tx: watch::Sender<Option<Lease>>,
) {
    let name = channel_lease(&rt.spec.id);
    let ttl = rt.spec.lease_ttl;
    let every = (ttl / 3).max(Duration::from_millis(100));
    // Sends stop a quarter of a lifetime before the lease lapses in the database: room for clock
    // drift between instances and for the request already on the wire.
    let valid_for = ttl - ttl / 4;
    let mut waiting_logged = false;
    let mut free_since: Option<Instant> = None;
    loop {
        let current: Option<Lease> = tx.borrow().clone();
        let next = match current {
            Some(l) if engine.should_hand_off(&rt.spec.id) => {
                hand_off(&store, &rt, &tx, &l, ttl).await;
                info!(channel = %rt.spec.id, instances = engine.live_instances(), share = engine.fair_share(), "Handed the channel to another instance (fair share).");
                None
            }
            Some(l) => {
                let t0 = Instant::now();
                match l.renew(&store, ttl).await {
                    Ok(true) => {
                        rt.set_deadline(Some(t0 + valid_for));
                        Some(l)
                    }
                    Ok(false) => {
                        rt.set_deadline(None);
                        warn!(channel = %rt.spec.id, "Lost the channel lease; pausing pushes and polls.");
                        None
                    }
                    Err(e) => {
                        // Keep working until the local deadline passes; the gate closes then.
                        warn!(channel = %rt.spec.id, error = %e, "Cannot renew the channel lease.");
                        Some(l)
                    }
                }
            }
            None => {
                let take = engine.held().len() < engine.fair_share() || {
                    // At our share: leave a released channel to an instance with room (unless
                    // nobody takes it for a whole lease lifetime), but take a lapsed one at once
                    // — its owner died or froze, and availability comes before balance (a later
                    // hand-off restores the balance).
                    match peek(&store, &name).await {
                        Ok(Peek::Lapsed) => true,
                        Ok(Peek::Free) => {
                            free_since.get_or_insert_with(Instant::now).elapsed() >= ttl
                        }
                        Ok(Peek::Held) | Err(_) => {
                            free_since = None;
                            false
                        }
                    }
                };
                if take {
                    let t0 = Instant::now();
                    match Lease::acquire(&store, &name, engine.owner(), ttl).await {
                        Ok(Some(l)) => {
                            rt.set_deadline(Some(t0 + valid_for));
                            info!(channel = %rt.spec.id, epoch = l.epoch, "Own the channel.");
                            waiting_logged = false;
                            free_since = None;
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
                    }
                } else {
                    None
                }
            }
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
            if let Some(l) = held {
                hand_off(&store, &rt, &tx, &l, ttl).await;
            }
            return;
        }
    }
}

/// Gives the channel up: no new unit of work starts, the one in flight finishes and records its
/// results (bounded by half a lease lifetime), then the lease is released for the next owner.
async fn hand_off(
    store: &Store,
    rt: &ChannelRuntime,
    tx: &watch::Sender<Option<Lease>>,
    lease: &Lease,
    ttl: Duration,
) {
    tx.send_replace(None);
    let work = tokio::time::timeout(ttl / 2, rt.work.write()).await;
    if work.is_err() {
        warn!(channel = %rt.spec.id, "Work in flight did not finish in time; releasing the lease anyway (its results will not be recorded).");
    }
    rt.set_deadline(None);
    if let Err(e) = lease.release(store).await {
        debug!(channel = %rt.spec.id, error = %e, "Could not release the lease; it lapses by itself.");
    }
}

/// Relays poll hints left in `poll_requests` by other instances (a webhook they received for
/// this channel) to the local poller while this process owns the channel.
async fn relay_poll_requests(store: Store, rt: Arc<ChannelRuntime>) {
    let mut seen = instances::poll_requested_at(&store, &rt.spec.id)
        .await
        .ok()
        .flatten();
    loop {
        if !sleep_or_cancel(Duration::from_millis(500), &rt.cancel).await {
            return;
        }
        if rt.lease.borrow().is_none() {
            continue;
        }
        match instances::poll_requested_at(&store, &rt.spec.id).await {
            Ok(at) if at > seen => {
                seen = at;
                rt.poll_now.notify_one();
            }
            Ok(_) => {}
            Err(e) => debug!(channel = %rt.spec.id, error = %e, "Cannot read poll requests."),
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
        gate: Some(rt.send_gate()),
    });
    let mut failures: u32 = 0;
    let mut lease_rx = rt.lease.clone();
    let mut resumed_epoch: Option<i64> = None;
    loop {
        if rt.cancel.is_cancelled() {
            return;
        }
        let work = rt.work.read().await;
        let Some(lease) = lease_rx.borrow_and_update().clone() else {
            drop(work);
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
        let round = dispatcher.round(&lease, None).await;
        drop(work);
        match round {
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
        let work = rt.work.read().await;
        if rt.lease.borrow().is_none() {
            continue;
        }
        let plan = Arc::clone(&plan.borrow());
        let started = Instant::now();
        let result = maybe_gated(
            Some(rt.send_gate()),
            intake::poll_orders(
                &store,
                &plan,
                &rt.spec.id,
                rt.spec.connector.as_ref(),
                rt.spec.overlap,
            ),
        )
        .await;
        drop(work);
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
