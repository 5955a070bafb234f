//! The web UI in real headless Chromium (Debian's `chromium` and
//! `chromedriver`, over WebDriver): two daemons, two browsers. Skipped, and
//! said so, where Chromium is not installed (CI installs it). Screenshots
//! of the main views go to `target/screenshots/` (not committed).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::path::PathBuf;

use common::{Person, Up, relay};
use kith_testkit::browser::{Browser, unavailable};
use serde_json::json;

const ENTER: &str = "\u{E007}";

fn shots() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ))
}

fn skip() -> bool {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: browser tests need Chromium: {why}");
        return true;
    }
    false
}

/// A browser signed in to a daemon.
fn signed_in(up: &Up) -> Browser {
    let b = Browser::start(&[]).unwrap();
    b.goto(&format!("{}/login?token={}", up.url, up.token))
        .unwrap();
    if let Err(e) = b.find("#conversations") {
        let _ = b.screenshot(&shots().join("failed-sign-in.png"));
        let page = b.run("return document.documentElement.outerHTML", &[]);
        panic!("{e}: {page:?}");
    }
    b
}

/// Drops a file made in the page onto the conversation, as a person
/// dragging it from their desktop: a PNG drawn on a canvas, or bytes.
fn drop_file(b: &Browser, name: &str, png: bool) {
    b.run(
        "const [name, png] = arguments;
         const make = png
           ? new Promise((ok) => { const c = document.createElement('canvas'); c.width = 64; c.height = 48;
               const g = c.getContext('2d'); g.fillStyle = '#2f6feb'; g.fillRect(0, 0, 64, 48);
               c.toBlob((blob) => ok(new File([blob], name, { type: 'image/png' })), 'image/png'); })
           : Promise.resolve(new File(['just some bytes'], name, { type: 'application/octet-stream' }));
         return make.then((file) => {
           const dt = new DataTransfer(); dt.items.add(file);
           document.querySelector('#pane').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
           return true;
         });",
        &[json!(name), json!(png)],
    )
    .unwrap();
}

/// Opens the conversation named `name` from the list and waits for it.
fn open_conversation(b: &Browser, name: &str) {
    b.run(
        "const [n] = arguments;
         [...document.querySelectorAll('.conversation')].find(c => c.querySelector('.name').textContent === n).click();",
        &[json!(name)],
    )
    .unwrap();
    b.wait(10, &format!("the conversation {name}"), || {
        b.run(
            "const h = document.querySelector('#conv-name'); return h && h.textContent",
            &[],
        )
        .ok()?
        .as_str()?
        .eq(name)
        .then_some(())
    })
    .unwrap();
}

/// Closes whatever dialog is open.
fn close_dialogs(b: &Browser) {
    b.run(
        "document.querySelectorAll('dialog').forEach(d => d.close())",
        &[],
    )
    .unwrap();
}

#[test]
fn two_people_meet_and_talk_in_their_browsers() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = Person::new(dir.path(), "alex");
    let blair = Person::new(dir.path(), "blair");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    blair.ok(&["init", "--name", "Blair"]);
    let alex_up = Up::start(&alex);
    let blair_up = Up::start(&blair);
    let a = signed_in(&alex_up);
    let b = signed_in(&blair_up);
    a.screenshot(&shots().join("01-empty.png")).unwrap();

    // Alex shows an invitation; Blair pastes its link.
    a.click("#new-invite").unwrap();
    a.click("#make-invite").unwrap();
    let link_field = a.find("#invite-out .link").unwrap();
    let link = a
        .wait(15, "the link", || {
            a.run(
                "return document.querySelector('#invite-out .link').value",
                &[],
            )
            .ok()?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
        })
        .unwrap();
    drop(link_field);
    a.find("#invite-out img.qr").unwrap();
    a.screenshot(&shots().join("02-invitation.png")).unwrap();
    close_dialogs(&a);

    b.click("#accept-link").unwrap();
    b.type_into("#accept-input", &link).unwrap();
    b.click("#accept-go").unwrap();
    b.find("#text").unwrap();
    b.wait_text(20, "Alex").unwrap();

    // Live: each sees the other's messages without reloading.
    a.wait_text(20, "Blair").unwrap();
    b.type_into("#text", &format!("hello **Alex**{ENTER}"))
        .unwrap();
    a.click("#conversations .conversation").unwrap();
    a.wait_text(20, "hello Alex").unwrap();
    assert_eq!(
        a.run(
            "return document.querySelector('.message .body strong').textContent",
            &[]
        )
        .unwrap(),
        "Alex"
    );
    a.type_into("#text", &format!("hi Blair, good to see you{ENTER}"))
        .unwrap();
    b.wait_text(20, "hi Blair, good to see you").unwrap();

    // Reply, react, edit, delete.
    b.run(
        "document.querySelector('.message:not(.mine) .act-reply').click()",
        &[],
    )
    .unwrap();
    b.type_into("#text", &format!("a reply{ENTER}")).unwrap();
    a.wait(20, "the quote", || {
        a.run("return [...document.querySelectorAll('.message .quote')].map(q => q.textContent).join()", &[])
            .ok()?
            .as_str()?
            .contains("hi Blair")
            .then_some(())
    })
    .unwrap();
    a.run(
        "document.querySelector('.message:not(.mine) .act-react').click()",
        &[],
    )
    .unwrap();
    b.wait_text(20, "👍 1").unwrap();
    a.run(
        "document.querySelector('.message.mine .act-edit').click()",
        &[],
    )
    .unwrap();
    a.run("document.querySelector('#text').value = ''", &[])
        .unwrap();
    a.type_into("#text", &format!("hi Blair (edited text){ENTER}"))
        .unwrap();
    b.wait_text(20, "hi Blair (edited text)").unwrap();
    b.wait_text(20, "edited").unwrap();
    a.screenshot(&shots().join("03-conversation.png")).unwrap();
    a.run(
        "window.confirm = () => true; document.querySelector('.message.mine .act-delete').click()",
        &[],
    )
    .unwrap();
    b.wait_text(20, "message deleted").unwrap();

    // A picture, dropped on the window: Alex sees its preview.
    drop_file(&b, "blue.png", true);
    a.wait_text(30, "blue.png").unwrap();
    a.click(".file-download").unwrap();
    let preview = a.wait(30, "the preview", || {
        a.run(
            "const i = document.querySelector('img.preview'); return !!(i && i.complete && i.naturalWidth === 64);",
            &[],
        )
        .ok()?
        .as_bool()?
        .then_some(())
    });
    if let Err(e) = preview {
        let _ = a.screenshot(&shots().join("failed-preview.png"));
        let file = a.run(
            "const m = [...document.querySelectorAll('.message')].pop();
             const conv = document.querySelector('.conversation.current').dataset.id;
             return fetch(`/api/v1/conversations/${conv}/messages/${m.dataset.id}/download`, {method: 'POST'}).then(r => r.text());",
            &[],
        );
        panic!("{e}: {file:?}");
    }
    a.screenshot(&shots().join("04-picture.png")).unwrap();

    // A group: Alex creates it and adds Blair, who sees it and writes.
    a.click("#new-group").unwrap();
    a.type_into("#group-name", "Book club").unwrap();
    a.click("#group-create").unwrap();
    a.wait_text(20, "Book club").unwrap();
    a.click("#group-members").unwrap();
    a.find("#add-member option:nth-child(2)").unwrap();
    a.run(
        "const s = document.querySelector('#add-member'); s.value = s.options[1].value;",
        &[],
    )
    .unwrap();
    a.click("#add-member-go").unwrap();
    a.wait_text(20, "Blair").unwrap();
    a.screenshot(&shots().join("05-group-members.png")).unwrap();
    close_dialogs(&a);
    b.wait_text(30, "Book club").unwrap();
    open_conversation(&b, "Book club");
    b.type_into("#text", &format!("hello club{ENTER}")).unwrap();
    a.wait_text(30, "hello club").unwrap();

    // Alex blocks Blair from the conversation's info.
    open_conversation(&a, "Blair");
    a.wait_text(10, "a reply").unwrap();
    a.click("#conv-info").unwrap();
    a.find("#safety-number").unwrap();
    a.screenshot(&shots().join("06-info.png")).unwrap();
    a.click("#block").unwrap();
    a.wait_text(20, "blocked").unwrap();

    // At phone width the list and the conversation take turns.
    b.set_window(390, 844).unwrap();
    b.screenshot(&shots().join("07-phone.png")).unwrap();
    let side_hidden = b
        .run(
            "return getComputedStyle(document.querySelector('.side')).display",
            &[],
        )
        .unwrap();
    assert_eq!(side_hidden, "none");
    b.run("document.querySelector('.back').click()", &[])
        .unwrap();
    b.screenshot(&shots().join("08-phone-list.png")).unwrap();

    assert!(a.alert_text().is_none() && b.alert_text().is_none());
}

/// Everything a contact controls, made to look like markup: shown as
/// text, never run.
#[test]
fn nothing_a_peer_sends_becomes_markup() {
    if skip() {
        return;
    }
    const EVIL: &str = "<img src=x onerror=alert(1)>";
    const EVIL2: &str = "<script>window.__xss = 1</script><b onmouseover=alert(2)>x</b>";
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = Person::new(dir.path(), "alex");
    let mallory = Person::new(dir.path(), "mallory");
    let carol = Person::new(dir.path(), "carol");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    mallory.ok(&["init", "--name", EVIL]);
    carol.ok(&["init", "--name", "Carol"]);
    let (_, on_mallory) = common::connect(&alex, &mallory);
    let (on_alex_carol, _) = common::connect(&alex, &carol);
    let _ = on_alex_carol;
    mallory.ok(&["send", &on_mallory, EVIL]);
    mallory.ok(&["send", &on_mallory, EVIL2]);
    let body = dir.path().join("body.md");
    std::fs::write(&body, format!("{EVIL}\n\n[click](javascript:alert(3))")).unwrap();
    mallory.ok(&[
        "mail",
        &on_mallory,
        "--subject",
        EVIL,
        "--file",
        body.to_str().unwrap(),
    ]);
    let file = dir.path().join(format!(
        "{}.png",
        "<img src=x onerror=alert(4)>".replace('/', "_")
    ));
    std::fs::write(&file, b"not really a picture").unwrap();
    mallory.ok(&[
        "send-file",
        &on_mallory,
        file.to_str().unwrap(),
        "--caption",
        EVIL,
    ]);
    // Mallory introduces Alex… no: Alex introduces Mallory and Carol with a
    // note, and Carol sees Mallory's name and the note.
    let carol_up = Up::start(&carol);
    alex.ok(&["sync"]);
    alex.ok(&["introduce", EVIL, "Carol", "--note", EVIL]);
    let alex_up = Up::start(&alex);

    let a = signed_in(&alex_up);
    a.wait_text(20, EVIL).unwrap();
    open_conversation(&a, EVIL);
    a.wait_text(20, "javascript:alert(3)").unwrap();
    a.wait_text(20, "<img src=x onerror=alert(4)>.png").unwrap();
    a.wait_text(20, EVIL2).unwrap();
    a.screenshot(&shots().join("09-xss-alex.png")).unwrap();
    let c = signed_in(&carol_up);
    c.click("#show-intros").unwrap();
    c.wait_text(30, EVIL).unwrap();
    c.screenshot(&shots().join("10-xss-carol.png")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));

    for browser in [&a, &c] {
        assert_eq!(browser.alert_text(), None, "a dialog opened");
        let injected = browser
            .run(
                "return { xss: window.__xss || 0, imgs: document.querySelectorAll('img[src=\"x\"]').length,
                          scripts: document.querySelectorAll('body script').length,
                          handlers: document.querySelectorAll('[onerror],[onmouseover]').length,
                          js: [...document.querySelectorAll('a')].filter(l => l.href.startsWith('javascript')).length }",
                &[],
            )
            .unwrap();
        assert_eq!(
            injected,
            json!({"xss": 0, "imgs": 0, "scripts": 0, "handlers": 0, "js": 0}),
            "markup from a peer was made live"
        );
    }
    // Shown literally: the name, the text, the subject, the file's name.
    let shown = a.run("return document.body.innerText", &[]).unwrap();
    let shown = shown.as_str().unwrap();
    assert!(shown.contains(EVIL2), "{shown}");
    assert!(shown.matches(EVIL).count() >= 3, "{shown}");
}

/// Bytes received per media kind on a browser's call.
fn received(b: &Browser) -> (u64, u64) {
    let v = b
        .run(
            "const c = window.kithCall; if (!c || !c.pc) return [0, 0];
             return c.pc.getStats().then((s) => { let a = 0, v = 0;
               s.forEach((r) => { if (r.type === 'inbound-rtp') { if (r.kind === 'audio') a += r.bytesReceived; else v += r.bytesReceived; } });
               return [a, v]; });",
            &[],
        )
        .unwrap();
    (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0))
}

/// Two browsers with fake cameras call each other through their daemons:
/// the signalling is kith messages; media flows browser to browser, with
/// the DTLS keys checked against what came through kith.
#[test]
fn a_video_call_between_two_browsers() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = common::meet(dir.path(), &relay);
    let alex_up = Up::start(&alex);
    let blair_up = Up::start(&blair);
    let fake = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ];
    let sign_in = |up: &Up| {
        let b = Browser::start(&fake).unwrap();
        b.goto(&format!("{}/login?token={}", up.url, up.token))
            .unwrap();
        b.click("#conversations .conversation").unwrap();
        b.find("#text").unwrap();
        b
    };
    let a = sign_in(&alex_up);
    let b = sign_in(&blair_up);

    a.click("#call-video").unwrap();
    b.click("#call-accept").unwrap();
    for (who, browser) in [("Alex", &a), ("Blair", &b)] {
        browser
            .wait(30, &format!("{who}'s keys verified"), || {
                browser
                    .run(
                        "return !!(window.kithCall && window.kithCall.verified)",
                        &[],
                    )
                    .ok()?
                    .as_bool()?
                    .then_some(())
            })
            .unwrap();
        browser
            .wait(30, &format!("{who} receiving audio and video"), || {
                let (audio, video) = received(browser);
                (audio > 0 && video > 0).then_some(())
            })
            .unwrap();
    }
    a.screenshot(&shots().join("11-call.png")).unwrap();
    a.click("#hang-up").unwrap();
    b.wait(20, "Blair's side to end", || {
        b.run("return !window.kithCall.pc", &[])
            .ok()?
            .as_bool()?
            .then_some(())
    })
    .unwrap();
    let calls = blair_up.call("GET", "/api/v1/conversations/Alex%20Example/calls", None);
    assert_eq!(calls[0]["state"], "ended", "{calls}");
    assert!(calls[0]["duration_ms"].as_u64().is_some(), "{calls}");

    // Rung and given up on: missed, in both histories.
    a.click("#call-audio").unwrap();
    b.find("#call-accept").unwrap();
    a.click("#hang-up").unwrap();
    b.wait(20, "the ringing to stop", || {
        b.run("return document.querySelector('#call').hidden", &[])
            .ok()?
            .as_bool()?
            .then_some(())
    })
    .unwrap();
    b.wait_text(20, "missed").unwrap();
    let calls = blair_up.call("GET", "/api/v1/conversations/Alex%20Example/calls", None);
    assert_eq!(calls[0]["state"], "missed", "{calls}");
}

/// A long conversation opens with its last page only; scrolling up loads
/// the pages before, one at a time, down to its beginning.
#[test]
fn a_long_conversation_loads_a_page_at_a_time() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = common::meet(dir.path(), &relay);
    let blair_up = Up::start(&blair);
    for i in 0..120 {
        blair_up.call(
            "POST",
            "/api/v1/conversations/Alex%20Example/messages",
            Some(json!({ "text": format!("line {i}") })),
        );
    }
    let alex_up = Up::start(&alex);
    common::eventually(30, "120 messages at Alex", || {
        alex_up.call(
            "GET",
            "/api/v1/conversations/Blair%20Sample/messages?limit=1",
            None,
        )[0]["text"]
            == "line 119"
    });
    let a = signed_in(&alex_up);
    a.click("#conversations .conversation").unwrap();
    a.wait_text(20, "line 119").unwrap();
    let count = || {
        a.run(
            "return document.querySelectorAll('#messages .message').length",
            &[],
        )
        .unwrap()
        .as_u64()
        .unwrap()
    };
    assert_eq!(count(), 50);
    for shown in [100, 120] {
        a.run("const m = document.querySelector('#messages'); m.scrollTop = 0; m.dispatchEvent(new Event('scroll'));", &[])
            .unwrap();
        a.wait(20, &format!("{shown} messages shown"), || {
            (count() == shown).then_some(())
        })
        .unwrap();
    }
    a.wait_text(10, "The beginning of the conversation.")
        .unwrap();
    let first = a
        .run(
            "return document.querySelector('#messages .message .body').textContent",
            &[],
        )
        .unwrap();
    assert_eq!(first, "line 0");
}

/// The rest of what the window does: a mail, an introduction made and
/// accepted, a group joined by its link, an admin made, unblock, a move.
#[test]
fn mail_introductions_group_links_admins_unblock_and_move() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let second = common::relay();
    let (alex, blair) = common::meet(dir.path(), &relay);
    let carol = Person::new(dir.path(), "carol");
    carol.ok(&["init", "--name", "Carol"]);
    common::connect(&alex, &carol);
    let alex_up = Up::start(&alex);
    let blair_up = Up::start(&blair);
    let a = signed_in(&alex_up);
    let b = signed_in(&blair_up);
    // A mail: subject and markdown body.
    open_conversation(&a, "Blair Sample");
    a.click("#mail-toggle").unwrap();
    a.type_into("#subject", "Saturday").unwrap();
    a.type_into("#text", "We *walk* at nine.").unwrap();
    a.click("#send").unwrap();
    open_conversation(&b, "Alex Example");
    b.wait(20, "the mail's subject", || {
        b.run(
            "return [...document.querySelectorAll('.subject')].map(s => s.textContent).join()",
            &[],
        )
        .ok()?
        .as_str()?
        .contains("Saturday")
        .then_some(())
    })
    .unwrap();
    b.wait_text(10, "walk at nine").unwrap();

    // Alex introduces Blair to Carol; Blair accepts in the window, Carol
    // from the command line; Blair's window shows the new conversation.
    a.click("#conv-info").unwrap();
    a.click("#introduce").unwrap();
    a.run(
        "const s = document.querySelector('#introduce-to'); s.value = [...s.options].find(o => o.textContent === 'Carol').value;",
        &[],
    )
    .unwrap();
    a.type_into("#introduce-note", "you both walk").unwrap();
    a.click("#introduce-go").unwrap();
    close_dialogs(&a);
    b.wait(30, "the introduction offered", || {
        b.run("return !document.querySelector('#intro-badge').hidden", &[])
            .ok()?
            .as_bool()?
            .then_some(())
    })
    .unwrap();
    b.click("#show-intros").unwrap();
    b.wait_text(10, "you both walk").unwrap();
    b.screenshot(&shots().join("12-introductions.png")).unwrap();
    b.click(".intro-accept").unwrap();
    close_dialogs(&b);
    common::eventually(30, "Carol accepts", || {
        carol.ok(&["sync"]);
        let list = carol.json(&["introductions"]);
        let Some(i) = list.as_array().and_then(|l| l.first()) else {
            return false;
        };
        let id = i["id"].as_str().unwrap().to_string();
        carol
            .run(&["introductions", "accept", &id])
            .status
            .success()
    });
    common::eventually(30, "Blair and Carol connected", || {
        carol.ok(&["sync"]);
        b.run("return document.body.innerText", &[])
            .unwrap()
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l.trim() == "Carol")
    });

    // A group joined by its link, pasted into Blair's window.
    a.click("#new-group").unwrap();
    a.type_into("#group-name", "Walkers").unwrap();
    a.click("#group-create").unwrap();
    a.wait_text(20, "Walkers").unwrap();
    a.click("#group-members").unwrap();
    a.click("#group-invite").unwrap();
    a.find("#group-link img.qr").unwrap();
    let link = a
        .run(
            "return document.querySelector('#group-link .link').value",
            &[],
        )
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    close_dialogs(&a);
    b.click("#accept-link").unwrap();
    b.type_into("#accept-input", &link).unwrap();
    b.click("#accept-go").unwrap();
    b.wait(40, "Blair in Walkers", || {
        let list = blair_up.call("GET", "/api/v1/conversations", None);
        list.as_array()?
            .iter()
            .any(|c| c["name"] == "Walkers" && c["state"] == "active")
            .then_some(())
    })
    .unwrap();

    // Alex makes Blair an admin of it.
    open_conversation(&a, "Walkers");
    a.click("#group-members").unwrap();
    // The dialog lists the members once the daemon answers.
    a.wait(20, "Blair in the members' list", || {
        a.run(
            "return [...document.querySelectorAll('#members li')].some(l => l.textContent.includes('Blair'))",
            &[],
        )
        .ok()?
        .as_bool()?
        .then_some(())
    })
    .unwrap();
    a.run(
        "[...document.querySelectorAll('#members li')].find(l => l.textContent.includes('Blair')).querySelector('button').click()",
        &[],
    )
    .unwrap();
    a.wait(30, "Blair an admin", || {
        let members = alex_up.call("GET", "/api/v1/groups/Walkers/members", None);
        members
            .as_array()?
            .iter()
            .any(|m| m["name"] == "Blair Sample" && m["admin"] == true)
            .then_some(())
    })
    .unwrap();
    close_dialogs(&a);

    // Block, then unblock: the conversation goes on.
    open_conversation(&a, "Blair Sample");
    a.click("#conv-info").unwrap();
    a.click("#block").unwrap();
    a.wait_text(20, "blocked").unwrap();
    close_dialogs(&a);
    a.click("#conv-info").unwrap();
    a.click("#unblock").unwrap();
    a.wait(20, "unblocked", || {
        let list = alex_up.call("GET", "/api/v1/conversations", None);
        list.as_array()?
            .iter()
            .any(|c| c["name"] == "Blair Sample" && c["blocked"] == false)
            .then_some(())
    })
    .unwrap();
    close_dialogs(&a);

    // Moving to another relay from Settings.
    a.click("#settings").unwrap();
    a.type_into("#move-to", second.url()).unwrap();
    a.click("#move-go").unwrap();
    a.wait_text(30, "moved").unwrap();
    a.screenshot(&shots().join("13-moved.png")).unwrap();
    let info = alex_up.call("GET", "/api/v1/conversations/Blair%20Sample", None);
    assert!(
        info["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["relay_url"].as_str() == Some(second.url().trim_end_matches('/'))),
        "{info}"
    );
}

#[test]
fn a_contact_address_from_request_to_conversation_in_the_browser() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = Person::new(dir.path(), "alex");
    let blair = Person::new(dir.path(), "blair");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    blair.ok(&["init", "--name", "Blair"]);
    let alex_up = Up::start(&alex);
    let blair_up = Up::start(&blair);
    let a = signed_in(&alex_up);
    let b = signed_in(&blair_up);

    // Alex makes an address for the shop counter; its QR and link show.
    a.click("#show-addresses").unwrap();
    a.type_into("#address-label", "Shop counter").unwrap();
    a.click("#address-create").unwrap();
    a.wait_text(15, "Shop counter").unwrap();
    a.run(
        "document.querySelector('#addresses details').open = true",
        &[],
    )
    .unwrap();
    a.find("#addresses img.qr").unwrap();
    let link = a
        .wait(15, "the address link", || {
            a.run(
                "return document.querySelector('#addresses .link').value",
                &[],
            )
            .ok()?
            .as_str()
            .filter(|s| s.contains("/a/"))
            .map(str::to_string)
        })
        .unwrap();
    a.screenshot(&shots().join("40-address.png")).unwrap();
    close_dialogs(&a);

    // Blair pastes it with a note (a peer's text: shown as text).
    b.click("#accept-link").unwrap();
    b.type_into("#accept-input", &link).unwrap();
    b.wait(5, "the note field", || {
        b.run("return !document.querySelector('#accept-note').hidden", &[])
            .ok()?
            .as_bool()?
            .then_some(())
    })
    .unwrap();
    b.type_into(
        "#accept-note",
        "about the <img src=x onerror=alert(1)> bike",
    )
    .unwrap();
    b.click("#accept-go").unwrap();
    b.wait_text(15, "Request sent").unwrap();

    // Alex is told at once, and answers from the Addresses dialog.
    a.wait_text(20, "Contact request from Blair").unwrap();
    a.click("#show-addresses").unwrap();
    a.wait_text(15, "Blair asks to talk").unwrap();
    a.wait_text(5, "about the <img src=x onerror=alert(1)> bike")
        .unwrap();
    assert!(a.alert_text().is_none());
    assert_eq!(
        a.run(
            "return document.querySelectorAll('#requests img').length",
            &[]
        )
        .unwrap(),
        0
    );
    a.screenshot(&shots().join("41-request.png")).unwrap();
    a.click("#requests .request-accept").unwrap();
    a.wait(15, "the request answered", || {
        a.run(
            "return document.querySelectorAll('#requests .request-accept').length",
            &[],
        )
        .ok()?
        .as_u64()?
        .eq(&0)
        .then_some(())
    })
    .unwrap();
    close_dialogs(&a);
    open_conversation(&a, "Blair");
    a.type_into("#text", &format!("welcome to the shop{ENTER}"))
        .unwrap();
    // Blair's waiting conversation becomes Alex, live.
    b.wait(20, "Blair connected to Alex", || {
        b.run(
            "return [...document.querySelectorAll('.conversation .name')].map(n => n.textContent).includes('Alex')",
            &[],
        )
        .ok()?
        .as_bool()?
        .then_some(())
    })
    .unwrap();
    open_conversation(&b, "Alex");
    b.wait_text(20, "welcome to the shop").unwrap();
    b.screenshot(&shots().join("42-after-request.png")).unwrap();
}

#[test]
fn a_persona_made_and_used_in_the_browser_and_a_link_shown() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = Person::new(dir.path(), "alex");
    let blair = Person::new(dir.path(), "blair");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    blair.ok(&["init", "--name", "Blair"]);
    let alex_up = Up::start(&alex);
    let a = signed_in(&alex_up);

    // A persona from Settings.
    a.click("#settings").unwrap();
    a.type_into("#persona-name", "School").unwrap();
    a.type_into("#persona-shown", "Alex K.").unwrap();
    a.click("#persona-create").unwrap();
    a.wait_text(15, "School: shown as Alex K.").unwrap();
    close_dialogs(&a);

    // An invitation as the persona; Blair (CLI) accepts it, and another
    // without it (the club).
    a.click("#new-invite").unwrap();
    a.run(
        "const s = document.querySelector('#invite-persona'); s.value = 'School'; return s.hidden",
        &[],
    )
    .unwrap();
    a.click("#make-invite").unwrap();
    let link = a
        .wait(15, "the link", || {
            a.run(
                "return document.querySelector('#invite-out .link').value",
                &[],
            )
            .ok()?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
        })
        .unwrap();
    close_dialogs(&a);
    assert_eq!(blair.json(&["accept", &link])["name"], "Alex K.");
    let club = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    blair.ok(&["accept", &club, "--name", "Blair at the club"]);
    blair.ok(&["rename", "Alex", "Alex (club)"]);
    a.wait(20, "two conversations", || {
        a.run(
            "return document.querySelectorAll('.conversation').length",
            &[],
        )
        .ok()?
        .as_u64()?
        .eq(&2)
        .then_some(())
    })
    .unwrap();

    // Its info says which identity Alex is there; Alex shows Blair, in
    // the school conversation, that the club's Alex is Alex too.
    let school = alex
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["my_name"] == "Alex K.")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.run(
        "const [id] = arguments; document.querySelector(`.conversation[data-id='${id}']`).click()",
        &[json!(school)],
    )
    .unwrap();
    a.find("#text").unwrap();
    a.click("#conv-info").unwrap();
    a.wait_text(15, "as your persona School").unwrap();
    a.click("#link").unwrap();
    a.click("#link-go").unwrap();
    a.wait_text(15, "Shown.").unwrap();
    a.screenshot(&shots().join("43-persona-link.png")).unwrap();
    common::eventually(20, "Blair sees the link", || {
        blair.ok(&["sync"]);
        blair
            .ok(&["info", "Alex K."])
            .contains("they showed you they are also Alex (club)")
    });
}

#[test]
fn a_directory_joined_searched_and_an_attestation_seen_in_the_browser() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    common::relay_directory(&relay, &["create", "school", "--members-only"]);
    let admit = || {
        common::relay_directory(
            &relay,
            &[
                "admit",
                "school",
                "--statement",
                "current student",
                "--until",
                "2099-06-30",
                "--url",
                relay.url(),
            ],
        )
    };
    let (alex_link, emery_link) = (admit(), admit());
    let alex = Person::new(dir.path(), "alex");
    let emery = Person::new(dir.path(), "emery");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    emery.ok(&["init", "--name", "Emery", "--relay", relay.url()]);
    // Emery uses the CLI: she joins and lists herself.
    emery.ok(&["directory", "join", &emery_link]);
    emery.ok(&[
        "directory",
        "publish",
        "school",
        "--display-name",
        "Emery <b>Stone</b>",
        "--text",
        "Year 12, chess club",
    ]);
    let alex_up = Up::start(&alex);
    let a = signed_in(&alex_up);

    // Alex joins with his enrolment link and lists himself.
    a.click("#show-directories").unwrap();
    a.type_into("#directory-link", &alex_link).unwrap();
    a.click("#directory-join").unwrap();
    a.wait_text(15, "It attests: current student").unwrap();
    a.run(
        "document.querySelector('#directories .entry-text').value = 'Year 11'",
        &[],
    )
    .unwrap();
    a.click("#directories .entry-publish").unwrap();
    a.wait_text(15, "Listed as Alex").unwrap();

    // He searches, finds Emery (her markup shown as text), and asks.
    a.type_into("#directory-query", "chess").unwrap();
    a.click("#directory-search").unwrap();
    a.wait_text(15, "Emery <b>Stone</b>").unwrap();
    assert_eq!(
        a.run(
            "return document.querySelectorAll('#directory-results b').length",
            &[]
        )
        .unwrap(),
        0
    );
    a.screenshot(&shots().join("44-directory.png")).unwrap();
    a.type_into(
        "#directory-results .entry-note",
        "from the school directory",
    )
    .unwrap();
    a.click("#directory-results .entry-ask").unwrap();
    a.wait_text(15, "Request sent to Emery").unwrap();
    close_dialogs(&a);

    // Emery accepts on the CLI; Alex's conversation connects live, and its
    // Info shows her attestation.
    emery.ok(&["sync"]);
    let requests = emery.json(&["requests"]);
    assert_eq!(requests[0]["note"], "from the school directory");
    emery.ok(&["requests", "accept", &requests[0]["id"].to_string()]);
    // Her next sync shows her attestation in the new conversation.
    emery.ok(&["sync"]);
    a.wait(30, "Alex connected to Emery", || {
        a.run(
            "return [...document.querySelectorAll('.conversation .name')].map(n => n.textContent).includes('Emery <b>Stone</b>')",
            &[],
        )
        .ok()?
        .as_bool()?
        .then_some(())
    })
    .unwrap();
    open_conversation(&a, "Emery <b>Stone</b>");
    a.wait(30, "her attestation", || {
        // A fresh Info dialog each time, once it has drawn.
        close_dialogs(&a);
        a.click("#conv-info").ok()?;
        a.wait_text(5, "Your name here").ok()?;
        let seen = a
            .run(
                "return [...document.querySelectorAll('.attestation')].map(p => p.textContent).join('|')",
                &[],
            )
            .ok()?;
        let seen = seen.as_str()?.to_string();
        if seen.contains("They showed: school: current student") {
            Some(())
        } else {
            std::thread::sleep(std::time::Duration::from_millis(300));
            None
        }
    })
    .unwrap();
    a.screenshot(&shots().join("45-attestation.png")).unwrap();
}
