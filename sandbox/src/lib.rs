//! Stateful fake marketplaces that speak the real contracts (DESIGN.md §8).
//!
//! [`Sandbox::start`] binds one HTTP server on 127.0.0.1 and mounts each marketplace under its own
//! prefix, with the marketplace's real paths below it:
//!
//! | prefix | marketplace | connector `endpoint` |
//! |---|---|---|
//! | `/ebay` | eBay Sell Inventory + Fulfillment, OAuth token endpoint ([`ebay`]) | `{base_url}/ebay` |
//! | `/amazon` | Amazon SP-API Listings Items, Feeds (JSON_LISTINGS_FEED), Orders 2026-01-01, LWA token endpoint ([`amazon`]) | `{base_url}/amazon` (token endpoint `{base_url}/amazon/auth/o2/token`) |
//! | `/_control` | test control API (faults, clock, per-marketplace state; see below) | — |
//!
//! | `/meta` | Meta Graph API: catalog `items_batch`, batch status, products edge, commerce orders ([`meta`]) | `{base_url}/meta` |
//! | `/shopify` | Shopify Admin GraphQL API and the client-credentials token endpoint ([`shopify`]) | `{base_url}/shopify` |
//! | `/woo` | WooCommerce REST API v3 under `/wp-json/wc/v3` ([`woo`]) | `{base_url}/woo` |
//! | `/vendure` | Vendure Admin and Shop GraphQL APIs ([`vendure`]) | `{base_url}/vendure/admin-api` |
//!
//! Meta, Shopify and WooCommerce send signed webhooks to a [`WebhookTarget`] when one is set
//! (sometimes twice, sometimes late, like the real ones).
//!
//! Shared by every marketplace and living here:
//! - **the gate** (`gate`): simulated network latency, request counting, fault injection;
//! - **fault rules** ([`FaultRule`], [`FaultKind`], [`FaultsHandle`]): 5xx, 429 (+`Retry-After`),
//!   latency, hang, dropped connection, truncated JSON, per-SKU rejections;
//! - **rate limits** ([`RateLimit`]): token buckets per (marketplace, resource group);
//! - **records** ([`WriteRecord`], [`RequestRecord`]): every applied write and every request,
//!   stamped on a monotonic clock, for convergence/ordering/rate assertions;
//! - **the clock**: wall time plus an offset tests can advance ([`Sandbox::advance_clock`]).
//!
//! Bodies are limited to [`MAX_BODY_BYTES`]; marketplaces answer oversize and malformed bodies with
//! their own error shape.
//!
//! ## Control API (for a demo driving a sandbox in another process)
//!
//! Unauthenticated and loopback-only, like the whole server. All bodies are JSON.
//!
//! | route | effect |
//! |---|---|
//! | `GET /_control/health` | `{"ok":true}` |
//! | `GET /_control/faults` | list rules with counters ([`FaultStatus`]) |
//! | `POST /_control/faults` | add a [`FaultRule`] → `{"id":n}` |
//! | `DELETE /_control/faults` / `DELETE /_control/faults/{id}` | remove all / one |
//! | `PUT /_control/latency` `{"ms":50}` | global simulated latency |
//! | `POST /_control/clock/advance` `{"secs":7200}` | move sandbox time forward |
//! | `GET /_control/writes`, `GET /_control/requests` | all marketplaces' records |
//! | `/_control/ebay/...` | eBay state and orders, see [`ebay`] |
//! | `/_control/amazon/...` | Amazon listings, orders, feeds (hold, fail next), see [`amazon`] |

pub mod amazon;
pub mod ebay;
pub mod meta;
pub mod shopify;
pub mod vendure;
pub mod woo;

mod clock;
mod control;
mod control_common;
mod faults;
mod gate;
mod ratelimit;
mod record;
mod rng;
mod server;
mod webhook;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use amazon::{
    AmazonCredentials, AmazonHandle, AmazonListingSnapshot, AmazonOptions, AmazonSeedListing,
    FeedSnapshot,
};
pub use ebay::{
    ControlError, EbayCredentials, EbayHandle, EbayOptions, ListingSnapshot, OrderLine,
    SeedListing, SeededListing,
};
pub use faults::{FaultId, FaultKind, FaultRule, FaultStatus, FaultsHandle};
pub use meta::{
    BucLimit, MetaBatchSnapshot, MetaCredentials, MetaHandle, MetaOptions, MetaSeedListing,
};
pub use ratelimit::RateLimit;
pub use record::{MAX_LOG_RECORDS, Money, RequestRecord, WriteRecord};
pub use shopify::{
    ShopifyCredentials, ShopifyHandle, ShopifyListingSnapshot, ShopifyOptions, ShopifySeedListing,
};
pub use vendure::{VendureCredentials, VendureHandle, VendureOptions, VendureSeedListing};
pub use webhook::{WebhookCounts, WebhookTarget};
pub use woo::{
    WooCredentials, WooError, WooHandle, WooListingSnapshot, WooOptions, WooSeedListing,
};

/// Largest request body any marketplace accepts (2 MiB); larger bodies get the marketplace's
/// "invalid request" error with status 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// How long [`Sandbox::shutdown`] waits for connection tasks to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Simulated network latency added to every marketplace request (DESIGN.md §11 measures
    /// propagation with 50 ms).
    pub latency: Duration,
    /// Seed of the PRNG behind fault probabilities and generated tokens.
    pub seed: u64,
    /// The eBay fake.
    pub ebay: EbayOptions,
    /// The Amazon fake.
    pub amazon: AmazonOptions,
    /// The Meta fake.
    pub meta: MetaOptions,
    /// The Shopify fake.
    pub shopify: ShopifyOptions,
    /// The WooCommerce fake.
    pub woo: WooOptions,
    /// The Vendure fake.
    pub vendure: VendureOptions,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            latency: Duration::ZERO,
            seed: 0x5EED,
            ebay: EbayOptions::default(),
            amazon: AmazonOptions::default(),
            meta: MetaOptions::default(),
            shopify: ShopifyOptions::default(),
            woo: WooOptions::default(),
            vendure: VendureOptions::default(),
        }
    }
}

/// What every marketplace of one sandbox shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub clock: clock::Clock,
    pub faults: Arc<faults::Faults>,
    pub recorder: record::Recorder,
    pub limiter: ratelimit::RateLimiter,
    pub rng: rng::Rng,
    /// `http://127.0.0.1:PORT`, for absolute `href`/`next` links.
    pub base_url: String,
}

/// A running sandbox. Dropping it stops the server too; [`Sandbox::shutdown`] also waits for it.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    ebay: EbayHandle,
    amazon: AmazonHandle,
    meta: MetaHandle,
    shopify: ShopifyHandle,
    woo: WooHandle,
    vendure: VendureHandle,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    server: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds `127.0.0.1:opts.port`, seeds the marketplaces and starts serving.
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, opts.port))
            .await
            .with_context(|| format!("binding the sandbox to 127.0.0.1:{}", opts.port))?;
        let addr = listener
            .local_addr()
            .context("reading the sandbox address")?;
        let shared = Arc::new(Shared {
            clock: clock::Clock::default(),
            faults: Arc::new(faults::Faults::new(opts.seed, opts.latency)),
            recorder: record::Recorder::new(),
            limiter: ratelimit::RateLimiter::default(),
            rng: rng::Rng::new(opts.seed ^ 0xA5A5_A5A5),
            base_url: format!("http://{addr}"),
        });
        let ebay = EbayHandle::new(shared.clone(), opts.ebay).context("seeding the eBay fake")?;
        let amazon =
            AmazonHandle::new(shared.clone(), opts.amazon).context("seeding the Amazon fake")?;
        let meta = MetaHandle::new(shared.clone(), opts.meta).context("seeding the Meta fake")?;
        let shopify =
            ShopifyHandle::new(shared.clone(), opts.shopify).context("seeding the Shopify fake")?;
        let woo =
            WooHandle::new(shared.clone(), opts.woo).context("seeding the WooCommerce fake")?;
        let vendure =
            VendureHandle::new(shared.clone(), opts.vendure).context("seeding the Vendure fake")?;
        let control = control::router(shared.clone(), ebay.clone(), amazon.clone())
            .nest("/meta", meta.control_router())
            .nest("/shopify", shopify.control_router())
            .nest("/woo", woo.control_router())
            .nest("/vendure", vendure.control_router());
        let router = Router::new()
            .nest("/ebay", ebay.router())
            .nest("/amazon", amazon.router())
            .nest("/meta", meta.router())
            .nest("/shopify", shopify.router())
            .nest("/woo", woo.router())
            .nest("/vendure", vendure.router())
            .nest("/_control", control);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        amazon.spawn_feed_processor(shutdown.clone(), &tracker);
        let server = tokio::spawn(server::serve(
            listener,
            router,
            shutdown.clone(),
            tracker.clone(),
        ));
        tracing::info!(base_url = %shared.base_url, "Sandbox listening.");
        Ok(Sandbox {
            addr,
            shared,
            ebay,
            amazon,
            meta,
            shopify,
            woo,
            vendure,
            shutdown,
            tracker,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Inspection and control of the eBay fake.
    pub fn ebay(&self) -> EbayHandle {
        self.ebay.clone()
    }

    /// Inspection and control of the Amazon fake.
    pub fn amazon(&self) -> AmazonHandle {
        self.amazon.clone()
    }

    /// Inspection and control of the Meta fake.
    pub fn meta(&self) -> MetaHandle {
        self.meta.clone()
    }

    /// Inspection and control of the Shopify fake.
    pub fn shopify(&self) -> ShopifyHandle {
        self.shopify.clone()
    }

    /// Inspection and control of the WooCommerce fake.
    pub fn woo(&self) -> WooHandle {
        self.woo.clone()
    }

    /// Inspection and control of the Vendure fake.
    pub fn vendure(&self) -> VendureHandle {
        self.vendure.clone()
    }

    /// Creates an enabled eBay inventory location with this `merchantLocationKey` unless one
    /// exists — what a seller sets up once in Seller Hub — so a config that names it can publish
    /// offers without seeding listings first (`omnistock sandbox` creates config/demo.toml's).
    /// Not logged as a write.
    pub fn ensure_ebay_location(&self, key: &str) {
        self.ebay.seed_location(key);
    }

    /// Fault rules and global latency, for every marketplace.
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.shared.faults.clone(),
        }
    }

    /// Sets the simulated network latency of every marketplace request.
    pub fn set_latency(&self, latency: Duration) {
        self.faults().set_latency(latency);
    }

    /// Moves sandbox time (order dates, token expiry, calendar days) forward.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Every write applied, all marketplaces, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.shared.recorder.writes(None)
    }

    /// Every request received, all marketplaces, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.recorder.requests(None)
    }

    /// Stops accepting, drops every open connection (hung requests included) and waits for the
    /// connection tasks to end.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("Sandbox connections did not end within the grace period.");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
