//! Everything `kith` writes. Text for people (every peer-controlled string
//! through [`text`]), or with `--json` one JSON value per line
//! (docs/cli-json.md). Errors are one line on standard error.

pub(crate) mod text;

use std::io::Write as _;

use kith_core::{
    ConversationInfo, ConversationView, GroupChange, IntroductionView, Invite, MemberView,
    MessageView, SyncReport,
};
use serde::Serialize;

use text::{block, line};

/// What a command run by the daemon for a `kith` process says, sent back
/// to that process as it is said (`remote.rs`).
#[derive(Debug)]
pub(crate) enum Said {
    Out(String),
    Err(String),
    /// A transfer's progress, for the other process to draw as a bar.
    Progress {
        what: String,
        done: u64,
        total: u64,
    },
}

/// A command running in the daemon on behalf of a `kith` process: where its
/// output goes, whether that process has a terminal, and its standard
/// input if the command reads it.
#[derive(Debug)]
pub(crate) struct Remote {
    /// Unbounded because rendering cannot wait; what it holds is bounded
    /// by the command's own output.
    pub(crate) said: tokio::sync::mpsc::UnboundedSender<Said>,
    pub(crate) terminal: bool,
    pub(crate) stdin: Vec<u8>,
}

tokio::task_local! {
    pub(crate) static REMOTE: Remote;
}

/// Sends `said` to the process the command runs for; `false` if it runs
/// for this one.
fn remote(said: impl FnOnce() -> Said) -> bool {
    REMOTE
        .try_with(|r| {
            // A process that went away (Ctrl-C) stops listening; the
            // command finishes all the same.
            let _ = r.said.send(said());
        })
        .is_ok()
}

/// Whether the output is read on a terminal (here, or by the process the
/// daemon runs the command for).
pub(crate) fn terminal() -> bool {
    use std::io::IsTerminal as _;
    REMOTE
        .try_with(|r| r.terminal)
        .unwrap_or_else(|_| std::io::stderr().is_terminal())
}

/// Standard input: this process's, or what the other process sent.
pub(crate) fn stdin() -> Box<dyn std::io::Read> {
    match REMOTE.try_with(|r| r.stdin.clone()) {
        Ok(bytes) => Box::new(std::io::Cursor::new(bytes)),
        Err(_) => Box::new(std::io::stdin().lock()),
    }
}

/// Shows a transfer's progress where the command runs remotely; `false`
/// if it runs here (the caller draws it).
pub(crate) fn progress(what: &str, done: u64, total: u64) -> bool {
    remote(|| Said::Progress {
        what: what.to_string(),
        done,
        total,
    })
}

/// Writes a line to stderr (or the remote process's).
pub(crate) fn err(s: &str) {
    if remote(|| Said::Err(s.to_string())) {
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

/// Writes a line to stdout; a closed pipe ends the program quietly.
pub(crate) fn out(s: &str) {
    if remote(|| Said::Out(s.to_string())) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{s}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    out(&serde_json::to_string(value)?);
    Ok(())
}

/// Warnings go to stderr, one line each.
pub(crate) fn warn(lines: &[String]) {
    for l in lines {
        err(&format!("kith: warning: {}", line(l)));
    }
}

/// An error: one line of text, or one JSON object with a stable code.
pub(crate) fn error(code: &str, message: &str, as_json: bool) {
    let message = line(message);
    if as_json {
        err(&serde_json::json!({"error": {"code": code, "message": message}}).to_string());
    } else {
        err(&format!("kith: {message}"));
    }
}

/// `2026-12-01 08:47` (UTC) from milliseconds since the epoch.
pub(crate) fn time(ms: u64) -> String {
    kith_relay_client::utc_minute(ms)
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Lines after a message's first are indented this far, so no line of a
/// message can pass for the header of another.
const CONTINUATION: &str = "    ";

pub(crate) fn message(m: &MessageView) {
    let newer = if m.needs_newer {
        "(this message needs a newer kith; its sender says:) "
    } else {
        ""
    };
    match (&m.subject, &m.reply_to) {
        (_, _) if m.deleted => out(&format!(
            "[{}] {}: (deleted)",
            time(m.sent_at),
            line(&m.from)
        )),
        (Some(subject), _) => out(&format!(
            "[{}] {}: mail \u{201c}{}\u{201d}\n{CONTINUATION}{}",
            time(m.sent_at),
            line(&m.from),
            line(subject),
            block(&m.text, CONTINUATION)
        )),
        (None, Some(q)) => out(&format!(
            "[{}] {}: \u{21aa} {}: \u{201c}{}\u{201d}\n{CONTINUATION}{}",
            time(m.sent_at),
            line(&m.from),
            line(&q.from),
            line(&q.text),
            block(&m.text, CONTINUATION)
        )),
        (None, None) => out(&format!(
            "[{}] {}: {newer}{}{}",
            time(m.sent_at),
            line(&m.from),
            block(&m.text, CONTINUATION),
            if m.edited { " (edited)" } else { "" }
        )),
    }
    reactions(m);
    status(m);
}

/// What a message is besides its text, one line under it: a payment's
/// state and URI, an application part's type, this user's receipts, when
/// it disappears.
fn status(m: &MessageView) {
    let mut parts = Vec::new();
    if let Some(p) = &m.payment
        && p.request.is_none()
    {
        parts.push(format!("{} \u{b7} {}", line(&p.state), line(&p.uri)));
    }
    if let Some(f) = &m.file {
        parts.push(match &f.saved {
            Some(path) => format!("({}) {}", line(&f.content_type), line(path)),
            None => format!("({}) `kith download` saves it", line(&f.content_type)),
        });
    }
    if let Some(app) = &m.app {
        parts.push(format!(
            "({}, {} bytes)",
            line(&app.content_type),
            app.data.len() / 2
        ));
    }
    if let Some(r) = m.receipts {
        match (r.of, r.read, r.delivered) {
            (1, 1, _) => parts.push("\u{2713}\u{2713} read".into()),
            (1, 0, 1) => parts.push("\u{2713} delivered".into()),
            (of, read, _) if read > 0 => parts.push(format!("read by {read} of {of}")),
            (of, _, delivered) if delivered > 0 => {
                parts.push(format!("delivered to {delivered} of {of}"));
            }
            _ => {}
        }
    }
    if let Some(at) = m.expires_at {
        parts.push(format!("disappears {}", time(at)));
    }
    if !parts.is_empty() {
        out(&format!("{CONTINUATION}{}", parts.join(" \u{b7} ")));
    }
}

/// One call in the history: when, which way, how it went, its id.
pub(crate) fn call(c: &kith_core::CallView) {
    let way = if c.outgoing { "outgoing" } else { "incoming" };
    let kind = if c.video { "video call" } else { "call" };
    let how = match (c.state.as_str(), c.duration_ms) {
        ("ended", Some(ms)) => kith_core::duration_words(ms / 1000),
        (state, _) => state.to_string(),
    };
    out(&format!(
        "[{}] {way} {kind}: {how}  ({})",
        time(c.started_at),
        short(&c.id)
    ));
}

/// Reactions under a message: `👍 2 (you) · ❤ 1`.
fn reactions(m: &MessageView) {
    if m.reactions.is_empty() {
        return;
    }
    let counted: Vec<String> = m
        .reactions
        .iter()
        .map(|r| {
            let mine = if r.mine { " (you)" } else { "" };
            format!("{} {}{mine}", line(&r.reaction), r.count)
        })
        .collect();
    out(&format!("{CONTINUATION}{}", counted.join(" \u{b7} ")));
}

/// One mail in a list by subject: when, from whom, the subject, its id.
pub(crate) fn mail_line(m: &MessageView) {
    out(&format!(
        "[{}] {}: {}  ({})",
        time(m.sent_at),
        line(&m.from),
        line(m.subject.as_deref().unwrap_or_default()),
        m.id.get(..8).unwrap_or(&m.id)
    ));
}

pub(crate) fn invite(invite: &Invite) {
    if let Some(code) = qr(&invite.link) {
        out(&code);
    }
    out(&invite.link);
    out(&format!(
        "(in a browser or another app: {})",
        invite.web_link
    ));
    out(&format!(
        "valid once, until {} UTC",
        time(invite.expires_at)
    ));
}

/// A contact address; with its QR code when it was just made or asked for.
pub(crate) fn address(a: &kith_core::AddressView, with_qr: bool) {
    let label = a
        .label
        .as_deref()
        .map_or(String::new(), |l| format!(" {}", line(l)));
    out(&format!(
        "{}{label}  shown as {}  {} request(s) waiting",
        short(&a.id),
        line(&a.my_name),
        a.requests
    ));
    if with_qr && let Some(code) = qr(&a.link) {
        out(&code);
    }
    out(&format!("  {}", a.link));
    if with_qr {
        out(&format!(
            "  (in a browser or another app: {})",
            a.link.trim_start_matches("kith:")
        ));
        out("  anyone with it can ask you for a conversation, until `kith address delete`");
    }
}

/// A directory joined: its name, what it attests, the entry published.
pub(crate) fn directory(d: &kith_core::DirectoryView) {
    let mode = if d.members_only {
        "members-only"
    } else {
        "public"
    };
    out(&format!(
        "{}  {mode}  root key {}  as persona {}  {}",
        line(&d.name),
        d.root,
        line(&d.persona),
        line(&d.link)
    ));
    if let (Some(statement), Some(until)) = (&d.statement, d.valid_until) {
        out(&format!(
            "  attests: {}, until {} UTC{}",
            line(statement),
            time(until),
            standing(d.standing.as_deref().unwrap_or("valid"))
        ));
    }
    if let Some(e) = &d.entry {
        out(&format!(
            "  listed as {}{}",
            line(&e.display_name),
            if e.text.is_empty() {
                String::new()
            } else {
                format!(" \u{2014} {}", line(&e.text))
            }
        ));
    }
}

/// ` (expired)`, ` (revoked)`… after an attestation; nothing if valid.
fn standing(word: &str) -> String {
    match word {
        "valid" => String::new(),
        "not_yet_valid" => " (not yet valid)".into(),
        other => format!(" ({other})"),
    }
}

/// A search result, numbered: a person's own name and text, shown as data.
pub(crate) fn entry(n: usize, e: &kith_core::EntryView) {
    out(&format!("{n}. {}", line(&e.display_name)));
    if !e.text.is_empty() {
        out(&format!("{CONTINUATION}{}", line(&e.text)));
    }
    out(&format!("{CONTINUATION}{}", line(&e.address)));
}

pub(crate) fn persona(p: &kith_core::PersonaView) {
    out(&format!(
        "{}  shown as {}  key {}…  {} conversation(s)",
        line(&p.name),
        line(&p.display_name),
        p.identity.get(..16).unwrap_or(&p.identity),
        p.conversations
    ));
}

/// A contact request waiting for an answer.
pub(crate) fn request(r: &kith_core::RequestView) {
    let note = if r.note.is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", line(&r.note))
    };
    let via = r
        .address_label
        .as_deref()
        .map_or_else(|| short(&r.address).to_string(), line);
    out(&format!(
        "request {}  from {}{note}  (via {via}, until {} UTC)",
        r.id,
        line(&r.name),
        time(r.expires_at)
    ));
}

pub(crate) fn change(change: &GroupChange, what: &str, as_json: bool) -> anyhow::Result<()> {
    warn(&change.warnings);
    if as_json {
        return json(change);
    }
    if change.done {
        out(&format!("{}: done", line(what)));
    } else {
        out(&format!(
            "{}: queued; the relay has not confirmed it yet (the next `kith sync` goes on)",
            line(what)
        ));
    }
    Ok(())
}

pub(crate) fn conversation(c: &ConversationView) {
    let unread = if c.unread > 0 {
        format!("  ({} unread)", c.unread)
    } else {
        String::new()
    };
    let warn = if c.integrity_events > 0 {
        format!(
            "  [{} message(s) refused: failed integrity]",
            c.integrity_events
        )
    } else {
        String::new()
    };
    let kind = if c.kind == "group" { "  [group]" } else { "" };
    let state = match c.state.as_str() {
        "joining" => "  (waiting for an admin to add you)",
        "closed" => "  (closed)",
        "leaving" => "  (leaving: waiting for the group to take you out)",
        _ if c.blocked => "  (blocked)",
        _ => "",
    };
    out(&format!(
        "{}  {}{kind}{state}{unread}{warn}",
        short(&c.id),
        line(&c.name)
    ));
}

/// `watch` is live: from now on what is sent arrives as it is pushed.
pub(crate) fn live(live: &kith_core::Live, as_json: bool) {
    if as_json {
        let mut line = serde_json::to_value(live).unwrap_or_default();
        if let Some(fields) = line.as_object_mut() {
            fields.insert("event".into(), "live".into());
        }
        let _ = json(&line);
    } else {
        let mut said = format!(
            "watching {} channel(s) on {} relay(s)",
            live.channels, live.relays
        );
        if live.unreachable > 0 {
            said.push_str(&format!(", {} unreachable for now", live.unreachable));
        }
        err(&format!("kith: {said} (Ctrl-C to stop)"));
    }
}

pub(crate) fn report(report: &SyncReport, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        for c in &report.connected {
            json(&serde_json::json!({"event": "connected", "conversation": c.id, "name": c.name}))?;
        }
        for m in &report.messages {
            let mut line = serde_json::to_value(m)?;
            if let Some(fields) = line.as_object_mut() {
                fields.insert("event".into(), "message".into());
            }
            json(&line)?;
        }
        for e in &report.integrity_events {
            json(
                &serde_json::json!({"event": "integrity", "conversation": e.conversation, "detail": e.detail}),
            )?;
        }
        for i in &report.introductions {
            json(&serde_json::json!({"event": "introduction", "introduction": i}))?;
        }
        for r in &report.requests {
            json(&serde_json::json!({"event": "request", "request": r}))?;
        }
        for n in &report.notices {
            json(
                &serde_json::json!({"event": "notice", "conversation": n.conversation, "text": n.text}),
            )?;
        }
        return Ok(());
    }
    for n in &report.notices {
        out(&line(&n.text));
    }
    for i in &report.introductions {
        introduction(i);
    }
    for r in &report.requests {
        request(r);
    }
    for c in &report.connected {
        out(&format!("connected: {} ({})", line(&c.name), short(&c.id)));
    }
    for m in &report.messages {
        message(m);
    }
    for e in &report.integrity_events {
        integrity(&e.detail);
    }
    Ok(())
}

pub(crate) fn integrity(detail: &str) {
    out(&format!(
        "warning: a message was refused (integrity): {}",
        line(detail)
    ));
}

pub(crate) fn introduction(i: &IntroductionView) {
    let id = short(&i.id);
    let note = if i.note.is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", line(&i.note))
    };
    if i.role == "made" {
        out(&format!(
            "{id}  you introduced {}{note}  [{}]",
            line(&i.peer),
            i.state
        ));
    } else {
        out(&format!(
            "{id}  {} introduces {}{note}  [{}]",
            line(&i.introducer),
            line(&i.peer),
            i.state
        ));
    }
}

pub(crate) fn info(info: &ConversationInfo) {
    conversation(&info.conversation);
    if let Some(by) = &info.conversation.introduced_by {
        out(&format!("introduced by {}", line(by)));
    }
    if let Some(n) = &info.safety_number {
        out(&format!("safety number: {n}"));
    }
    match &info.persona {
        Some(p) => out(&format!(
            "your identity key: {} (persona {})",
            info.my_identity,
            line(p)
        )),
        None => out(&format!("your identity key: {}", info.my_identity)),
    }
    for k in &info.member_identities {
        out(&format!("their identity key: {k}"));
    }
    for l in &info.links {
        let known = match (&l.name, &l.conversation) {
            (Some(name), Some(c)) => format!("{} ({})", line(name), short(c)),
            _ => format!("the identity {}…", short(&l.identity)),
        };
        if l.outgoing {
            out(&format!(
                "you showed them you are also the person of {known}"
            ));
        } else {
            out(&format!("they showed you they are also {known}"));
        }
    }
    for a in &info.attestations {
        let whose = if a.outgoing {
            "you showed"
        } else {
            "they showed"
        };
        let known = if a.known {
            ""
        } else {
            ", a directory you have not joined"
        };
        out(&format!(
            "{whose}: {}: {}, until {} UTC{}  (root key {}{known})",
            line(&a.directory),
            line(&a.statement),
            time(a.valid_until),
            standing(&a.standing),
            a.root
        ));
    }
    for c in &info.channels {
        let host = if c.hosted {
            "hosted by you"
        } else {
            "hosted by them"
        };
        let preferred = if c.preferred { ", preferred" } else { "" };
        out(&format!(
            "channel {}… on {} ({host}, {}{preferred})",
            short(&c.write_id),
            line(&c.relay_url),
            c.role
        ));
    }
}

pub(crate) fn member(m: &MemberView) {
    let admin = if m.admin { "  (admin)" } else { "" };
    let blocked = if m.blocked {
        "  (you blocked them: hidden)"
    } else {
        ""
    };
    out(&format!("{}  {}{admin}{blocked}", m.id, line(&m.name)));
}

fn qr(link: &str) -> Option<String> {
    let code = qrcode::QrCode::new(link.as_bytes()).ok()?;
    let width = code.width();
    let dark = |x: usize, y: usize| x < width && y < width && code[(x, y)] == qrcode::Color::Dark;
    // Two rows per line with half blocks, and a quiet zone of 2.
    let mut s = String::new();
    let (lo, hi) = (-2i64, i64::try_from(width).unwrap_or(0) + 2);
    let mut y = lo;
    while y < hi {
        for x in lo..hi {
            let at = |x: i64, y: i64| {
                usize::try_from(x)
                    .ok()
                    .zip(usize::try_from(y).ok())
                    .is_some_and(|(x, y)| dark(x, y))
            };
            s.push(match (at(x, y), at(x, y + 1)) {
                (true, true) => ' ',
                (true, false) => '▄',
                (false, true) => '▀',
                (false, false) => '█',
            });
        }
        s.push('\n');
        y += 2;
    }
    Some(s)
}
