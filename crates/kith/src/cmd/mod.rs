//! One module per command group; each turns a parsed command into engine
//! calls and hands the results to `render`.

pub(crate) mod content;
mod conversations;
mod groups;
mod relationships;

use std::path::Path;

use anyhow::Result;
use kith_core::{Config, CoreError, Engine};

use crate::cli::Command;

pub(crate) async fn run(home: &Path, config: Config, command: Command, json: bool) -> Result<()> {
    if let Command::Init { name, relay } = &command {
        return conversations::init(home, config, name, relay.as_deref(), json).await;
    }
    let mut engine = Engine::open(home, config).await?;
    dispatch(&mut engine, command, json).await
}

/// Runs a command on an open profile: here, or in the daemon for another
/// `kith` process.
pub(crate) async fn dispatch(engine: &mut Engine, command: Command, json: bool) -> Result<()> {
    match command {
        Command::Init { .. } => {
            Err(CoreError::ProfileExists(engine.home().display().to_string()).into())
        }
        Command::Up { .. } => anyhow::bail!("kith is already up for this profile"),
        Command::Invite {
            relay,
            name,
            persona,
        } => {
            let invite = engine
                .invite_as(relay.as_deref(), name.as_deref(), persona.as_deref())
                .await?;
            conversations::invite(&invite, json)
        }
        Command::Accept {
            link,
            name,
            note,
            persona,
        } => {
            let how = conversations::AcceptAs {
                name: name.as_deref(),
                note: &note,
                persona: persona.as_deref(),
            };
            conversations::accept(engine, &link, how, json).await
        }
        Command::Persona { command } => relationships::persona(engine, command, json),
        Command::Directory { command } => relationships::directory(engine, command, json).await,
        Command::Link { conv, with } => relationships::link(engine, &conv, &with, json).await,
        Command::Address { command } => relationships::address(engine, command, json).await,
        Command::Requests { action, id, name } => {
            relationships::requests(engine, action, id.as_deref(), name.as_deref(), json).await
        }
        Command::List => conversations::list(engine, json),
        Command::Send {
            conv,
            text,
            reply_to,
        } => conversations::send(engine, &conv, &text, reply_to.as_deref(), json).await,
        Command::Edit {
            conv,
            message,
            text,
        } => conversations::edit(engine, &conv, &message, &text, json).await,
        Command::DeleteMessage { conv, message } => {
            conversations::delete_message(engine, &conv, &message, json).await
        }
        Command::React {
            conv,
            message,
            emoji,
            remove: _,
        } => conversations::react(engine, &conv, &message, emoji.as_deref(), json).await,
        Command::Mail {
            conv,
            subject,
            file,
        } => match subject {
            Some(subject) => {
                conversations::mail(engine, &conv, &subject, file.as_deref(), json).await
            }
            None => conversations::mail_list(engine, &conv, json),
        },
        Command::Sync => conversations::sync(engine, json).await,
        Command::Read { conv } => conversations::read(engine, &conv, json).await,
        Command::Watch => conversations::watch(engine, json).await,
        Command::Rename { conv, name } => conversations::rename(engine, &conv, &name, json),
        Command::Delete { conv } => conversations::delete(engine, &conv, json).await,
        Command::Info { conv } => conversations::info(engine, &conv, json),
        Command::Group { command } => groups::run(engine, command, json).await,
        Command::Introduce {
            conv_a,
            conv_b,
            note,
        } => relationships::introduce(engine, &conv_a, &conv_b, &note, json).await,
        Command::Introductions { action, id, name } => {
            relationships::introductions(engine, action, id.as_deref(), name.as_deref(), json).await
        }
        Command::IgnoreIntroductions { conv, off } => {
            relationships::ignore_introductions(engine, &conv, !off, json)
        }
        Command::Block { conv } => relationships::block(engine, &conv, json).await,
        Command::Unblock { conv } => relationships::unblock(engine, &conv, json).await,
        Command::Move { to } => relationships::move_to(engine, &to, json).await,
        Command::Timer { conv, after } => content::timer(engine, &conv, &after, json).await,
        Command::Receipts { conv, setting } => content::receipts(engine, &conv, setting, json),
        Command::AutoDownload { conv, max } => content::auto_download(engine, &conv, &max, json),
        Command::Pay { command } => content::pay(engine, command, json).await,
        Command::Call { command } => content::call(engine, command, json).await,
        Command::SendFile {
            conv,
            path,
            caption,
        } => content::send_file(engine, &conv, &path, caption.as_deref(), json).await,
        Command::Download { conv, message, to } => {
            content::download(engine, &conv, &message, to.as_deref(), json).await
        }
        Command::SendApp {
            conv,
            content_type,
            data,
            data_file,
            fallback,
        } => {
            let data = match (data, data_file) {
                (Some(d), _) => d.into_bytes(),
                (None, Some(f)) => content::read_file(&f, "application data")?,
                (None, None) => Vec::new(),
            };
            content::send_app(engine, &conv, &content_type, &data, &fallback, json).await
        }
    }
}
