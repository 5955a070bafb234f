//! Profiles, invitations and the messages of a conversation.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use kith_core::{Config, CoreError, Engine};

use crate::render::{self, json, out, warn};

pub(crate) async fn init(
    home: &Path,
    config: Config,
    name: &str,
    relay: Option<&str>,
    as_json: bool,
) -> Result<()> {
    Engine::init(home, name, relay, config).await?;
    if as_json {
        json(&serde_json::json!({"home": home, "name": name, "relay": relay}))
    } else {
        out(&format!("profile created in {}", home.display()));
        Ok(())
    }
}

pub(crate) fn invite(invite: &kith_core::Invite, as_json: bool) -> Result<()> {
    if as_json {
        return json(invite);
    }
    render::invite(invite);
    Ok(())
}

/// How `kith accept` starts what a link offers.
pub(crate) struct AcceptAs<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) note: &'a str,
    pub(crate) persona: Option<&'a str>,
}

pub(crate) async fn accept(
    engine: &mut Engine,
    link: &str,
    how: AcceptAs<'_>,
    as_json: bool,
) -> Result<()> {
    let AcceptAs {
        name,
        note,
        persona,
    } = how;
    let address = kith_core::AddressLink::is_address(link);
    if !address && !note.is_empty() {
        anyhow::bail!("--note goes with a contact address link (…/a/…), not an invitation");
    }
    let accepted = if address {
        engine.request_contact(link, name, note, persona).await?
    } else {
        engine.accept_as(link, name, persona).await?
    };
    warn(&accepted.warnings);
    let conversation = &accepted.conversation;
    if as_json {
        return json(conversation);
    }
    if address {
        out(
            "contact request sent; you are connected once they accept it (`kith sync`, or `kith watch`)",
        );
    } else if conversation.state == "joining" {
        out(&format!(
            "asked to join {}; you are in once an admin syncs (then `kith sync`)",
            render::text::line(&conversation.name)
        ));
    } else {
        out(&format!(
            "connected with {}",
            render::text::line(&conversation.name)
        ));
    }
    render::conversation(conversation);
    Ok(())
}

pub(crate) fn list(engine: &Engine, as_json: bool) -> Result<()> {
    let list = engine.list()?;
    if as_json {
        return json(&list);
    }
    list.iter().for_each(render::conversation);
    Ok(())
}

/// The text of `kith send`: `-` reads standard input, up to one byte more
/// than a message can carry (so that a longer one is refused, not cut).
fn message_text(text: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let max = usize::try_from(kith_wire::conv::MAX_TEXT).unwrap_or(usize::MAX);
    read_text(render::stdin(), max, "message", "standard input")
}

/// At most `max` bytes of UTF-8 from `source`; more is an error that says
/// how long it was (the rest is only counted, never held).
fn read_text(mut source: impl Read, max: usize, what: &'static str, from: &str) -> Result<String> {
    let mut bytes = Vec::new();
    (&mut source)
        .take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the {what} from {from}"))?;
    let rest = std::io::copy(&mut source, &mut std::io::sink())
        .with_context(|| format!("reading the {what} from {from}"))?;
    if rest > 0 {
        let len = bytes
            .len()
            .saturating_add(usize::try_from(rest).unwrap_or(usize::MAX));
        return Err(CoreError::TooLong { what, len, max }.into());
    }
    String::from_utf8(bytes).with_context(|| format!("the {what} in {from} is not UTF-8 text"))
}

pub(crate) async fn edit(
    engine: &mut Engine,
    conv: &str,
    message: &str,
    text: &str,
    as_json: bool,
) -> Result<()> {
    let text = message_text(text)?;
    let edited = engine.edit(conv, message, &text).await?;
    if as_json {
        json(&edited)?;
    }
    Ok(())
}

pub(crate) async fn delete_message(
    engine: &mut Engine,
    conv: &str,
    message: &str,
    as_json: bool,
) -> Result<()> {
    engine.delete_for_everyone(conv, message).await?;
    if as_json {
        json(&serde_json::json!({ "deleted": message }))?;
    } else {
        out("deleted for everyone");
    }
    Ok(())
}

pub(crate) async fn react(
    engine: &mut Engine,
    conv: &str,
    message: &str,
    emoji: Option<&str>,
    as_json: bool,
) -> Result<()> {
    engine.react(conv, message, emoji).await?;
    if as_json {
        json(&serde_json::json!({ "reacted": emoji }))?;
    }
    Ok(())
}

pub(crate) async fn mail(
    engine: &mut Engine,
    conv: &str,
    subject: &str,
    file: Option<&Path>,
    as_json: bool,
) -> Result<()> {
    // The body travels twice (markdown, and plain text for those who show
    // no markdown) in one message.
    let max = kith_content::MAX_CONTENT / 2;
    let body = match file {
        Some(path) => {
            let opened = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            read_text(opened, max, "mail body", &path.display().to_string())?
        }
        None => read_text(render::stdin(), max, "mail body", "standard input")?,
    };
    let message = engine.send_mail(conv, subject, &body).await?;
    if as_json {
        json(&message)?;
    }
    Ok(())
}

pub(crate) fn mail_list(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let mails: Vec<_> = engine
        .read(conv)?
        .into_iter()
        .filter(|m| m.subject.is_some())
        .collect();
    if as_json {
        return json(&mails);
    }
    mails.iter().for_each(render::mail_line);
    Ok(())
}

pub(crate) async fn send(
    engine: &mut Engine,
    conv: &str,
    text: &str,
    reply_to: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let text = message_text(text)?;
    let message = match reply_to {
        Some(to) => engine.send_reply(conv, to, &text).await?,
        None => engine.send(conv, &text).await?,
    };
    if as_json {
        json(&message)?;
    }
    Ok(())
}

pub(crate) async fn sync(engine: &mut Engine, as_json: bool) -> Result<()> {
    let report = engine.sync().await?;
    warn(&report.errors);
    if as_json {
        return json(&report);
    }
    render::report(&report, false)
}

pub(crate) async fn read(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let messages = engine.read(conv)?;
    // Read receipts go now when the relay answers; otherwise they are
    // queued and go with the next sync.
    let _ = engine.flush_receipts().await;
    if as_json {
        return json(&messages);
    }
    messages.iter().for_each(render::message);
    for e in engine.integrity_events(conv)? {
        render::integrity(&e.detail);
    }
    Ok(())
}

pub(crate) async fn watch(engine: &mut Engine, as_json: bool) -> Result<()> {
    let mut result = Ok(());
    engine
        .watch(
            |live| render::live(live, as_json),
            |report| {
                warn(&report.errors);
                result = render::report(report, as_json);
                result.is_ok()
            },
        )
        .await?;
    result
}

pub(crate) fn rename(engine: &mut Engine, conv: &str, name: &str, as_json: bool) -> Result<()> {
    let view = engine.rename(conv, name)?;
    if as_json {
        return json(&view);
    }
    render::conversation(&view);
    Ok(())
}

pub(crate) async fn delete(engine: &mut Engine, conv: &str, as_json: bool) -> Result<()> {
    let warnings = engine.delete(conv).await?;
    warn(&warnings);
    if as_json {
        json(&serde_json::json!({"deleted": conv}))?;
    }
    Ok(())
}

pub(crate) fn info(engine: &Engine, conv: &str, as_json: bool) -> Result<()> {
    let info = engine.info(conv)?;
    if as_json {
        return json(&info);
    }
    render::info(&info);
    Ok(())
}
