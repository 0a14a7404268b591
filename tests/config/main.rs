//! The config file as the merchant meets it: the shipped examples parse, and every mistake is
//! refused with a message that says where and what.

mod helpers;

use std::io::Write as _;

use helpers::*;
use omnistock::config::{
    self, ChannelConfig, ChannelKind, ConfigError, MAX_CONFIG_BYTES, Position,
};

#[test]
fn the_example_config_parses_when_every_variable_is_set() {
    let config = parse_with_any_env(&shipped("omnistock.example.toml"))
        .unwrap_or_else(|e| panic!("the example config must parse:\n{e}"));

    let kinds: Vec<ChannelKind> = config.channels.values().map(|c| c.kind()).collect();
    for kind in ChannelKind::ALL {
        assert!(kinds.contains(&kind), "the example has no {kind} channel");
    }
    assert_eq!(config.location_ids().collect::<Vec<_>>(), ["main", "shop"]);

    let amazon = config.channel("amazon_us").unwrap();
    assert_eq!(amazon.common().locations, ["main"]);
    assert_eq!(amazon.common().stock.max, Some(50));
    assert_eq!(
        amazon.common().price.multiplier.as_ref().unwrap().as_text(),
        "1.15"
    );
    let ChannelConfig::Amazon(a) = amazon else {
        panic!("amazon_us is {}", amazon.kind())
    };
    assert_eq!(
        a.client_secret.expose(),
        "secret-value-of-AMAZON_CLIENT_SECRET"
    );

    // A channel that names no locations sells from all of them; sub-tables work like inline ones.
    let ebay = config.channel("ebay").unwrap();
    assert_eq!(ebay.common().locations, ["main", "shop"]);
    assert_eq!(ebay.common().stock.buffer, Some(1));
    assert_eq!(
        ebay.common().stock.percent,
        Some(100),
        "unnamed knobs keep their defaults"
    );

    assert!(!config.channel("shop_b2b").unwrap().common().enabled);
    assert_eq!(config.rules.len(), 2);
}

#[test]
fn the_demo_config_parses_with_no_environment_and_points_at_the_sandbox() {
    let config = parse_with(&shipped("demo.toml"), &[])
        .unwrap_or_else(|e| panic!("the demo config must parse:\n{e}"));
    assert!(config.daemon.database.starts_with("sqlite:"));
    assert_eq!(config.location_ids().collect::<Vec<_>>(), ["main"]);
    for kind in [
        ChannelKind::Ebay,
        ChannelKind::Amazon,
        ChannelKind::Facebook,
    ] {
        assert!(
            config.channels.values().any(|c| c.kind() == kind),
            "demo lacks {kind}"
        );
    }
    for (id, channel) in &config.channels {
        assert!(
            channel.endpoint().starts_with("http://127.0.0.1:18080/"),
            "{id} must use the sandbox, not {}",
            channel.endpoint()
        );
    }
}

#[test]
fn a_typo_inside_a_channel_section_names_the_file_line_column_and_channel() {
    let text = r#"[daemon]
database = "sqlite://omnistock.db"

[[locations]]
id = "main"

[channels.ebay]
type = "ebay"
client_id = "${EBAY_CLIENT_ID}"
client_secret = "${EBAY_CLIENT_SECRET}"
refresh_token = "${EBAY_REFRESH_TOKEN}"
merchant_location_key = "main"
policies = { fulfillment = "f", payment = "p", return = "r" }
marketplace_idd = "EBAY_US"
"#;
    let err = parse_with_any_env(text).unwrap_err();
    // Only the typo: not also the `marketplace_id` it leaves missing.
    assert_eq!(err.diagnostics().len(), 1, "{err}");
    insta::assert_snapshot!("typo_in_channel_section", err.to_string());
}

#[test]
fn a_typo_in_the_example_config_is_found_at_its_line() {
    let text = shipped("omnistock.example.toml").replace(
        "marketplace_id = \"EBAY_US\"",
        "marketplace_idd = \"EBAY_US\"",
    );
    let err = parse_with_any_env(&text).unwrap_err();
    let line = line_of(&text, "marketplace_idd");
    assert!(
        err.to_string().starts_with(&format!(
            "config/omnistock.toml:{line}:1: unknown field `marketplace_idd` in [channels.ebay] \
             (type \"ebay\"); did you mean `marketplace_id`? expected one of `endpoint`,"
        )),
        "{err}"
    );
}

#[test]
fn a_typo_in_every_channel_type_is_rejected_at_its_line() {
    for kind in ChannelKind::ALL {
        let valid = format!("{LOCATIONS}{}", minimal_section(kind));
        parse_with(&valid, &[]).unwrap_or_else(|e| panic!("minimal {kind} section:\n{e}"));

        let text = format!("{valid}endpointt = \"https://example.com\"\n");
        let err = parse_with(&text, &[]).expect_err(kind.as_str());
        let [d] = err.diagnostics() else {
            panic!("{kind}: one diagnostic expected:\n{err}")
        };
        let line = line_of(&text, "endpointt");
        assert_eq!(
            d.position,
            Some(Position { line, column: 1 }),
            "{kind}:\n{err}"
        );
        assert!(
            d.message.starts_with(&format!(
                "unknown field `endpointt` in [channels.{kind}] (type \"{kind}\"); did you mean \
                 `endpoint`?"
            )),
            "{kind}: {}",
            d.message
        );
        // The list of keys the type takes includes the common ones.
        assert!(
            d.message.contains("`poll_interval_secs`"),
            "{kind}: {}",
            d.message
        );

        // A typo in a shared key's table is caught just as well.
        let text = format!("{valid}stock = {{ bufer = 1 }}\n");
        let err = parse_with(&text, &[]).expect_err(kind.as_str());
        assert!(
            err.to_string().contains(&format!(
                "unknown field `bufer` in [channels.{kind}.stock]; did you mean `buffer`?"
            )),
            "{kind}:\n{err}"
        );
    }
}

#[test]
fn an_unknown_channel_type_lists_the_valid_ones() {
    let text = format!("{LOCATIONS}[channels.shop]\ntype = \"shopfiy\"\n");
    let err = parse_with(&text, &[]).unwrap_err();
    insta::assert_snapshot!("unknown_channel_type", err.to_string());
}

#[test]
fn a_syntax_error_points_at_the_character() {
    let text = "[daemon]\nlisten = \"127.0.0.1:8686\nlog_format = \"json\"\n";
    let err = parse_with(text, &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    let d = &err.diagnostics()[0];
    assert_eq!(d.position.map(|p| p.line), Some(2), "{err}");
}

#[test]
fn semantic_problems_are_all_reported_at_once_with_key_and_value() {
    let text = r#"
[daemon]
database = "mysql://root:hunter2@db/omnistock"
listen = "0.0.0.0:8686"

[[locations]]
id = "main"

[[locations]]
id = "main"

[channels.ebay_uk]
type = "ebay"
client_id = "id"
client_secret = ""
refresh_token = "r"
marketplace_id = "EBAY_UK"
merchant_location_key = "main"
policies = { fulfillment = "f", payment = "p", return = "r" }
locations = ["main", "warehouse2"]
stock = { buffer = -1, percent = 140, max = 5, min_shown = 10 }
price = { multiplier = "0", add = "abc", round_to = "1000" }
schedule = { orders = "every minute", reconcile = "0 0 3 * * *" }
limits = { rate_per_sec = 0.0, batch_size = 0 }

[channels.Shop]
type = "shopify"
endpoint = "shop.example.com"
location_id = "gid://shopify/Location/1"
webhook_secret = "w"

[[rules]]
match = "clearance"
channels = ["ebay"]
"#;
    let err = parse_with(text, &[]).unwrap_err();
    let problems = err.problems();
    assert!(problems.len() >= 15, "{err}");
    assert!(
        err.to_string().contains(
            "config/omnistock.toml:21:24: channels.ebay_uk.stock.percent must be 0–100, got 140"
        ),
        "{err}"
    );
    assert!(
        !err.to_string().contains("hunter2"),
        "a database password leaked:\n{err}"
    );
    insta::assert_snapshot!("semantic_problems", err.to_string());
}

#[test]
fn missing_variables_are_all_named_with_their_lines() {
    let text = format!(
        "[daemon]\nadmin_token = \"${{ADMIN_TOKEN}}\"\n{LOCATIONS}{}",
        minimal_section(ChannelKind::Ebay)
            .replace("\"s\"", "\"${EBAY_CLIENT_SECRET}\"")
            .replace("\"r\"\n", "\"${EBAY_REFRESH_TOKEN}\"\n")
    );
    let err = parse_with(&text, &[("EBAY_REFRESH_TOKEN", "set")]).unwrap_err();
    assert!(matches!(err, ConfigError::Interpolation { .. }), "{err:?}");
    let found: Vec<(usize, &str)> = err
        .diagnostics()
        .iter()
        .map(|d| (d.position.unwrap().line, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "environment variable ADMIN_TOKEN is not set"),
            (
                line_of(&text, "client_secret"),
                "environment variable EBAY_CLIENT_SECRET is not set"
            ),
        ]
    );
    insta::assert_snapshot!("missing_variables", err.to_string());
}

#[test]
fn variables_outside_double_quoted_strings_are_refused() {
    let text =
        format!("{LOCATIONS}[daemon]\nadmin_token = '${{TOKEN}}'\nlease_secs = ${{LEASE}}\n");
    let err = parse_with(&text, &[("TOKEN", "x"), ("LEASE", "30")]).unwrap_err();
    let messages: Vec<&str> = err
        .diagnostics()
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert!(messages[0].contains("literal '…' string"), "{err}");
    assert!(messages[1].contains("outside a string"), "{err}");
}

#[test]
fn a_value_with_quotes_backslashes_and_newlines_arrives_intact() {
    let nasty = "p\"a's\\s\\\"w\nord\t\u{1}#${NOT_A_VAR}\u{7f}é";
    let text = format!(
        "{LOCATIONS}{}",
        minimal_section(ChannelKind::Ebay)
            .replace("client_secret = \"s\"", "client_secret = \"${SECRET}\"")
    );
    let config = parse_with(&text, &[("SECRET", nasty)]).unwrap_or_else(|e| panic!("{e}"));
    let ChannelConfig::Ebay(ebay) = config.channel("ebay").unwrap() else {
        panic!()
    };
    assert_eq!(ebay.client_secret.expose(), nasty);

    // `$${` is how a literal `${` is written.
    let text = text.replace("${SECRET}", "$${SECRET}");
    let config = parse_with(&text, &[]).unwrap();
    let ChannelConfig::Ebay(ebay) = config.channel("ebay").unwrap() else {
        panic!()
    };
    assert_eq!(ebay.client_secret.expose(), "${SECRET}");
}

#[test]
fn secrets_never_show_in_debug_output_or_the_summary() {
    let text = shipped("omnistock.example.toml").replace(
        "sqlite://omnistock.db",
        "postgres://omnistock:secret-value-of-DB_PASSWORD@db/omnistock",
    );
    // Secret-looking variables get recognisable values; the rest (client ids, user names) are
    // plain settings and may show.
    let env = |name: &str| {
        let secret = ["SECRET", "TOKEN", "PASSWORD", "KEY"]
            .iter()
            .any(|s| name.contains(s));
        Some(if secret {
            fake_value(name)
        } else {
            format!("plain-{name}")
        })
    };
    let config = config::parse(&text, ORIGIN, &env).unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");
    let summary = config::redacted_summary(&config);
    for output in [&debug, &pretty, &summary] {
        assert!(
            !output.contains("secret-value-of"),
            "a secret leaked:\n{output}"
        );
    }
    assert!(debug.contains("client_secret: ***"), "{debug}");
    assert!(
        summary.contains("postgres://omnistock:***@db/omnistock"),
        "{summary}"
    );
}

#[test]
fn a_secret_in_a_misplaced_value_is_not_echoed_by_the_error() {
    let text = format!("{LOCATIONS}[daemon]\nlease_secs = \"${{TOKEN}}\"\n");
    let err = parse_with(&text, &[("TOKEN", "hunter2-hunter2")]).unwrap_err();
    let shown = err.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("daemon.lease_secs: invalid type: string \"***\""),
        "{shown}"
    );
    assert!(
        shown.contains("lease_secs = \"${TOKEN}\""),
        "the line as written:\n{shown}"
    );
}

#[test]
fn classic_and_crate_cron_forms_are_accepted_garbage_is_named() {
    let with_schedule = |orders: &str| {
        format!(
            "{LOCATIONS}{}schedule = {{ orders = \"{orders}\", reconcile = \"0 0 3 * * *\" }}\n",
            minimal_section(ChannelKind::Ebay)
        )
    };
    for good in [
        "*/2 * * * *",
        "0 3 * * 1-5",
        "30 */2 * * * *",
        "0 0 3 * * * 2030",
        "@hourly",
    ] {
        parse_with(&with_schedule(good), &[]).unwrap_or_else(|e| panic!("{good:?}:\n{e}"));
    }
    for bad in ["every minute", "* * * *", "61 * * * *", "0 3 1 * 1"] {
        let err = parse_with(&with_schedule(bad), &[]).expect_err(bad);
        let [p] = err.problems() else {
            panic!("{bad:?}: one problem expected:\n{err}")
        };
        assert_eq!(p.key, "channels.ebay.schedule.orders", "{bad:?}");
        assert!(p.message.contains(&format!("got {bad:?}")), "{bad:?}: {p}");
    }
    assert!(config::parse_schedule("*/5 * * * *").is_ok());
}

#[test]
fn load_names_the_file_in_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnistock.toml");
    std::fs::write(&path, format!("{LOCATIONS}[daemon]\nlissten = \"x\"\n")).unwrap();
    let err = config::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:4:1: ", path.display())),
        "{err}"
    );

    let missing = dir.path().join("nope.toml");
    let err = config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let comment = format!("# {}\n", "x".repeat(1022));
    for _ in 0..=MAX_CONFIG_BYTES / 1024 {
        file.write_all(comment.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    let err = config::load(file.path()).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::TooLarge {
                limit: MAX_CONFIG_BYTES,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("at most 1048576 bytes"), "{err}");
}

#[test]
fn invalid_utf8_is_reported_at_its_byte() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[[locations]]\nid = \"caf\xe9\"\n")
        .unwrap();
    file.flush().unwrap();
    let err = config::load(file.path()).unwrap_err();
    let ConfigError::NotUtf8 {
        offset, position, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*offset, 23);
    assert_eq!(
        *position,
        Position {
            line: 2,
            column: 10
        }
    );
    assert!(
        err.to_string()
            .contains(":2:10: the file is not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn amazon_keys_are_checked_and_each_problem_named() {
    let base = "[daemon]\ndatabase = \"sqlite://x.db\"\n\n[[locations]]\nid = \"main\"\n";
    let good = format!(
        "{base}{}product_type_rules = [{{ sku = \"MUG-*\", product_type = \"DRINKING_CUP\" }}]\n\
         region = \"eu\"\nsandbox = true\ncondition_type = \"used_like_new\"\nlanguage_tag = \"de_DE\"\n\
         feed_processing_secs = 60\n",
        minimal_section(ChannelKind::Amazon)
    );
    let config = parse_with(&good, &[]).expect("valid amazon section");
    let omnistock::config::ChannelConfig::Amazon(a) = &config.channels["amazon"] else {
        panic!("an amazon channel");
    };
    assert_eq!(a.product_type_rules[0].product_type, "DRINKING_CUP");
    assert_eq!(a.region.as_deref(), Some("eu"));
    assert!(a.sandbox);
    assert_eq!(a.feed_processing_secs, 60);

    let bad = format!(
        "{base}{}product_type = \"luggage\"\n\
         product_type_rules = [{{ sku = \"\", product_type = \"OK\" }}]\n\
         region = \"mars\"\ncondition_type = \"mint\"\nlanguage_tag = \"en-US\"\nfeed_processing_secs = 0\n",
        minimal_section(ChannelKind::Amazon)
    );
    let err = parse_with(&bad, &[]).unwrap_err().to_string();
    for needle in [
        "channels.amazon.product_type must be an Amazon product type such as \"PRODUCT\" (A-Z, 0-9, _), got \"luggage\"",
        "channels.amazon.product_type_rules[0].sku must not be empty",
        "channels.amazon.region must be \"na\", \"eu\" or \"fe\", got \"mars\"",
        "channels.amazon.condition_type must be one of new_new,",
        "channels.amazon.language_tag must look like \"en_US\", got \"en-US\"",
        "channels.amazon.feed_processing_secs must be 1–86400, got 0",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
