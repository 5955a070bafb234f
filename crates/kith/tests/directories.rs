//! Directories end to end (docs/spec/directory-v1.md): a relay's operator
//! runs them with `kith-relay directory`, people join, publish, search and
//! ask for contact with `kith directory` and `kith accept`, all against a
//! real relay process. The attestation's expiry is real: a short validity,
//! then a wait.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Person, relay, relay_db};
use kith_testkit::RelayProcess;
use serde_json::Value;

fn operator(relay: &RelayProcess, args: &[&str]) -> String {
    common::relay_directory(relay, args)
}

/// An enrolment link for one person.
fn admit(relay: &RelayProcess, dir: &str, validity: &[&str]) -> String {
    let mut args = vec![
        "admit",
        dir,
        "--statement",
        "current student",
        "--url",
        relay.url(),
    ];
    args.extend_from_slice(validity);
    let link = operator(relay, &args).trim().to_string();
    assert!(link.contains(&format!("/d/{dir}#")), "{link}");
    link
}

/// A command that must fail: its JSON error code.
fn refused(p: &Person, args: &[&str]) -> String {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = p.run(&all);
    assert!(!out.status.success(), "kith {args:?} succeeded");
    let e: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    e["error"]["code"].as_str().unwrap().to_string()
}

fn person(dir: &std::path::Path, who: &str, name: &str, relay: &RelayProcess) -> Person {
    let p = Person::new(dir, who);
    p.ok(&["init", "--name", name, "--relay", relay.url()]);
    p
}

#[test]
fn a_school_directory_from_enrolment_to_an_attestation_that_expires() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let created = operator(&relay, &["create", "school", "--members-only"]);
    assert!(
        created.contains("members-only directory school"),
        "{created}"
    );
    let alex_link = admit(&relay, "school", &["--until", "2099-06-30"]);
    // Emery graduates soon: a validity short enough to wait out.
    let emery_link = admit(&relay, "school", &["--valid-for", "12s"]);

    let alex = person(dir.path(), "alex", "Alex", &relay);
    let emery = person(dir.path(), "emery", "Emery", &relay);
    let casey = person(dir.path(), "casey", "Casey", &relay);
    alex.ok(&["persona", "create", "School", "--display-name", "Alex K."]);
    let joined = alex.json(&["directory", "join", &alex_link, "--persona", "School"]);
    assert_eq!(joined["statement"], "current student");
    assert_eq!(joined["standing"], "valid");
    assert_eq!(joined["persona"], "School");
    // Without --persona, a persona named after the directory is made.
    let joined = emery.json(&["directory", "join", &emery_link]);
    assert_eq!(joined["persona"], "school");
    let emery_until = joined["valid_until"].as_u64().unwrap();
    // An enrolment link works once.
    assert_eq!(
        refused(&casey, &["directory", "join", &emery_link]),
        "enrolment_refused"
    );
    // ... and the persona made for it goes with the failed join.
    assert_eq!(casey.json(&["persona", "list"]), serde_json::json!([]));
    emery.ok(&[
        "directory",
        "publish",
        "school",
        "--display-name",
        "Emery Stone",
        "--text",
        "Year 12, chess club",
    ]);
    alex.ok(&["directory", "publish", "school", "--text", "Year 11"]);

    // A non-member cannot join without a link, nor search.
    let public_link = joined["link"].as_str().unwrap().to_string();
    assert_eq!(
        refused(&casey, &["directory", "join", &public_link]),
        "members_only"
    );
    assert_eq!(
        refused(&casey, &["directory", "search", &public_link, "emery"]),
        "not_a_member"
    );

    // Alex finds Emery by the start of a word, and asks as his persona.
    let found = alex.json(&["directory", "search", "school", "CHESS", "eme"]);
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["display_name"], "Emery Stone");
    assert_eq!(
        alex.json(&["directory", "search", "school", "hess"]),
        serde_json::json!([]),
        "words match at their start only"
    );
    let everyone = alex.json(&["directory", "search", "school"]);
    assert_eq!(everyone.as_array().unwrap().len(), 2, "{everyone}");
    let address = found[0]["address"].as_str().unwrap();
    alex.ok(&[
        "accept",
        address,
        "--persona",
        "School",
        "--note",
        "from the school directory",
    ]);
    emery.ok(&["sync"]);
    let requests = emery.json(&["requests"]);
    assert_eq!(requests[0]["name"], "Alex K.", "{requests}");
    assert_eq!(requests[0]["note"], "from the school directory");
    let id = requests[0]["id"].to_string();
    emery.ok(&["requests", "accept", &id]);
    alex.ok(&["sync"]);
    emery.ok(&["sync"]);
    alex.ok(&["sync"]);

    // Both see the other's attestation, checked against the key MLS
    // authenticated; it names the directory they both joined.
    let seen_by_alex = alex.json(&["info", "Emery Stone"]);
    let theirs = |info: &Value| {
        info["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["outgoing"] == false)
            .cloned()
            .unwrap_or_else(|| panic!("no attestation shown: {info}"))
    };
    let a = theirs(&seen_by_alex);
    assert_eq!(
        (
            &a["directory"],
            &a["statement"],
            &a["standing"],
            &a["known"]
        ),
        (
            &Value::from("school"),
            &Value::from("current student"),
            &Value::from("valid"),
            &Value::from(true)
        )
    );
    let text = alex.ok(&["info", "Emery Stone"]);
    assert!(
        text.contains("they showed: school: current student, until"),
        "{text}"
    );
    let seen_by_emery = emery.json(&["info", "Alex K."]);
    assert_eq!(theirs(&seen_by_emery)["statement"], "current student");
    // Shown again by hand; refused where it would not verify (a
    // relationship on another key), which would also link the two.
    alex.ok(&["directory", "show", "school", "Emery Stone"]);
    let link = casey.json(&["invite"])["link"]
        .as_str()
        .unwrap()
        .to_string();
    alex.ok(&["accept", &link]);
    assert_eq!(
        refused(&alex, &["directory", "show", "school", "Casey"]),
        "bad_directory"
    );

    // Emery's attestation runs out: search no longer finds her, her own
    // searches are refused, the conversation goes on, info says expired.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    std::thread::sleep(std::time::Duration::from_millis(
        emery_until.saturating_sub(now) + 1_000,
    ));
    let found = alex.json(&["directory", "search", "school", "emery"]);
    assert_eq!(found, serde_json::json!([]), "an expired member is listed");
    assert_eq!(
        refused(&emery, &["directory", "search", "school", "alex"]),
        "not_a_member"
    );
    emery.ok(&["send", "Alex K.", "still here after graduation"]);
    alex.ok(&["sync"]);
    let texts = alex.texts("Emery Stone");
    assert!(
        texts
            .iter()
            .any(|(_, t)| t == "still here after graduation"),
        "{texts:?}"
    );
    let seen_by_alex = alex.json(&["info", "Emery Stone"]);
    assert_eq!(theirs(&seen_by_alex)["standing"], "expired");
    let text = alex.ok(&["info", "Emery Stone"]);
    assert!(text.contains("(expired)"), "{text}");
    let listed = emery.json(&["directory", "list"]);
    assert_eq!(listed[0]["standing"], "expired", "{listed}");

    // The operator removes Alex: his entry goes, his key is on the
    // revocation list, and Emery (who knows the directory) sees "revoked".
    let members = operator(&relay, &["list", "school"]);
    let alex_row = members
        .lines()
        .find(|l| l.contains("Alex K."))
        .unwrap_or_else(|| panic!("{members}"));
    let alex_id = alex_row.split_whitespace().next().unwrap();
    operator(&relay, &["remove", "school", alex_id]);
    assert_eq!(
        refused(&alex, &["directory", "search", "school", "emery"]),
        "not_a_member"
    );
    // Emery's client learns the revocation list from the directory's
    // signed description (fetched before her search, which is refused).
    assert_eq!(
        refused(&emery, &["directory", "search", "school", "alex"]),
        "not_a_member"
    );
    let seen_by_emery = emery.json(&["info", "Alex K."]);
    assert_eq!(theirs(&seen_by_emery)["standing"], "revoked");
    let listed = operator(&relay, &["list"]);
    assert!(
        listed.contains("school  members-only  1 members"),
        "{listed}"
    );

    // A new enrolment link brings Alex back, with the same persona.
    alex.ok(&["directory", "leave", "school"]);
    let again = admit(&relay, "school", &["--until", "2099-06-30"]);
    let joined = alex.json(&["directory", "join", &again, "--persona", "School"]);
    assert_eq!(joined["standing"], "valid", "{joined}");
    let found = alex.json(&["directory", "search", "school"]);
    assert_eq!(found, serde_json::json!([]), "Emery expired, Alex unlisted");

    // The removed member's entry is gone from the relay's store (Emery's,
    // unlisted since it expired, goes with the next sweep).
    let db = relay_db(&relay);
    let names: Vec<String> = db
        .prepare("SELECT display_name FROM directory_entries")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!names.iter().any(|n| n == "Alex K."), "{names:?}");
}

#[test]
fn a_public_directory_anyone_searches_and_an_entry_leads_to_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    operator(&relay, &["create", "club"]);
    let blair = person(dir.path(), "blair", "Blair", &relay);
    let casey = person(dir.path(), "casey", "Casey", &relay);
    let link = format!("{}/d/club", relay.url());
    let joined = blair.json(&["directory", "join", &link]);
    assert_eq!(joined["members_only"], false);
    assert!(joined["statement"].is_null());
    blair.ok(&[
        "directory",
        "publish",
        "club",
        "--text",
        "runs on Sundays <script>alert(1)</script>",
    ]);
    // Anyone searches a public directory by its link, without joining.
    let found = casey.json(&["directory", "search", &link, "sunday"]);
    assert_eq!(found[0]["display_name"], "Blair", "{found}");
    // A peer's text reaches the terminal as data.
    let text = casey.ok(&["directory", "search", &link, "runs"]);
    assert!(
        text.contains("1. Blair") && text.contains("<script>"),
        "{text}"
    );
    casey.ok(&["accept", found[0]["address"].as_str().unwrap()]);
    blair.ok(&["sync"]);
    assert_eq!(blair.json(&["requests"])[0]["name"], "Casey");

    // Unpublishing removes the entry and deletes its address.
    blair.ok(&["directory", "unpublish", "club"]);
    assert_eq!(
        casey.json(&["directory", "search", &link, "sunday"]),
        serde_json::json!([])
    );
    let late = person(dir.path(), "late", "Late", &relay);
    assert_eq!(
        refused(&late, &["accept", found[0]["address"].as_str().unwrap()]),
        "address_gone"
    );
    assert_eq!(
        refused(&blair, &["persona", "delete", "club"]),
        "persona_in_use"
    );
    blair.ok(&["directory", "leave", "club"]);
    blair.ok(&["persona", "delete", "club"]);
    assert_eq!(blair.json(&["directory", "list"]), serde_json::json!([]));
    assert_eq!(
        refused(&blair, &["directory", "search", "club", "x"]),
        "no_such_directory"
    );
    // Bad input: one line each, nothing changed.
    assert_eq!(
        refused(
            &blair,
            &["directory", "join", "http://127.0.0.1:1/d/No Such"]
        ),
        "bad_link"
    );
    assert_eq!(
        refused(
            &blair,
            &["directory", "join", &format!("{}/d/nosuch", relay.url())]
        ),
        "bad_directory"
    );
}

#[test]
fn a_directory_on_a_postgresql_relay() {
    let Some(url) = kith_testkit::postgres_url() else {
        return;
    };
    let schema = kith_testkit::unique_schema();
    let relay = RelayProcess::start(
        kith_testkit::RelayOptions::default()
            .unlimited()
            .postgres(&url, &schema),
    )
    .unwrap();
    // The operator's command on the same database and schema.
    let out = std::process::Command::new(kith_testkit::relay_binary())
        .args(["directory", "create", "club", "--db", &url])
        .env("KITH_RELAY_POSTGRES_SCHEMA", &schema)
        .env_remove("KITH_RELAY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let blair = person(dir.path(), "blair", "Blair", &relay);
    let casey = person(dir.path(), "casey", "Casey", &relay);
    let link = format!("{}/d/club", relay.url());
    blair.ok(&["directory", "join", &link]);
    blair.ok(&["directory", "publish", "club", "--text", "runs on Sundays"]);
    let found = casey.json(&["directory", "search", &link, "sun"]);
    assert_eq!(found[0]["display_name"], "Blair", "{found}");
    casey.ok(&["accept", found[0]["address"].as_str().unwrap()]);
    blair.ok(&["sync"]);
    assert_eq!(blair.json(&["requests"])[0]["name"], "Casey");
    drop(relay);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    });
}

/// Anyone may publish in a public directory, with a key made on the spot:
/// the relay bounds what one source publishes.
#[test]
fn a_public_directory_takes_a_few_entries_from_one_source() {
    use kith_wire::dir::{DirectoryOp, DirectoryRequest, Entry};
    // Rate limits on (the default), as a relay on the internet runs.
    let relay = RelayProcess::start(kith_testkit::RelayOptions::default()).unwrap();
    operator(&relay, &["create", "market"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let codes: Vec<Option<String>> = runtime.block_on(async {
        kith_relay_client::install_crypto_provider();
        let client = kith_relay_client::RelayClient::new(relay.url()).unwrap();
        let mut codes = Vec::new();
        for i in 0..12 {
            let key = kith_relay_client::generate_key().unwrap();
            let request = DirectoryRequest {
                directory: "market".into(),
                op: DirectoryOp::Publish(Entry {
                    display_name: format!("Stall {i}"),
                    text: String::new(),
                    address: format!("https://relay.example/a/{i}#k"),
                }),
            };
            codes.push(
                client
                    .directory(&key, request)
                    .await
                    .err()
                    .and_then(|e| e.code().map(|c| c.name().to_string())),
            );
        }
        codes
    });
    assert!(codes[..10].iter().all(Option::is_none), "{codes:?}");
    assert_eq!(codes[10].as_deref(), Some("rate_limited"), "{codes:?}");
}
