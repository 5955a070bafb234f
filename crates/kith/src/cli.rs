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
    /// Keep kith running for this profile: messages arrive as they are
    /// sent, the JSON API and the web UI are served on 127.0.0.1, and
    /// every other `kith` command goes through it.
    Up {
        /// The address to serve on (loopback; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8477")]
        listen: std::net::SocketAddr,
        /// A STUN or TURN server for calls across the internet (repeat
        /// for several), like `stun:stun.example.org:3478`. Without one,
        /// calls connect where the two browsers reach each other directly.
        #[arg(long = "ice-server")]
        ice_servers: Vec<String>,
    },
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
        /// Start it from a persona (`kith persona`): it uses that
        /// identity instead of a new one.
        #[arg(long)]
        persona: Option<String>,
    },
    /// Accept an invitation link, or send a contact request to an
    /// address link.
    Accept {
        link: String,
        /// The name to show to this contact (default: the profile's).
        #[arg(long)]
        name: Option<String>,
        /// A contact request's note: why you ask (they see it before
        /// deciding).
        #[arg(long, default_value = "")]
        note: String,
        /// Start it from a persona (`kith persona`): it uses that
        /// identity instead of a new one.
        #[arg(long)]
        persona: Option<String>,
    },
    /// Contact addresses: a link or QR code many people can use to ask
    /// you for a conversation (a shop counter, a profile page).
    Address {
        #[command(subcommand)]
        command: Option<AddressCommand>,
    },
    /// Directories: find people, and be found, in a school's or a club's
    /// directory (members-only or public).
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Personas: an identity you share among the relationships of one
    /// context (School), instead of a new one for each.
    Persona {
        #[command(subcommand)]
        command: Option<PersonaCommand>,
    },
    /// Show the contact of CONV that you are also the person of CONV2
    /// (signed by both identities; they see it in `kith info`).
    Link {
        conv: String,
        #[arg(long = "with")]
        with: String,
    },
    /// Contact requests that arrived on your addresses, or answer one.
    Requests {
        action: Option<IntroAction>,
        /// The request's number, as `kith requests` shows it.
        id: Option<String>,
        /// Accepting: the name to show the new contact (default: the
        /// address's).
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
    /// Disappearing messages: what is sent from now on disappears this
    /// long after it was sent (`30s`, `10m`, `1h`, `1d`, `1w`), for
    /// everyone and from the relay; `off` stops it.
    Timer { conv: String, after: String },
    /// Send delivered and read receipts in a conversation (`on`, the
    /// default) or not (`off`).
    Receipts { conv: String, setting: OnOff },
    /// Payment requests: ask, answer, open one in your payment app. kith
    /// moves no money; it carries the request and the answer.
    Pay {
        #[command(subcommand)]
        command: PayCommand,
    },
    /// Call signalling, for the web UI's calls; `kith call list` is the
    /// history.
    Call {
        #[command(subcommand)]
        command: CallCommand,
    },
    /// Send a file of any size: encrypted, stored on the conversation's
    /// relay in chunks, then named by a message. Run it again after an
    /// interruption to send only what is missing.
    SendFile {
        conv: String,
        path: PathBuf,
        #[arg(long)]
        caption: Option<String>,
    },
    /// Download a message's file (its id as `read --json` shows it, or a
    /// prefix), checked chunk by chunk and whole; resumes where it stopped.
    Download {
        conv: String,
        message: String,
        /// The directory to save it in (default: the current one).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Download the files that arrive in a conversation by themselves, up
    /// to a size (`10MB`, `500kB`, `2GB`; `off`, the default, stops it),
    /// into `downloads/` in the profile, at each sync or while watching.
    AutoDownload { conv: String, max: String },
    /// Send an application's content: bytes of its media type and the
    /// sentence people see instead.
    SendApp {
        conv: String,
        /// Its media type, like `application/vnd.example.chess`.
        #[arg(long = "type")]
        content_type: String,
        /// The content, as text.
        #[arg(
            long,
            conflicts_with = "data_file",
            required_unless_present = "data_file"
        )]
        data: Option<String>,
        /// The content, read from a file.
        #[arg(long)]
        data_file: Option<PathBuf>,
        /// What a person (or a kith without the application) reads.
        #[arg(long)]
        fallback: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
pub(crate) enum PayCommand {
    /// Ask for a payment to TARGET: a payto URI (RFC 8905) or its
    /// `TYPE/…` part, like `iban/DE75512108001245126199`.
    Request {
        conv: String,
        #[arg(long)]
        to: String,
        /// CURRENCY:VALUE, like `EUR:12.50`.
        #[arg(long)]
        amount: Option<String>,
        /// What it is for.
        #[arg(long)]
        note: Option<String>,
    },
    /// Say you paid a request (its id as `read --json` shows it, or a
    /// prefix), with the payment's reference if you like.
    Paid {
        conv: String,
        message: String,
        #[arg(long)]
        reference: Option<String>,
    },
    /// Decline a request.
    Decline { conv: String, message: String },
    /// Print a request's payto URI and state; with --open, hand the URI to
    /// your payment app (`xdg-open`).
    Open {
        conv: String,
        message: String,
        #[arg(long)]
        open: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum CallCommand {
    /// Ring the other side of a 1:1 conversation; prints the call's id.
    Ring {
        conv: String,
        #[arg(long)]
        video: bool,
        /// The WebRTC offer (SDP) to send.
        #[arg(long)]
        sdp_file: Option<PathBuf>,
    },
    /// Answer a call (its id, or a prefix).
    Answer {
        conv: String,
        call: String,
        /// The WebRTC answer (SDP) to send.
        #[arg(long)]
        sdp_file: Option<PathBuf>,
    },
    /// Send one ICE candidate.
    Candidate {
        conv: String,
        call: String,
        candidate: String,
    },
    /// Decline a ringing call.
    Decline { conv: String, call: String },
    /// End a call (before it is answered: it is missed).
    Hangup { conv: String, call: String },
    /// The conversation's calls, newest first.
    List { conv: String },
}

#[derive(Subcommand)]
pub(crate) enum PersonaCommand {
    /// Make a persona.
    Create {
        name: String,
        /// The name its relationships see (default: the profile's).
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Your personas.
    List,
    /// Forget a persona: nothing new starts from it; what did keeps it.
    Delete { name: String },
}

#[derive(Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Join a directory by its link: the one-time enrolment link its
    /// administrator gave you (members-only), or `<relay>/d/<name>`.
    Join {
        link: String,
        /// Be in it as this persona (default: a persona named after the
        /// directory, made for it).
        #[arg(long)]
        persona: Option<String>,
    },
    /// The directories you joined.
    List,
    /// Search a directory you joined, or any public one by its link: every
    /// word must begin a word of an entry's name or text.
    Search {
        directory: String,
        query: Vec<String>,
    },
    /// List yourself: a name, a short text, and a contact address made for
    /// this directory (people who find you send contact requests).
    Publish {
        directory: String,
        /// The name shown (default: the persona's).
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value = "")]
        text: String,
    },
    /// Remove your entry; its contact address is deleted.
    Unpublish { directory: String },
    /// Show your attestation from DIRECTORY in the conversation CONV.
    Show { directory: String, conv: String },
    /// Leave a directory: your entry and membership end; your persona and
    /// its relationships stay.
    Leave { directory: String },
}

#[derive(Subcommand)]
pub(crate) enum AddressCommand {
    /// Make a new address; it takes requests until you delete it.
    Create {
        /// Your name for this address (only you see it).
        #[arg(long)]
        name: Option<String>,
        /// The relay that takes its requests (default: yours).
        #[arg(long)]
        relay: Option<String>,
        /// The name shown to people whose requests you accept (default:
        /// the profile's).
        #[arg(long)]
        display_name: Option<String>,
        /// Start it from a persona (`kith persona`): it uses that
        /// identity instead of a new one.
        #[arg(long)]
        persona: Option<String>,
    },
    /// Your addresses.
    List,
    /// An address's link and QR code again.
    Show { address: String },
    /// Delete an address: its relay refuses every further request.
    Delete { address: String },
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
        /// Be in it as a persona (`kith persona`).
        #[arg(long)]
        persona: Option<String>,
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

impl Command {
    /// Whether the command reads standard input.
    pub(crate) fn reads_stdin(&self) -> bool {
        match self {
            Self::Send { text, .. } | Self::Edit { text, .. } => text == "-",
            Self::Mail {
                subject: Some(_),
                file: None,
                ..
            } => true,
            _ => false,
        }
    }

    /// Makes every path the command names absolute against `cwd`, and the
    /// directory a download goes to explicit: the daemon that runs it
    /// works elsewhere.
    pub(crate) fn anchor(&mut self, cwd: &std::path::Path) {
        let at = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        };
        match self {
            Self::Mail { file: Some(p), .. }
            | Self::SendFile { path: p, .. }
            | Self::SendApp {
                data_file: Some(p), ..
            }
            | Self::Call {
                command:
                    CallCommand::Ring {
                        sdp_file: Some(p), ..
                    }
                    | CallCommand::Answer {
                        sdp_file: Some(p), ..
                    },
            } => at(p),
            Self::Download { to, .. } => match to {
                Some(p) => at(p),
                None => *to = Some(cwd.to_path_buf()),
            },
            _ => {}
        }
    }
}
