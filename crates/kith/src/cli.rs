//! The command line's grammar (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "kith",
    version,
    about = "Relationship-first, end-to-end encrypted messaging"
)]
pub(crate) struct Cli {
    /// Profile directory (default: $KITH_HOME, else the user's data dir).
    #[arg(long, global = true, env = "KITH_HOME")]
    pub(crate) home: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Send a text message (`-`: read it from standard input).
    Send {
        conv: String,
        text: String,
        /// Reply to this message (its id as `read --json` shows it, or a
        /// prefix of it).
        #[arg(long)]
        reply_to: Option<String>,
    },
    /// Edit one of your messages (everyone sees the new text, marked
    /// edited).
    Edit {
        conv: String,
        /// The message's id as `read --json` shows it, or a prefix of it.
        message: String,
        text: String,
    },
    /// Delete one of your messages for everyone: every member's kith
    /// empties it.
    DeleteMessage {
        conv: String,
        /// The message's id as `read --json` shows it, or a prefix of it.
        message: String,
    },
    /// React to a message with an emoji (one per message: a new one
    /// replaces yours), or take your reaction back with --remove.
    React {
        conv: String,
        /// The message's id as `read --json` shows it, or a prefix of it.
        message: String,
        #[arg(required_unless_present = "remove")]
        emoji: Option<String>,
        #[arg(long, conflicts_with = "emoji")]
        remove: bool,
    },
    /// Send a mail: a subject and a markdown body, read from --file or
    /// standard input. Without --subject: the conversation's mail, listed
    /// by subject.
    Mail {
        conv: String,
        #[arg(long)]
        subject: Option<String>,
        /// Read the body from this file instead of standard input.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
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
pub(crate) enum IntroAction {
    Accept,
    Decline,
}

#[derive(Subcommand)]
pub(crate) enum GroupCommand {
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
pub(crate) enum AdminAction {
    Add,
    Remove,
}
