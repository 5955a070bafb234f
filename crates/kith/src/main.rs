//! `kith`: the command line of the kith messenger. Every command takes
//! `--home DIR` and `--json`; errors are one line on stderr and exit code 1.
//! Protocol logic lives in kith-core; this file only parses and presents.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kith_core::{
    ConversationInfo, ConversationView, Engine, GroupChange, IntroductionView, Invite, MessageView,
    SyncReport,
};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "kith",
    version,
    about = "Relationship-first, end-to-end encrypted messaging"
)]
struct Cli {
    /// Profile directory (default: $KITH_HOME, else the user's data dir).
    #[arg(long, global = true, env = "KITH_HOME")]
    home: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a profile.
    Init {
        #[arg(long)]
        name: String,
        /// A relay you run or use: hosts your invitations and channels.
        #[arg(long)]
        relay: Option<String>,
    },
    /// Create a one-time invitation link (and show it as a QR code).
    Invite {
        #[arg(long)]
        relay: Option<String>,
        /// The name to show to whoever accepts (default: the profile's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Accept an invitation link.
    Accept {
        link: String,
        /// The name to show to this contact (default: the profile's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Conversations, newest activity first.
    List,
    /// Send a text message.
    Send { conv: String, text: String },
    /// Send queued messages and fetch new ones.
    Sync,
    /// Show a conversation's messages.
    Read { conv: String },
    /// Stream new messages as they arrive.
    Watch,
    /// Rename a conversation (only you see it).
    Rename { conv: String, name: String },
    /// Delete a conversation.
    Delete { conv: String },
    /// Groups: one channel, any number of members.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Offer two of your contacts to each other; they are connected only
    /// if both accept.
    Introduce {
        conv_a: String,
        conv_b: String,
        /// Why they should meet; both see it.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Introductions offered to you and made by you, or answer one.
    Introductions {
        action: Option<IntroAction>,
        /// The introduction's id (a unique prefix is enough).
        id: Option<String>,
        /// Accepting: the name to show the new contact (default: the profile's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Decline, without being asked, every introduction arriving through a
    /// conversation (`--off` to see them again).
    IgnoreIntroductions {
        conv: String,
        #[arg(long)]
        off: bool,
    },
    /// Block a contact: your relay refuses their messages, you no longer read theirs.
    Block { conv: String },
    /// Unblock a contact: the conversation continues on a fresh channel.
    Unblock { conv: String },
    /// Move every channel you host to another relay; contacts follow by themselves.
    Move {
        #[arg(long)]
        to: String,
    },
    /// A conversation's identity keys, safety number and channels.
    Info { conv: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum IntroAction {
    Accept,
    Decline,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group, with you as its admin.
    Create {
        name: String,
        /// The relay that hosts the group's channel (default: yours).
        #[arg(long)]
        relay: Option<String>,
    },
    /// A one-time link to join the group (your next sync adds whoever opens it).
    Invite { group: String },
    /// Add a contact (one of your 1:1 conversations) to the group.
    Add { group: String, conv: String },
    /// Remove a member: their access to the channel is revoked at once.
    Remove { group: String, member: String },
    /// Leave the group.
    Leave { group: String },
    /// List the members.
    Members { group: String },
    /// List the admins, or make a member admin (`add`) or not (`remove`).
    Admins {
        group: String,
        action: Option<AdminAction>,
        member: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AdminAction {
    Add,
    Remove,
}

fn home(cli: &Cli) -> Result<PathBuf> {
    if let Some(h) = &cli.home {
        return Ok(h.clone());
    }
    directories::ProjectDirs::from("im", "kith", "kith")
        .map(|d| d.data_dir().to_path_buf())
        .context("no home directory: pass --home DIR or set KITH_HOME")
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&anyhow::anyhow!(e)),
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        fail(&e);
    }
}

fn fail(e: &anyhow::Error) -> ! {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("kith: {e:#}");
    }
    std::process::exit(1)
}

/// Writes a line to stdout; a closed pipe ends the program quietly.
fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

fn json<T: Serialize>(value: &T) -> Result<()> {
    out(&serde_json::to_string(value)?);
    Ok(())
}

fn warn(lines: &[String]) {
    #[allow(clippy::print_stderr)]
    for l in lines {
        eprintln!("kith: warning: {l}");
    }
}

fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn show_message(m: &MessageView) {
    out(&format!("[{}] {}: {}", time(m.sent_at), m.from, m.text));
}

fn show_invite(invite: &Invite) {
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

fn show_change(change: &GroupChange, what: &str, as_json: bool) -> Result<()> {
    warn(&change.warnings);
    if as_json {
        return json(change);
    }
    if change.done {
        out(&format!("{what}: done"));
    } else {
        out(&format!(
            "{what}: queued; the relay has not confirmed it yet (the next `kith sync` goes on)"
        ));
    }
    Ok(())
}

fn show_conversation(c: &ConversationView) {
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
        _ if c.blocked => "  (blocked)",
        _ => "",
    };
    out(&format!(
        "{}  {}{kind}{state}{unread}{warn}",
        c.id.get(..8).unwrap_or(&c.id),
        c.name
    ));
}

fn show_report(report: &SyncReport, as_json: bool) -> Result<()> {
    if as_json {
        for c in &report.connected {
            json(&serde_json::json!({"event": "connected", "conversation": c.id, "name": c.name}))?;
        }
        for m in &report.messages {
            json(m)?;
        }
        for e in &report.integrity_events {
            json(
                &serde_json::json!({"event": "integrity", "conversation": e.conversation, "detail": e.detail}),
            )?;
        }
        for i in &report.introductions {
            json(&serde_json::json!({"event": "introduction", "introduction": i}))?;
        }
        for n in &report.notices {
            json(
                &serde_json::json!({"event": "notice", "conversation": n.conversation, "text": n.text}),
            )?;
        }
    } else {
        for n in &report.notices {
            out(&n.text);
        }
        for i in &report.introductions {
            show_introduction(i);
        }
        for c in &report.connected {
            out(&format!(
                "connected: {} ({})",
                c.name,
                c.id.get(..8).unwrap_or(&c.id)
            ));
        }
        for m in &report.messages {
            show_message(m);
        }
        for e in &report.integrity_events {
            out(&format!(
                "warning: a message was refused (integrity): {}",
                e.detail
            ));
        }
    }
    Ok(())
}

fn show_introduction(i: &IntroductionView) {
    let id = i.id.get(..8).unwrap_or(&i.id);
    let note = if i.note.is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", i.note)
    };
    if i.role == "made" {
        out(&format!(
            "{id}  you introduced {}{note}  [{}]",
            i.peer, i.state
        ));
    } else {
        out(&format!(
            "{id}  {} introduces {}{note}  [{}]",
            i.introducer, i.peer, i.state
        ));
    }
}

fn show_info(info: &ConversationInfo) {
    show_conversation(&info.conversation);
    if let Some(by) = &info.conversation.introduced_by {
        out(&format!("introduced by {by}"));
    }
    if let Some(n) = &info.safety_number {
        out(&format!("safety number: {n}"));
    }
    out(&format!("your identity key: {}", info.my_identity));
    for k in &info.member_identities {
        out(&format!("their identity key: {k}"));
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
            c.write_id.get(..8).unwrap_or(&c.write_id),
            c.relay_url,
            c.role
        ));
    }
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

async fn run(cli: Cli) -> Result<()> {
    let home = home(&cli)?;
    let as_json = cli.json;
    match cli.command {
        Command::Init { name, relay } => {
            Engine::init(&home, &name, relay.as_deref()).await?;
            if as_json {
                json(&serde_json::json!({"home": home, "name": name, "relay": relay}))?;
            } else {
                out(&format!("profile created in {}", home.display()));
            }
        }
        Command::Invite { relay, name } => {
            let invite = Engine::open(&home)?
                .invite(relay.as_deref(), name.as_deref())
                .await?;
            if as_json {
                json(&invite)?;
            } else {
                show_invite(&invite);
            }
        }
        Command::Accept { link, name } => {
            let accepted = Engine::open(&home)?.accept(&link, name.as_deref()).await?;
            warn(&accepted.warnings);
            if as_json {
                json(&accepted.conversation)?;
            } else if accepted.conversation.state == "joining" {
                out(&format!(
                    "asked to join {}; you are in once an admin syncs (then `kith sync`)",
                    accepted.conversation.name
                ));
                show_conversation(&accepted.conversation);
            } else {
                out(&format!("connected with {}", accepted.conversation.name));
                show_conversation(&accepted.conversation);
            }
        }
        Command::List => {
            let list = Engine::open(&home)?.list()?;
            if as_json {
                json(&list)?;
            } else {
                list.iter().for_each(show_conversation);
            }
        }
        Command::Send { conv, text } => {
            let message = Engine::open(&home)?.send(&conv, &text).await?;
            if as_json {
                json(&message)?;
            }
        }
        Command::Sync => {
            let report = Engine::open(&home)?.sync().await?;
            warn(&report.errors);
            if as_json {
                json(&report)?;
            } else {
                show_report(&report, false)?;
            }
        }
        Command::Read { conv } => {
            let mut engine = Engine::open(&home)?;
            let messages = engine.read(&conv)?;
            if as_json {
                json(&messages)?;
            } else {
                messages.iter().for_each(show_message);
                for e in engine.integrity_events(&conv)? {
                    out(&format!(
                        "warning: a message was refused (integrity): {}",
                        e.detail
                    ));
                }
            }
        }
        Command::Watch => {
            let mut engine = Engine::open(&home)?;
            let mut result = Ok(());
            engine
                .watch(|report| {
                    warn(&report.errors);
                    result = show_report(report, as_json);
                    result.is_ok()
                })
                .await?;
            result?;
        }
        Command::Rename { conv, name } => {
            let view = Engine::open(&home)?.rename(&conv, &name)?;
            if as_json {
                json(&view)?;
            } else {
                show_conversation(&view);
            }
        }
        Command::Delete { conv } => {
            let warnings = Engine::open(&home)?.delete(&conv).await?;
            warn(&warnings);
            if as_json {
                json(&serde_json::json!({"deleted": conv}))?;
            }
        }
        Command::Group { command } => group(&home, command, as_json).await?,
        Command::Introduce {
            conv_a,
            conv_b,
            note,
        } => {
            let view = Engine::open(&home)?
                .introduce(&conv_a, &conv_b, &note)
                .await?;
            if as_json {
                json(&view)?;
            } else {
                show_introduction(&view);
            }
        }
        Command::Introductions { action, id, name } => {
            let mut engine = Engine::open(&home)?;
            match (action, id) {
                (None, _) => {
                    let list = engine.introductions()?;
                    if as_json {
                        json(&list)?;
                    } else {
                        list.iter().for_each(show_introduction);
                    }
                }
                (Some(_), None) => {
                    anyhow::bail!("name the introduction: kith introductions accept|decline ID")
                }
                (Some(action), Some(id)) => {
                    let accept = matches!(action, IntroAction::Accept);
                    let view = engine
                        .answer_introduction(&id, accept, name.as_deref())
                        .await?;
                    if as_json {
                        json(&view)?;
                    } else {
                        show_introduction(&view);
                    }
                }
            }
        }
        Command::IgnoreIntroductions { conv, off } => {
            Engine::open(&home)?.ignore_introductions(&conv, !off)?;
            if as_json {
                json(&serde_json::json!({"conversation": conv, "ignore_introductions": !off}))?;
            }
        }
        Command::Block { conv } => {
            let warnings = Engine::open(&home)?.block(&conv).await?;
            warn(&warnings);
            if as_json {
                json(&serde_json::json!({"blocked": conv}))?;
            } else {
                out(&format!("blocked {conv}"));
            }
        }
        Command::Unblock { conv } => {
            let warnings = Engine::open(&home)?.unblock(&conv).await?;
            warn(&warnings);
            if as_json {
                json(&serde_json::json!({"unblocked": conv}))?;
            } else {
                out(&format!("unblocked {conv}"));
            }
        }
        Command::Move { to } => {
            let report = Engine::open(&home)?.move_to(&to).await?;
            warn(&report.warnings);
            if as_json {
                json(&report)?;
            } else {
                out(&format!(
                    "{} conversation(s) now on {to}; contacts follow at their next sync",
                    report.moved.len()
                ));
            }
            if !report.errors.is_empty() {
                anyhow::bail!("not moved: {}", report.errors.join("; "));
            }
        }
        Command::Info { conv } => {
            let info = Engine::open(&home)?.info(&conv)?;
            if as_json {
                json(&info)?;
            } else {
                show_info(&info);
            }
        }
    }
    Ok(())
}

async fn group(home: &std::path::Path, command: GroupCommand, as_json: bool) -> Result<()> {
    let mut engine = Engine::open(home)?;
    match command {
        GroupCommand::Create { name, relay } => {
            let view = engine.group_create(&name, relay.as_deref()).await?;
            if as_json {
                json(&view)?;
            } else {
                show_conversation(&view);
            }
        }
        GroupCommand::Invite { group } => {
            let invite = engine.group_invite(&group).await?;
            if as_json {
                json(&invite)?;
            } else {
                show_invite(&invite);
            }
        }
        GroupCommand::Add { group, conv } => {
            let change = engine.group_add(&group, &conv).await?;
            show_change(
                &change,
                &format!("add {conv} to {}", change.group.name),
                as_json,
            )?;
        }
        GroupCommand::Remove { group, member } => {
            let change = engine.group_remove(&group, &member).await?;
            show_change(
                &change,
                &format!("remove {member} from {}", change.group.name),
                as_json,
            )?;
        }
        GroupCommand::Leave { group } => {
            let view = engine.group_leave(&group).await?;
            if as_json {
                json(&view)?;
            } else {
                out(&format!("you left {}", view.name));
            }
        }
        GroupCommand::Members { group } => {
            let members = engine.group_members(&group)?;
            if as_json {
                json(&members)?;
            } else {
                for m in members {
                    let admin = if m.admin { "  (admin)" } else { "" };
                    out(&format!("{}  {}{admin}", m.id, m.name));
                }
            }
        }
        GroupCommand::Admins {
            group,
            action,
            member,
        } => match (action, member) {
            (None, _) => {
                let admins: Vec<_> = engine
                    .group_members(&group)?
                    .into_iter()
                    .filter(|m| m.admin)
                    .collect();
                if as_json {
                    json(&admins)?;
                } else {
                    for m in admins {
                        out(&format!("{}  {}", m.id, m.name));
                    }
                }
            }
            (Some(_), None) => {
                anyhow::bail!("name the member: kith group admins GROUP add|remove MEMBER")
            }
            (Some(action), Some(member)) => {
                let admin = matches!(action, AdminAction::Add);
                let change = engine.group_set_admin(&group, &member, admin).await?;
                let what = if admin {
                    "make admin"
                } else {
                    "no longer admin"
                };
                show_change(&change, &format!("{what}: {member}"), as_json)?;
            }
        },
    }
    Ok(())
}
