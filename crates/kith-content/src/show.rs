//! What a receiver shows of a message (content-v1.md §7, §8): the best
//! alternative it supports, markdown as plain text, the mail subject.
//! Strings here come from peers: the caller escapes them before they
//! reach a terminal or a page.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use crate::kind::{Capabilities, media_type};
use crate::{Content, ExtensionName, ExtensionValue, Part, PartBody, Semantics};

/// Media types shown as text.
const PLAIN: &str = "text/plain";
const MARKDOWN: &str = "text/markdown";

/// The extension that makes a message a mail (content-v1.md §7.4).
pub const SUBJECT: &str = "subject";

/// A message as this version shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Plain text; markdown rendered as plain text.
    pub text: String,
    /// A mail's subject.
    pub subject: Option<String>,
}

/// What `content` shows, or `None` when no part of it is one this version
/// supports (the frame's fallback is shown instead).
pub fn show(content: &Content) -> Option<Shown> {
    show_for(content, &Capabilities::this_version())
}

/// What a member that shows `caps`'s media types sees of `content`: its
/// text parts, markdown as plain text when it shows markdown.
pub fn show_for(content: &Content, caps: &Capabilities) -> Option<Shown> {
    let text = part_text(&content.part, caps)?;
    let subject = match content.extensions.get(&ExtensionName::Text(SUBJECT.into())) {
        Some(ExtensionValue::Text(s)) => Some(s.clone()),
        _ => None,
    };
    Some(Shown { text, subject })
}

fn part_text(part: &Part, caps: &Capabilities) -> Option<String> {
    match &part.body {
        PartBody::Single {
            content_type,
            content,
        } => {
            let text = std::str::from_utf8(content).ok()?;
            if !caps.shows(content_type) {
                return None;
            }
            match media_type(content_type).as_str() {
                PLAIN => Some(text.to_owned()),
                MARKDOWN => Some(markdown_to_plain(text)),
                _ => None,
            }
        }
        PartBody::Multi {
            semantics: Semantics::ChooseOne,
            parts,
        } => parts.iter().find_map(|p| part_text(p, caps)),
        PartBody::Multi {
            semantics: Semantics::SingleUnit,
            parts,
        } => parts
            .iter()
            .map(|p| part_text(p, caps))
            .collect::<Option<Vec<_>>>()
            .map(|texts| texts.join("\n\n")),
        PartBody::Multi {
            semantics: Semantics::ProcessAll,
            parts,
        } => {
            let texts: Vec<String> = parts.iter().filter_map(|p| part_text(p, caps)).collect();
            (!texts.is_empty()).then(|| texts.join("\n\n"))
        }
        PartBody::Null | PartBody::External(_) => None,
    }
}

/// Markdown as a terminal shows it: the words, paragraphs apart, list items
/// bulleted, links followed by their address, code as it is.
pub fn markdown_to_plain(markdown: &str) -> String {
    let mut out = String::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                out.push_str(&t);
            }
            Event::Html(t) | Event::InlineHtml(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => {
                block_break(&mut out);
                out.push_str("----");
            }
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(name) => {
                out.push('[');
                out.push_str(&name);
                out.push(']');
            }
            Event::Start(tag) => match tag {
                // A block starts apart, but not right after a list
                // item's bullet.
                Tag::Paragraph | Tag::Heading { .. } | Tag::CodeBlock(_) | Tag::BlockQuote(_)
                    if lists.is_empty() || !out.ends_with(' ') =>
                {
                    block_break(&mut out);
                }
                Tag::List(start) => {
                    block_break(&mut out);
                    lists.push(start);
                }
                Tag::Item => {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                    match lists.last_mut() {
                        Some(Some(n)) => {
                            out.push_str(&format!("{n}. "));
                            *n += 1;
                        }
                        _ => out.push_str("• "),
                    }
                }
                Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                    links.push(dest_url.to_string());
                }
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::List(_) => {
                    lists.pop();
                }
                TagEnd::Link | TagEnd::Image => {
                    if let Some(url) = links.pop()
                        && !url.is_empty()
                        && !out.ends_with(&url)
                    {
                        out.push_str(" <");
                        out.push_str(&url);
                        out.push('>');
                    }
                }
                _ => {}
            },
        }
    }
    out.trim().to_owned()
}

/// Ends the block before: a blank line between blocks.
fn block_break(out: &mut String) {
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
    if out.is_empty() {
        return;
    }
    while !out.ends_with("\n\n") {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn markdown_reads_as_plain_text() {
        let md = "# Lunch\n\nMeet at **noon** by the [fountain](https://x.example/f).\n\n\
                  - bread\n- cheese\n\n1. first\n2. second\n\n`code` stays";
        assert_eq!(
            markdown_to_plain(md),
            "Lunch\n\nMeet at noon by the fountain <https://x.example/f>.\n\n\
             • bread\n• cheese\n\n1. first\n2. second\n\ncode stays"
        );
        assert_eq!(markdown_to_plain("just words"), "just words");
        assert_eq!(markdown_to_plain(""), "");
    }
}
