//! Personas and links between relationships (docs/spec/pair-v1.md §12),
//! end to end: real `kith` processes and a real relay.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Person, alex_and, relay};
use serde_json::Value;

fn their_key(who: &Person, conv: &str) -> String {
    let info = who.json(&["info", conv]);
    info["member_identities"][0].as_str().unwrap().to_string()
}

fn link_of(who: &Person, args: &[&str]) -> String {
    let mut all = vec!["invite"];
    all.extend_from_slice(args);
    who.json(&all)["link"].as_str().unwrap().to_string()
}

#[test]
fn a_persona_is_one_person_in_its_context_and_nobody_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [blair, casey, dana]) = alex_and(dir.path(), &relay, ["Blair", "Casey", "Dana"]);
    let school = alex.json(&["persona", "create", "School", "--display-name", "Alex K."]);
    assert_eq!(school["display_name"], "Alex K.");
    let school_key = school["identity"].as_str().unwrap().to_string();

    // Blair and Casey meet Alex's school persona; Dana meets Alex as
    // usual (the running club).
    let accepted = blair.json(&["accept", &link_of(&alex, &["--persona", "School"])]);
    assert_eq!(accepted["name"], "Alex K.");
    casey.json(&["accept", &link_of(&alex, &["--persona", "School"])]);
    let club = dana.json(&["accept", &link_of(&alex, &[])]);
    assert_eq!(club["name"], "Alex");
    alex.ok(&["sync"]);

    // In the school, one Alex; at the club, an identity nothing ties to it.
    assert_eq!(their_key(&blair, "Alex K."), school_key);
    assert_eq!(their_key(&casey, "Alex K."), school_key);
    let club_key = their_key(&dana, "Alex");
    assert_ne!(club_key, school_key);
    let personas = alex.json(&["persona", "list"]);
    assert_eq!(personas[0]["conversations"], 2, "{personas}");
    let info = alex.json(&["info", "Blair"]);
    assert_eq!(info["persona"], "School");
    assert_eq!(info["my_identity"], school_key.as_str());
    assert!(alex.json(&["info", "Dana"])["persona"].is_null());

    // A group started from the persona, and an address: the same key.
    let group = alex.json(&["group", "create", "Class of 27", "--persona", "School"]);
    alex.ok(&["group", "add", "Class of 27", "Blair"]);
    common::eventually(20, "Blair in the class group", || {
        alex.ok(&["sync"]);
        blair.ok(&["sync"]);
        blair.ok(&["list"]).contains("Class of 27")
    });
    let members = blair.json(&["group", "members", "Class of 27"]);
    let alex_member = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["me"] == false)
        .unwrap()
        .clone();
    assert_eq!(alex_member["name"], "Alex K.");
    let group_info = alex.json(&["info", group["id"].as_str().unwrap()]);
    assert_eq!(group_info["my_identity"], school_key.as_str());
    let address = alex.json(&["address", "create", "--persona", "School"]);
    let emery = Person::new(dir.path(), "emery");
    emery.ok(&["init", "--name", "Emery"]);
    emery.ok(&["accept", address["link"].as_str().unwrap()]);
    alex.ok(&["sync"]);
    let request = alex.json(&["requests"])[0]["id"].to_string();
    alex.ok(&["requests", "accept", &request]);
    emery.ok(&["sync"]);
    assert_eq!(their_key(&emery, "Alex K."), school_key);

    // Nothing of the persona's reaches the club's relationship files: the
    // school key is nowhere in Dana's profile.
    let needle = hex_bytes(&school_key);
    for entry in std::fs::read_dir(&dana.home).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(32).any(|w| w == needle.as_slice()));
    }

    // Forgotten: nothing new starts from it; what did keeps its key.
    alex.ok(&["persona", "delete", "School"]);
    assert!(
        alex.json(&["persona", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        alex.json(&["info", "Blair"])["my_identity"],
        school_key.as_str()
    );
    let out = alex.run(&["--json", "invite", "--persona", "School"]);
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "no_such_persona");
    alex.json(&["persona", "create", "School"]);

    // Bad names: one line each.
    let out = alex.run(&["--json", "invite", "--persona", "Work"]);
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "no_such_persona");
    let out = alex.run(&["--json", "persona", "create", "school"]);
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "persona_exists");
}

#[test]
fn a_link_shows_two_relationships_as_one_person_by_choice() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [blair]) = alex_and(dir.path(), &relay, ["Blair"]);
    alex.json(&["persona", "create", "School"]);
    // Blair knows Alex twice: from school, and from the club.
    blair.ok(&[
        "accept",
        &link_of(&alex, &["--persona", "School", "--name", "Alex (school)"]),
    ]);
    blair.ok(&["accept", &link_of(&alex, &["--name", "Alex (club)"])]);
    alex.ok(&["sync"]);
    let convs = alex.json(&["list"]);
    let ids: Vec<String> = convs
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let school_conv = ids
        .iter()
        .find(|c| alex.json(&["info", c])["persona"] == "School")
        .unwrap()
        .clone();
    let club_conv = ids.iter().find(|c| **c != school_conv).unwrap().clone();

    // Until Alex says so, Blair's two conversations name different keys.
    assert_ne!(
        their_key(&blair, "Alex (school)"),
        their_key(&blair, "Alex (club)")
    );
    assert!(
        blair.json(&["info", "Alex (club)"])["links"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    alex.ok(&["link", &club_conv, "--with", &school_conv]);
    blair.ok(&["sync"]);
    let links = blair.json(&["info", "Alex (club)"])["links"].clone();
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links[0]["outgoing"], false);
    assert_eq!(links[0]["name"], "Alex (school)");
    assert_eq!(
        links[0]["identity"],
        their_key(&blair, "Alex (school)").as_str()
    );
    let text = blair.ok(&["info", "Alex (club)"]);
    assert!(
        text.contains("they showed you they are also Alex (school)"),
        "{text}"
    );
    let mine = alex.json(&["info", &club_conv])["links"].clone();
    assert_eq!(mine[0]["outgoing"], true);
    assert_eq!(mine[0]["conversation"], school_conv.as_str());

    // Linking a conversation to itself, or two of one persona, says nothing.
    let out = alex.run(&["--json", "link", &club_conv, "--with", &club_conv]);
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "already_linked");
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
