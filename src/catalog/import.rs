//! CSV import: upsert products, variants, bundles and stock, all or nothing.
//!
//! The whole file is read and validated before anything is written; every problem names its row and
//! column (up to [`MAX_REPORTED_ERRORS`]). Valid files are applied in ONE write transaction together
//! with the desired-state recompute, so a failure half way leaves nothing behind. Stock rows become
//! ledger movements keyed `import:{file_sha256}:{row}`: importing the same file twice changes nothing
//! the second time.
//!
//! Columns: `sku,title,price,quantity` required; `product_id, description, brand, barcode, currency,
//! location, tags, image_urls, weight_g, option1_name, option1_value, … option9_value, components`
//! optional. Lists (`tags`, `image_urls`) are `|`-separated; `components` is `SKU:QTY|SKU:QTY` and
//! makes the row a bundle (its `quantity` must be empty). An empty `quantity` on a normal row
//! leaves that SKU's stock untouched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use omnistock_connectors::{Currency, Sku, model::parse_minor};
use sha2::{Digest, Sha256};

use super::{
    OnHandSet, ProductInput, SkuKind, VariantInput, set_on_hand_many, sku_kind, upsert_products,
    upsert_variants,
};
use crate::store::{Store, StoreError};
use crate::sync::{RecomputeStats, SyncPlan, recompute};

/// Largest file accepted (bytes).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Largest single field (bytes); descriptions are the long ones.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Problems listed before the report says "and N more".
pub const MAX_REPORTED_ERRORS: usize = 50;
/// Highest quantity a row may set.
pub const MAX_QUANTITY: i64 = 1_000_000_000;
/// Longest title.
pub const MAX_TITLE_CHARS: usize = 500;

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1); 0 for file-level problems.
    pub row: u64,
    /// The column's header name, when the problem is in one column.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.column, self.row) {
            (_, 0) => write!(f, "{}", self.message),
            (Some(c), r) => write!(f, "row {r}, column {c}: {}", self.message),
            (None, r) => write!(f, "row {r}: {}", self.message),
        }
    }
}

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file has problems; nothing was written.
    #[error("{}", render_errors(.0, *.1))]
    Invalid(Vec<RowError>, usize),
    /// The database refused; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn render_errors(errors: &[RowError], total: usize) -> String {
    let mut s = format!(
        "the file has {total} problem{}; nothing was imported:",
        if total == 1 { "" } else { "s" }
    );
    for e in errors {
        s.push_str("\n  ");
        s.push_str(&e.to_string());
    }
    if total > errors.len() {
        s.push_str(&format!("\n  … and {} more", total - errors.len()));
    }
    s
}

/// A validated row.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    product: ProductInput,
    variant: VariantInput,
    quantity: Option<i64>,
    location: String,
}

/// What an import did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows in the file.
    pub rows: usize,
    /// Products created or changed.
    pub products_changed: usize,
    /// Variants created or changed.
    pub variants_changed: usize,
    /// Rows whose stock was set to a different value.
    pub stock_changed: usize,
    /// Rows whose stock entry was applied by an earlier import of this same file.
    pub stock_already_imported: usize,
    /// Desired-state rows that changed.
    pub desired: RecomputeStats,
    /// True when nothing was written.
    pub dry_run: bool,
    /// The file's SHA-256 (the ledger key prefix).
    pub file_sha256: String,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would change"
        } else {
            "changed"
        };
        writeln!(
            f,
            "{} rows read (file sha256 {}…)",
            self.rows,
            &self.file_sha256[..12.min(self.file_sha256.len())]
        )?;
        writeln!(f, "  products {verb}: {}", self.products_changed)?;
        writeln!(f, "  variants {verb}: {}", self.variants_changed)?;
        writeln!(f, "  stock levels {verb}: {}", self.stock_changed)?;
        if self.stock_already_imported > 0 {
            writeln!(
                f,
                "  stock rows already imported from this file (skipped): {}",
                self.stock_already_imported
            )?;
        }
        write!(f, "  channel listings {verb}: {}", self.desired.changed)?;
        if self.dry_run {
            write!(f, "\n(dry run: nothing was written)")?;
        }
        Ok(())
    }
}

/// Options for [`import_file`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Validate and count, write nothing.
    pub dry_run: bool,
    /// Location for rows without a `location` column/value.
    pub default_location: String,
    /// Locations that exist (from the config).
    pub locations: Vec<String>,
    /// Currency for rows without a `currency` value.
    pub default_currency: String,
}

/// Reads, validates and applies a CSV file.
pub async fn import_file(
    store: &Store,
    plan: &SyncPlan,
    path: &std::path::Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let io = |source| ImportError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ImportError::Invalid(
            vec![RowError {
                row: 0,
                column: None,
                message: format!(
                    "the file is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                    meta.len()
                ),
            }],
            1,
        ));
    }
    // The size above is what the file said; a file that grows meanwhile, a pipe or a device
    // (`/dev/zero`) says nothing true, so the read itself stops one byte past the limit.
    let bytes = read_at_most(path, MAX_FILE_BYTES).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::Invalid(
            vec![RowError {
                row: 0,
                column: None,
                message: format!("the file is larger than {MAX_FILE_BYTES} bytes"),
            }],
            1,
        ));
    }
    import_bytes(store, plan, &bytes, opts).await
}

/// The first `limit + 1` bytes of the file at most (one more than allowed, to tell "exactly at
/// the limit" from "over it").
fn read_at_most(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Validates and applies CSV content (see [`import_file`]).
pub async fn import_bytes(
    store: &Store,
    plan: &SyncPlan,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let sha = hex::encode(Sha256::digest(bytes));
    let rows = parse(bytes, opts)?;
    apply(store, plan, rows, &sha, opts.dry_run).await
}

struct Errors {
    list: Vec<RowError>,
    total: usize,
}

impl Errors {
    fn push(&mut self, row: u64, column: Option<&str>, message: impl Into<String>) {
        self.total += 1;
        if self.list.len() < MAX_REPORTED_ERRORS {
            self.list.push(RowError {
                row,
                column: column.map(str::to_owned),
                message: message.into(),
            });
        }
    }
}

fn parse(bytes: &[u8], opts: &ImportOptions) -> Result<Vec<Row>, ImportError> {
    let mut errs = Errors {
        list: Vec::new(),
        total: 0,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes); // Excel's BOM
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .has_headers(true)
        .from_reader(bytes);
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => h
            .iter()
            .map(|b| String::from_utf8_lossy(b).trim().to_ascii_lowercase())
            .collect(),
        Err(e) => {
            errs.push(1, None, format!("cannot read the header line: {e}"));
            return Err(ImportError::Invalid(errs.list, errs.total));
        }
    };
    if headers.iter().all(String::is_empty) {
        errs.push(
            1,
            None,
            "the file is empty: expected a header line with sku,title,price,quantity",
        );
        return Err(ImportError::Invalid(errs.list, errs.total));
    }
    let known = |h: &str| {
        matches!(
            h,
            "sku"
                | "title"
                | "price"
                | "quantity"
                | "product_id"
                | "description"
                | "brand"
                | "barcode"
                | "currency"
                | "location"
                | "tags"
                | "image_urls"
                | "components"
                | "weight_g"
        ) || option_column(h).is_some()
    };
    let mut col: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !known(h) {
            errs.push(
                1,
                Some(h),
                "unknown column (see `omnistock import --help` for the columns)",
            );
        } else if col.insert(h.as_str(), i).is_some() {
            errs.push(1, Some(h), "column appears twice");
        }
    }
    for req in ["sku", "title", "price", "quantity"] {
        if !col.contains_key(req) {
            errs.push(1, Some(req), "required column is missing");
        }
    }
    if errs.total > 0 {
        return Err(ImportError::Invalid(errs.list, errs.total));
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let row = e.position().map(|p| p.line()).unwrap_or(line);
                errs.push(row, None, format!("malformed CSV: {}", csv_error_text(&e)));
                if errs.total >= MAX_REPORTED_ERRORS {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // blank line
        }
        let mut fields: HashMap<&str, String> = HashMap::new();
        let mut bad = false;
        for (name, &i) in &col {
            let raw = record.get(i).unwrap_or_default();
            if raw.len() > MAX_FIELD_BYTES {
                errs.push(
                    line,
                    Some(name),
                    format!(
                        "value is {} bytes; at most {MAX_FIELD_BYTES} are accepted",
                        raw.len()
                    ),
                );
                bad = true;
                continue;
            }
            match std::str::from_utf8(raw) {
                Ok(s) => {
                    fields.insert(name, s.trim().to_owned());
                }
                Err(e) => {
                    errs.push(
                        line,
                        Some(name),
                        format!("not valid UTF-8 (byte {} of the value)", e.valid_up_to()),
                    );
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if let Some(row) = parse_row(line, &fields, opts, &mut errs) {
            if let Some(first) = seen.insert(row.variant.sku.clone(), line) {
                errs.push(
                    line,
                    Some("sku"),
                    format!("duplicate SKU {:?} (first on row {first})", row.variant.sku),
                );
                continue;
            }
            rows.push(row);
        }
    }
    // Bundle components must exist in this file or the catalog (checked against the catalog later)
    // and must not themselves be bundles.
    let in_file: HashMap<&str, bool> = rows
        .iter()
        .map(|r| (r.variant.sku.as_str(), r.variant.components.is_some()))
        .collect();
    for r in &rows {
        for (c, _) in r.variant.components.iter().flatten() {
            if in_file.get(c.as_str()) == Some(&true) {
                errs.push(
                    r.line,
                    Some("components"),
                    format!(
                        "component {c:?} is itself a bundle; bundles of bundles are not supported"
                    ),
                );
            }
            if *c == r.variant.sku {
                errs.push(r.line, Some("components"), "a bundle cannot contain itself");
            }
        }
    }
    if errs.total > 0 {
        return Err(ImportError::Invalid(errs.list, errs.total));
    }
    Ok(rows)
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        _ => e.to_string(),
    }
}

/// `option3_name` → (3, true); `option3_value` → (3, false).
fn option_column(h: &str) -> Option<(u32, bool)> {
    let rest = h.strip_prefix("option")?;
    let (n, kind) = rest.split_once('_')?;
    let n: u32 = n.parse().ok().filter(|n| (1..=9).contains(n))?;
    match kind {
        "name" => Some((n, true)),
        "value" => Some((n, false)),
        _ => None,
    }
}

fn parse_row(
    line: u64,
    f: &HashMap<&str, String>,
    opts: &ImportOptions,
    errs: &mut Errors,
) -> Option<Row> {
    let before = errs.total;
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let sku = match Sku::parse(get("sku")) {
        Ok(s) => s.as_str().to_owned(),
        Err(e) => {
            errs.push(line, Some("sku"), e.to_string());
            String::new()
        }
    };
    let title = get("title").to_owned();
    if title.is_empty() {
        errs.push(line, Some("title"), "title is empty");
    } else if title.chars().count() > MAX_TITLE_CHARS {
        errs.push(
            line,
            Some("title"),
            format!("title is longer than {MAX_TITLE_CHARS} characters"),
        );
    }
    let currency_text = match get("currency") {
        "" => opts.default_currency.as_str(),
        c => c,
    };
    let currency = match Currency::parse(currency_text) {
        Ok(c) => Some(c),
        Err(e) => {
            errs.push(line, Some("currency"), e.to_string());
            None
        }
    };
    let price_minor = match (get("price"), currency) {
        ("", _) => {
            errs.push(line, Some("price"), "price is empty");
            0
        }
        (p, Some(c)) => match parse_minor(p, c.exponent()) {
            Ok(v) if v < 0 => {
                errs.push(line, Some("price"), format!("price {p} is negative"));
                0
            }
            Ok(v) => v,
            Err(e) => {
                errs.push(line, Some("price"), e.to_string());
                0
            }
        },
        (_, None) => 0,
    };
    let components = match get("components") {
        "" => None,
        text => {
            let mut out: BTreeMap<String, i64> = BTreeMap::new();
            for part in text.split('|') {
                let Some((c, q)) = part.trim().rsplit_once(':') else {
                    errs.push(line, Some("components"), format!("{part:?} is not SKU:QTY"));
                    continue;
                };
                match (Sku::parse(c.trim()), q.trim().parse::<i64>()) {
                    (Ok(c), Ok(q)) if (1..=10_000).contains(&q) => {
                        *out.entry(c.as_str().to_owned()).or_default() += q;
                    }
                    (Err(e), _) => {
                        errs.push(line, Some("components"), format!("component {c:?}: {e}"))
                    }
                    _ => errs.push(
                        line,
                        Some("components"),
                        format!("quantity in {part:?} must be a whole number 1–10000"),
                    ),
                }
            }
            Some(out.into_iter().collect::<Vec<_>>())
        }
    };
    let quantity = match get("quantity") {
        "" => None,
        q => match q.parse::<i64>() {
            Ok(_) if components.is_some() => {
                errs.push(
                    line,
                    Some("quantity"),
                    "a bundle has no stock of its own: leave quantity empty",
                );
                None
            }
            Ok(v) if v < 0 => {
                errs.push(line, Some("quantity"), format!("quantity {v} is negative"));
                None
            }
            Ok(v) if v > MAX_QUANTITY => {
                errs.push(
                    line,
                    Some("quantity"),
                    format!("quantity {v} is above {MAX_QUANTITY}"),
                );
                None
            }
            Ok(v) => Some(v),
            Err(_) => {
                errs.push(
                    line,
                    Some("quantity"),
                    format!("{q:?} is not a whole number"),
                );
                None
            }
        },
    };
    let location = match get("location") {
        "" => opts.default_location.clone(),
        l => l.to_owned(),
    };
    if !opts.locations.contains(&location) {
        errs.push(
            line,
            Some("location"),
            format!(
                "unknown location {location:?} (configured: {})",
                opts.locations.join(", ")
            ),
        );
    }
    let weight_g = match get("weight_g") {
        "" => None,
        w => match w.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                errs.push(
                    line,
                    Some("weight_g"),
                    format!("{w:?} is not a non-negative whole number of grams"),
                );
                None
            }
        },
    };
    let mut options = Vec::new();
    for n in 1..=9 {
        let name = get(&format!("option{n}_name"));
        let value = get(&format!("option{n}_value"));
        match (name.is_empty(), value.is_empty()) {
            (true, true) => {}
            (false, false) => options.push((name.to_owned(), value.to_owned())),
            (true, false) => errs.push(
                line,
                Some(&format!("option{n}_name")),
                "value given without a name",
            ),
            (false, true) => errs.push(
                line,
                Some(&format!("option{n}_value")),
                "name given without a value",
            ),
        }
    }
    let list = |k: &str| -> Vec<String> {
        get(k)
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let image_urls = list("image_urls");
    for u in &image_urls {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            errs.push(
                line,
                Some("image_urls"),
                format!("{u:?} is not an http(s) URL"),
            );
        }
    }
    let barcode = Some(get("barcode").to_owned()).filter(|b| !b.is_empty());
    if let Some(b) = &barcode
        && (!b.bytes().all(|c| c.is_ascii_digit()) || !(8..=14).contains(&b.len()))
    {
        errs.push(
            line,
            Some("barcode"),
            format!("{b:?} is not a GTIN (8–14 digits)"),
        );
    }
    if errs.total > before {
        return None;
    }
    let product_id = Some(get("product_id").to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| sku.clone());
    let mut tags = list("tags");
    tags.sort();
    tags.dedup();
    Some(Row {
        line,
        product: ProductInput {
            id: product_id.clone(),
            title: title.clone(),
            description: get("description").to_owned(),
            brand: get("brand").to_owned(),
        },
        variant: VariantInput {
            sku,
            product_id,
            title,
            price_minor,
            currency: currency.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            barcode,
            weight_g,
            options,
            tags,
            image_urls,
            components,
        },
        quantity,
        location,
    })
}

async fn apply(
    store: &Store,
    plan: &SyncPlan,
    rows: Vec<Row>,
    sha: &str,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        rows: rows.len(),
        dry_run,
        file_sha256: sha.to_owned(),
        ..Default::default()
    };
    let mut tx = store.write().await?;
    let skus: Vec<String> = rows.iter().map(|r| r.variant.sku.clone()).collect();
    // Components must exist (in this file or the catalog) and not be bundles in the catalog.
    let in_file: HashSet<&str> = skus.iter().map(String::as_str).collect();
    let mut errs = Errors {
        list: Vec::new(),
        total: 0,
    };
    for r in &rows {
        for (c, _) in r.variant.components.iter().flatten() {
            if in_file.contains(c.as_str()) {
                continue;
            }
            match sku_kind(&mut tx, c).await? {
                SkuKind::Variant => {}
                SkuKind::Unknown => errs.push(
                    r.line,
                    Some("components"),
                    format!("component {c:?} is not in the catalog or this file"),
                ),
                SkuKind::Bundle => errs.push(
                    r.line,
                    Some("components"),
                    format!(
                        "component {c:?} is itself a bundle; bundles of bundles are not supported"
                    ),
                ),
            }
        }
        // A SKU that is a component of an existing bundle cannot become a bundle.
        if r.variant.components.is_some() {
            let used: Option<(String,)> =
                sqlx::query_as("SELECT bundle_sku FROM bundles WHERE component_sku = $1 LIMIT 1")
                    .bind(&r.variant.sku)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
            if let Some((b,)) = used {
                errs.push(
                    r.line,
                    Some("components"),
                    format!(
                        "{:?} is a component of bundle {b:?}; it cannot be a bundle itself",
                        r.variant.sku
                    ),
                );
            }
        }
    }
    if errs.total > 0 {
        return Err(ImportError::Invalid(errs.list, errs.total));
    }
    // Products first (one per product id, first row wins), then variants, then stock.
    let mut products: HashMap<&str, &ProductInput> = HashMap::new();
    let mut product_list: Vec<&ProductInput> = Vec::new();
    for r in &rows {
        if products.insert(r.product.id.as_str(), &r.product).is_none() {
            product_list.push(&r.product);
        }
    }
    report.products_changed = upsert_products(&mut tx, &product_list).await?;
    // Variants: non-bundles first so bundle components exist when bundles reference them.
    let mut ordered: Vec<&Row> = rows.iter().collect();
    ordered.sort_by_key(|r| r.variant.components.is_some());
    let variants: Vec<(&VariantInput, String)> = ordered
        .iter()
        .map(|r| {
            let product = products
                .get(r.product.id.as_str())
                .copied()
                .unwrap_or(&r.product);
            (&r.variant, r.variant.content_hash(product))
        })
        .collect();
    report.variants_changed = upsert_variants(&mut tx, &variants).await?;
    let sets: Vec<OnHandSet> = rows
        .iter()
        .filter_map(|r| {
            r.quantity.map(|q| OnHandSet {
                sku: &r.variant.sku,
                location: &r.location,
                on_hand: q,
                key: format!("import:{sha}:{}", r.line),
            })
        })
        .collect();
    let outcome = set_on_hand_many(store, &mut tx, &sets, "import").await?;
    report.stock_changed = outcome.changed;
    report.stock_already_imported = outcome.already_applied;
    report.desired = recompute(store, &mut tx, plan, &skus).await?;
    if dry_run {
        tx.rollback().await.map_err(StoreError::from)?;
    } else {
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_one_byte_past_the_limit() {
        // A device that never ends and reports no size: the read stops by itself.
        let bytes = read_at_most(std::path::Path::new("/dev/zero"), 1000).unwrap();
        assert_eq!(bytes.len(), 1001);
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.csv");
        std::fs::write(&small, "sku,title\n").unwrap();
        assert_eq!(read_at_most(&small, 1000).unwrap(), b"sku,title\n");
    }
}
