//! The Listings Items API side of the connector: per-item put, patch and delete with their
//! per-item classification, the snapshot (searchListingsItems) and the healthcheck.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use reqwest::Method;

use super::client::{Api, Request};
use super::config::{
    OP_DELETE_LISTINGS_ITEM, OP_PATCH_LISTINGS_ITEM, OP_PUT_LISTINGS_ITEM, OP_SEARCH_LISTINGS_ITEMS,
};
use super::mapping::{self, Context, ErrorList, SearchResults, SubmissionResponse};
use super::{AmazonConnector, MAX_ITEM_BATCH, MAX_SEARCH_PAGE, MAX_SKU_LEN, join_all};
use crate::common::HttpResponse;
use crate::common::http::{encode_component, truncate};
use crate::connector::{Health, SnapshotPage};
use crate::error::{ConnectorError, ErrorClass};
use crate::model::{ItemOutcome, ListingUpdate, Sku, StockUpdate};

/// `includedData` of the snapshot.
const SNAPSHOT_DATA: &str = "summaries,offers,fulfillmentAvailability,issues";

/// One item of a batch before sending: a request, or an outcome known without asking Amazon.
enum Planned {
    Send(Request),
    Known(ItemOutcome),
}

/// What became of one sent item: the item's own verdict, or a failure of its call (429, 5xx,
/// timeout, unreadable answer) that says nothing about the item.
enum Sent {
    Verdict(ItemOutcome),
    Failed(ConnectorError),
}

impl AmazonConnector {
    /// The attribute context: first marketplace, language, condition.
    pub(super) fn context(&self) -> Context<'_> {
        Context {
            marketplace_id: self.config.primary_marketplace(),
            language_tag: &self.config.language_tag,
            condition_type: &self.config.condition_type,
        }
    }

    /// `/items/{sellerId}/{sku}?marketplaceIds=…&issueLocale=…`.
    fn item_path(&self, sku: &str) -> String {
        format!(
            "/items/{}/{}?marketplaceIds={}&issueLocale={}",
            encode_component(&self.config.seller_id),
            encode_component(sku),
            encode_component(self.config.primary_marketplace()),
            encode_component(&self.config.language_tag),
        )
    }

    /// Amazon stores SKUs of at most 40 characters; longer ones are refused before any call.
    fn sku_too_long(sku: &str) -> Option<ItemOutcome> {
        (sku.chars().count() > MAX_SKU_LEN).then(|| ItemOutcome::Rejected {
            code: None,
            error: format!("Amazon SKUs are at most {MAX_SKU_LEN} characters"),
        })
    }

    /// Plans a batch: a later duplicate of a SKU waits for the next round (two concurrent writes
    /// to one SKU would land in any order), an over-long SKU is refused, the rest get `build`.
    fn plan<T>(
        items: &[T],
        sku_of: impl Fn(&T) -> &Sku,
        build: impl Fn(&T) -> Result<Request, ItemOutcome>,
    ) -> Vec<Planned> {
        let mut seen: HashSet<&str> = HashSet::new();
        items
            .iter()
            .map(|item| {
                let sku = sku_of(item).as_str();
                if !seen.insert(sku) {
                    return Planned::Known(ItemOutcome::Retry {
                        error: "the same SKU came twice in one batch; only the first was sent"
                            .into(),
                    });
                }
                if let Some(refused) = Self::sku_too_long(sku) {
                    return Planned::Known(refused);
                }
                match build(item) {
                    Ok(req) => Planned::Send(req),
                    Err(outcome) => Planned::Known(outcome),
                }
            })
            .collect()
    }

    /// push_stock: one patchListingsItem per item (quantity, and the price when given).
    pub(super) async fn patch_stock(
        &self,
        items: &[StockUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let ctx = self.context();
        let planned = Self::plan(
            items,
            |u| &u.sku,
            |u| {
                let patches = mapping::stock_patches(u, &ctx)
                    .map_err(|error| ItemOutcome::Rejected { code: None, error })?;
                let body =
                    mapping::patch_body(self.config.product_type_for(u.sku.as_str()), patches);
                Ok(Request::json(
                    OP_PATCH_LISTINGS_ITEM,
                    Api::Listings,
                    Method::PATCH,
                    self.item_path(u.sku.as_str()),
                    &body,
                ))
            },
        );
        self.send_all(planned).await
    }

    /// push_listings: one putListingsItem per item.
    pub(super) async fn put_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let ctx = self.context();
        let planned = Self::plan(
            items,
            |l| &l.sku,
            |l| {
                let attributes = mapping::listing_attributes(l, &ctx)
                    .map_err(|error| ItemOutcome::Rejected { code: None, error })?;
                let body =
                    mapping::put_body(self.config.product_type_for(l.sku.as_str()), attributes);
                Ok(Request::json(
                    OP_PUT_LISTINGS_ITEM,
                    Api::Listings,
                    Method::PUT,
                    self.item_path(l.sku.as_str()),
                    &body,
                ))
            },
        );
        self.send_all(planned).await
    }

    /// delist: one deleteListingsItem per SKU. A SKU Amazon cannot hold is already gone.
    pub(super) async fn delete_listings(
        &self,
        skus: &[Sku],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let planned = Self::plan(
            skus,
            |s| s,
            |s| {
                Ok(Request::delete(
                    OP_DELETE_LISTINGS_ITEM,
                    Api::Listings,
                    self.item_path(s.as_str()),
                ))
            },
        )
        .into_iter()
        .map(|p| match p {
            Planned::Known(ItemOutcome::Rejected { .. }) => {
                Planned::Known(ItemOutcome::Applied { external_id: None })
            }
            other => other,
        })
        .collect();
        self.send_all(planned).await
    }

    /// Sends the planned requests, [`MAX_ITEM_BATCH`] at a time concurrently (each takes its
    /// operation's budget token first), and turns the answers into outcomes aligned with the
    /// input. When every sent item failed as a call (throttled, Amazon down, timeouts), the first
    /// such error fails the whole call instead, so no item burns an attempt; an auth failure
    /// always does.
    async fn send_all(&self, planned: Vec<Planned>) -> Result<Vec<ItemOutcome>, ConnectorError> {
        if planned.iter().any(|p| matches!(p, Planned::Send(_))) {
            // One token (refresh) for the whole batch; a failing token endpoint fails the call.
            self.client.token().await?;
        }
        let mut sent: Vec<Option<Sent>> = Vec::with_capacity(planned.len());
        let mut known: Vec<Option<ItemOutcome>> = Vec::with_capacity(planned.len());
        let mut requests = Vec::new();
        for p in planned {
            match p {
                Planned::Send(req) => {
                    requests.push(req);
                    known.push(None);
                }
                Planned::Known(outcome) => known.push(Some(outcome)),
            }
        }
        for chunk in requests.chunks(MAX_ITEM_BATCH) {
            let answers = join_all(chunk.iter().map(|req| self.send_one(req)).collect()).await;
            sent.extend(answers.into_iter().map(Some));
        }
        let failures: Vec<&ConnectorError> = sent
            .iter()
            .filter_map(|s| match s {
                Some(Sent::Failed(e)) => Some(e),
                _ => None,
            })
            .collect();
        if let Some(auth) = failures.iter().find(|e| e.class() == ErrorClass::Auth) {
            return Err((*auth).clone());
        }
        if !sent.is_empty() && failures.len() == sent.len() {
            return Err(failures[0].clone());
        }
        let mut sent = sent.into_iter().flatten();
        Ok(known
            .into_iter()
            .map(|k| match k {
                Some(outcome) => outcome,
                None => match sent.next() {
                    Some(Sent::Verdict(outcome)) => outcome,
                    Some(Sent::Failed(e)) => ItemOutcome::Retry {
                        error: e.to_string(),
                    },
                    None => ItemOutcome::Retry {
                        error: "not sent".into(),
                    },
                },
            })
            .collect())
    }

    async fn send_one(&self, req: &Request) -> Sent {
        match self.client.call(req).await {
            Ok(resp) => self.classify(req, &resp),
            Err(e) => Sent::Failed(e),
        }
    }

    /// One item's answer:
    ///
    /// | answer | becomes |
    /// |---|---|
    /// | 2xx `ListingsItemSubmissionResponse` | [`mapping::submission_outcome`] |
    /// | 2xx we cannot read | a failed call (`Malformed`) |
    /// | 404 to a DELETE | `Applied` (nothing to delete) |
    /// | 408, 5xx | a failed call (`Transient`) |
    /// | other 4xx | `Rejected` with Amazon's first error code |
    fn classify(&self, req: &Request, resp: &HttpResponse) -> Sent {
        let sku_hint = || req.path.split('?').next().unwrap_or_default().to_owned();
        if resp.is_success() {
            let answer: SubmissionResponse = match resp.json() {
                Ok(a) => a,
                Err(e) => return Sent::Failed(e),
            };
            let outcome = mapping::submission_outcome(&answer, self.config.primary_marketplace());
            let warnings = answer
                .issues
                .iter()
                .filter(|i| !i.severity.eq_ignore_ascii_case("ERROR"))
                .count();
            if warnings > 0 {
                tracing::debug!(sku = %answer.sku, warnings, operation = req.operation, "Amazon accepted a listing submission with warnings.");
            }
            if matches!(outcome, ItemOutcome::Rejected { .. }) {
                self.counters.items_rejected.fetch_add(1, Ordering::Relaxed);
            }
            return Sent::Verdict(outcome);
        }
        if resp.status == 404 && req.method == Method::DELETE {
            return Sent::Verdict(ItemOutcome::Applied { external_id: None });
        }
        if resp.status == 408 || resp.status >= 500 || !(400..500).contains(&resp.status) {
            return Sent::Failed(self.client.error(resp));
        }
        let errors = ErrorList::parse(&resp.body);
        let error = if errors.errors.is_empty() {
            format!(
                "Amazon answered HTTP {}: {}",
                resp.status,
                truncate(&resp.snippet(), 200)
            )
        } else {
            errors.message()
        };
        tracing::debug!(path = %sku_hint(), status = resp.status, "Amazon refused one item.");
        self.counters.items_rejected.fetch_add(1, Ordering::Relaxed);
        Sent::Verdict(ItemOutcome::Rejected {
            code: errors.code(),
            error,
        })
    }

    /// `searchListingsItems` for this seller on the first marketplace.
    fn search_path(&self, page_size: usize, included: &str, page: Option<&str>) -> String {
        let mut path = format!(
            "/items/{}?marketplaceIds={}&includedData={included}&pageSize={page_size}",
            encode_component(&self.config.seller_id),
            encode_component(self.config.primary_marketplace()),
        );
        if let Some(token) = page {
            path.push_str(&format!("&pageToken={}", encode_component(token)));
        }
        path
    }

    /// snapshot_page: one searchListingsItems page of 20.
    pub(super) async fn search_listings(
        &self,
        page: Option<&str>,
    ) -> Result<SnapshotPage, ConnectorError> {
        let page = page.map(str::trim).filter(|p| !p.is_empty());
        let path = self.search_path(MAX_SEARCH_PAGE, SNAPSHOT_DATA, page);
        let resp = self
            .client
            .call(&Request::get(OP_SEARCH_LISTINGS_ITEMS, Api::Listings, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let body: SearchResults = resp.json()?;
        let marketplace = self.config.primary_marketplace();
        let items = body
            .items
            .iter()
            // A SKU omnistock could not have written is not ours to reconcile.
            .filter_map(|i| i.remote_item(marketplace))
            .collect();
        let next_page = body
            .pagination
            .and_then(|p| p.next_token)
            .filter(|t| !t.trim().is_empty() && !body.items.is_empty())
            // Never loop on the same page.
            .filter(|t| Some(t.as_str()) != page);
        Ok(SnapshotPage { items, next_page })
    }

    /// healthcheck: a token, then searchListingsItems with `pageSize=1`.
    pub(super) async fn probe(&self) -> Result<Health, ConnectorError> {
        let started = tokio::time::Instant::now();
        self.client.token().await?;
        let path = self.search_path(1, "summaries", None);
        let resp = self
            .client
            .call(&Request::get(OP_SEARCH_LISTINGS_ITEMS, Api::Listings, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let body: SearchResults = resp.json()?;
        Ok(Health {
            summary: format!(
                "token ok, {} listings on Amazon ({})",
                body.number_of_results,
                self.config.primary_marketplace()
            ),
            latency: started.elapsed(),
        })
    }
}
