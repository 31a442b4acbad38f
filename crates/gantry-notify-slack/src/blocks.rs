//! Typed Block Kit: the blocks gantry sends (header, section with fields, context, actions with
//! link buttons, divider), built so that Slack's limits hold by construction.
//!
//! Every constructor cuts text to its limit with a visible "…" instead of letting Slack refuse
//! the whole message (`invalid_blocks`, `msg_blocks_too_long`). [`enforce_limits`] applies the
//! same limits to a user-supplied raw payload (JSON), so both paths send messages Slack accepts.
//! This module must not escape text (callers pass `mrkdwn` they already escaped) and must not
//! know about deploys.
//!
//! See: <https://docs.slack.dev/reference/block-kit/blocks> (per-block limits) and
//! reference/runtime-and-slack.md B7.5.

use serde::Serialize;
use serde_json::Value;

use crate::mrkdwn::{len, truncate};

/// Blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// `header` text.
pub const MAX_HEADER: usize = 150;
/// `section` text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// `section` fields count.
pub const MAX_FIELDS: usize = 10;
/// One `section` field.
pub const MAX_FIELD: usize = 2000;
/// `context` elements.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// `actions` elements.
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
/// Button text.
pub const MAX_BUTTON_TEXT: usize = 75;
/// Button URL.
pub const MAX_URL: usize = 3000;
/// `block_id` / `action_id`.
pub const MAX_ID: usize = 255;
/// Top-level `text` (enforced by `chat.update`, recommended for `chat.postMessage`).
pub const MAX_TEXT: usize = 4000;
/// Attachments per message.
pub const MAX_ATTACHMENTS: usize = 100;

/// A text object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Text {
    /// `plain_text` or `mrkdwn`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The text.
    pub text: String,
    /// For `plain_text`: render `:emoji:` codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<bool>,
}

impl Text {
    /// A `mrkdwn` text object (the text must already be escaped), cut to `max`.
    pub fn mrkdwn(text: &str, max: usize) -> Self {
        Self {
            kind: "mrkdwn",
            text: truncate(text, max),
            emoji: None,
        }
    }

    /// A `plain_text` object with emoji, cut to `max`.
    pub fn plain(text: &str, max: usize) -> Self {
        Self {
            kind: "plain_text",
            text: truncate(text, max),
            emoji: Some(true),
        }
    }
}

/// A link button (no interactivity needed: Slack opens the URL).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Button {
    /// Always `button`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Label (≤ 75 chars).
    pub text: Text,
    /// Target.
    pub url: String,
    /// Unique within the message.
    pub action_id: String,
    /// `primary` / `danger`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<&'static str>,
}

/// One block.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Large bold plain text.
    Header {
        /// Plain text ≤ 150.
        text: Text,
        /// Id.
        block_id: String,
    },
    /// Text and/or two-column fields.
    Section {
        /// Main text ≤ 3000.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<Text>,
        /// ≤ 10 fields of ≤ 2000.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Text>,
        /// Id.
        block_id: String,
    },
    /// Small grey text elements.
    Context {
        /// ≤ 10 elements.
        elements: Vec<Text>,
        /// Id.
        block_id: String,
    },
    /// Buttons.
    Actions {
        /// ≤ 25 buttons.
        elements: Vec<Button>,
        /// Id.
        block_id: String,
    },
    /// A line.
    Divider {
        /// Id.
        block_id: String,
    },
}

/// Builds a list of blocks with unique ids (`<prefix>-<n>`) and the limits applied.
///
/// Block ids change with each iteration of a message (the prefix carries the status and time),
/// as Slack asks for updated messages.
#[derive(Clone, Debug)]
pub struct Blocks {
    prefix: String,
    blocks: Vec<Block>,
    dropped: usize,
}

impl Blocks {
    /// An empty list whose block ids start with `prefix`.
    pub fn new(prefix: &str) -> Self {
        let prefix: String = prefix.chars().take(MAX_ID - 8).collect();
        Self {
            prefix,
            blocks: Vec::new(),
            dropped: 0,
        }
    }

    fn id(&self) -> String {
        format!("{}-{}", self.prefix, self.blocks.len())
    }

    fn push(&mut self, b: Block) {
        if self.blocks.len() < MAX_BLOCKS {
            self.blocks.push(b);
        } else {
            self.dropped += 1;
        }
    }

    /// A header (plain text, emoji rendered).
    pub fn header(&mut self, text: &str) -> &mut Self {
        let b = Block::Header {
            text: Text::plain(text, MAX_HEADER),
            block_id: self.id(),
        };
        self.push(b);
        self
    }

    /// A section with `mrkdwn` text.
    pub fn section(&mut self, mrkdwn: &str) -> &mut Self {
        if mrkdwn.trim().is_empty() {
            return self;
        }
        let b = Block::Section {
            text: Some(Text::mrkdwn(mrkdwn, MAX_SECTION_TEXT)),
            fields: Vec::new(),
            block_id: self.id(),
        };
        self.push(b);
        self
    }

    /// Sections of fields (`mrkdwn`), ten per section; empty fields are skipped.
    pub fn fields(&mut self, fields: &[String]) -> &mut Self {
        let fields: Vec<&String> = fields.iter().filter(|f| !f.trim().is_empty()).collect();
        for chunk in fields.chunks(MAX_FIELDS) {
            let b = Block::Section {
                text: None,
                fields: chunk.iter().map(|f| Text::mrkdwn(f, MAX_FIELD)).collect(),
                block_id: self.id(),
            };
            self.push(b);
        }
        self
    }

    /// A context line of `mrkdwn` elements (at most ten; the rest are joined into the tenth).
    pub fn context(&mut self, elements: &[String]) -> &mut Self {
        let mut els: Vec<String> = elements
            .iter()
            .filter(|e| !e.trim().is_empty())
            .cloned()
            .collect();
        if els.is_empty() {
            return self;
        }
        if els.len() > MAX_CONTEXT_ELEMENTS {
            let rest = els.split_off(MAX_CONTEXT_ELEMENTS - 1).join(" · ");
            els.push(rest);
        }
        let b = Block::Context {
            elements: els
                .iter()
                .map(|e| Text::mrkdwn(e, MAX_SECTION_TEXT))
                .collect(),
            block_id: self.id(),
        };
        self.push(b);
        self
    }

    /// Link buttons `(label, url, style)`; buttons with an empty or over-long URL are skipped
    /// (a cut URL would lead somewhere else), at most 25.
    pub fn buttons(&mut self, buttons: &[(String, String, Option<&'static str>)]) -> &mut Self {
        let id = self.id();
        let elements: Vec<Button> = buttons
            .iter()
            .filter(|(_, url, _)| !url.is_empty() && len(url) <= MAX_URL)
            .take(MAX_ACTIONS_ELEMENTS)
            .enumerate()
            .map(|(i, (label, url, style))| Button {
                kind: "button",
                text: Text::plain(label, MAX_BUTTON_TEXT),
                url: url.clone(),
                action_id: format!("{id}-{i}"),
                style: *style,
            })
            .collect();
        if !elements.is_empty() {
            self.push(Block::Actions {
                elements,
                block_id: id,
            });
        }
        self
    }

    /// A divider.
    pub fn divider(&mut self) -> &mut Self {
        let b = Block::Divider {
            block_id: self.id(),
        };
        self.push(b);
        self
    }

    /// How many blocks were dropped at the 50-block limit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The blocks.
    pub fn build(self) -> Vec<Block> {
        self.blocks
    }
}

/// A note about something cut to fit Slack's limits (shown in the log).
pub type LimitNote = String;

/// Applies Block Kit limits to a raw payload in place (top-level `text`, `blocks`, and each
/// attachment's `blocks`), cutting with "…"; returns what was cut. Unknown block types are kept
/// as they are.
pub fn enforce_limits(payload: &mut Value) -> Vec<LimitNote> {
    let mut notes = Vec::new();
    if let Some(Value::String(t)) = payload.get_mut("text") {
        cut(t, MAX_TEXT, "text", &mut notes);
    }
    if let Some(Value::Array(blocks)) = payload.get_mut("blocks") {
        enforce_blocks(blocks, "blocks", &mut notes);
    }
    if let Some(Value::Array(atts)) = payload.get_mut("attachments") {
        if atts.len() > MAX_ATTACHMENTS {
            notes.push(format!(
                "attachments: {} > {MAX_ATTACHMENTS}, extra dropped",
                atts.len()
            ));
            atts.truncate(MAX_ATTACHMENTS);
        }
        for (i, a) in atts.iter_mut().enumerate() {
            if let Some(Value::Array(blocks)) = a.get_mut("blocks") {
                enforce_blocks(blocks, &format!("attachments[{i}].blocks"), &mut notes);
            }
        }
    }
    notes
}

fn cut(t: &mut String, max: usize, what: &str, notes: &mut Vec<LimitNote>) {
    let n = len(t);
    if n > max {
        *t = truncate(t, max);
        notes.push(format!("{what}: {n} characters cut to {max}"));
    }
}

fn cut_text_obj(v: Option<&mut Value>, max: usize, what: &str, notes: &mut Vec<LimitNote>) {
    if let Some(Value::String(t)) = v.and_then(|o| o.get_mut("text")) {
        cut(t, max, what, notes);
    }
}

fn enforce_blocks(blocks: &mut Vec<Value>, path: &str, notes: &mut Vec<LimitNote>) {
    if blocks.len() > MAX_BLOCKS {
        notes.push(format!(
            "{path}: {} blocks, only the first {MAX_BLOCKS} kept",
            blocks.len()
        ));
        blocks.truncate(MAX_BLOCKS);
    }
    for (i, b) in blocks.iter_mut().enumerate() {
        let p = format!("{path}[{i}]");
        let kind = b
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match kind.as_str() {
            "header" => cut_text_obj(b.get_mut("text"), MAX_HEADER, &format!("{p}.text"), notes),
            "section" => {
                cut_text_obj(
                    b.get_mut("text"),
                    MAX_SECTION_TEXT,
                    &format!("{p}.text"),
                    notes,
                );
                if let Some(Value::Array(fields)) = b.get_mut("fields") {
                    if fields.len() > MAX_FIELDS {
                        notes.push(format!(
                            "{p}.fields: {} fields, only {MAX_FIELDS} kept",
                            fields.len()
                        ));
                        fields.truncate(MAX_FIELDS);
                    }
                    for (j, f) in fields.iter_mut().enumerate() {
                        cut_text_obj(Some(f), MAX_FIELD, &format!("{p}.fields[{j}]"), notes);
                    }
                }
                cut_text_obj(
                    b.get_mut("accessory")
                        .filter(|a| a.get("type").and_then(Value::as_str) == Some("button"))
                        .and_then(|a| a.get_mut("text")),
                    MAX_BUTTON_TEXT,
                    &format!("{p}.accessory.text"),
                    notes,
                );
            }
            "context" => {
                if let Some(Value::Array(els)) = b.get_mut("elements") {
                    if els.len() > MAX_CONTEXT_ELEMENTS {
                        notes.push(format!(
                            "{p}.elements: {} elements, only {MAX_CONTEXT_ELEMENTS} kept",
                            els.len()
                        ));
                        els.truncate(MAX_CONTEXT_ELEMENTS);
                    }
                    for (j, e) in els.iter_mut().enumerate() {
                        cut_text_obj(
                            Some(e),
                            MAX_SECTION_TEXT,
                            &format!("{p}.elements[{j}]"),
                            notes,
                        );
                    }
                }
            }
            "actions" => {
                if let Some(Value::Array(els)) = b.get_mut("elements") {
                    if els.len() > MAX_ACTIONS_ELEMENTS {
                        notes.push(format!(
                            "{p}.elements: {} elements, only {MAX_ACTIONS_ELEMENTS} kept",
                            els.len()
                        ));
                        els.truncate(MAX_ACTIONS_ELEMENTS);
                    }
                    for (j, e) in els.iter_mut().enumerate() {
                        if e.get("type").and_then(Value::as_str) == Some("button") {
                            cut_text_obj(
                                e.get_mut("text"),
                                MAX_BUTTON_TEXT,
                                &format!("{p}.elements[{j}].text"),
                                notes,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some(Value::String(id)) = b.get_mut("block_id") {
            cut(id, MAX_ID, &format!("{p}.block_id"), notes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builder_enforces_every_limit() {
        let mut b = Blocks::new("gantry-success-1");
        b.header(&"h".repeat(200));
        b.section(&"s".repeat(3500));
        let fields: Vec<String> = (0..12)
            .map(|i| format!("{i}{}", "f".repeat(2100)))
            .collect();
        b.fields(&fields);
        b.context(&(0..12).map(|i| format!("c{i}")).collect::<Vec<_>>());
        let buttons: Vec<(String, String, Option<&'static str>)> = (0..30)
            .map(|i| {
                (
                    format!("{i}{}", "b".repeat(100)),
                    format!("https://x/{i}"),
                    None,
                )
            })
            .collect();
        b.buttons(&buttons);
        for _ in 0..60 {
            b.divider();
        }
        assert_eq!(b.dropped(), 60 - (MAX_BLOCKS - 6));
        let v = serde_json::to_value(b.build()).unwrap();
        let blocks = v.as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let t = |v: &Value| v["text"].as_str().unwrap().chars().count();
        assert_eq!(t(&blocks[0]["text"]), MAX_HEADER);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().ends_with('…'));
        assert_eq!(t(&blocks[1]["text"]), MAX_SECTION_TEXT);
        assert_eq!(blocks[2]["fields"].as_array().unwrap().len(), MAX_FIELDS);
        assert_eq!(blocks[3]["fields"].as_array().unwrap().len(), 2);
        assert_eq!(t(&blocks[2]["fields"][0]), MAX_FIELD);
        assert_eq!(
            blocks[4]["elements"].as_array().unwrap().len(),
            MAX_CONTEXT_ELEMENTS
        );
        assert_eq!(blocks[4]["elements"][9]["text"], "c9 · c10 · c11");
        assert_eq!(
            blocks[5]["elements"].as_array().unwrap().len(),
            MAX_ACTIONS_ELEMENTS
        );
        assert_eq!(t(&blocks[5]["elements"][0]["text"]), MAX_BUTTON_TEXT);
        let ids: std::collections::BTreeSet<&str> = blocks
            .iter()
            .map(|b| b["block_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), MAX_BLOCKS, "block ids are unique");
    }

    #[test]
    fn raw_payload_limits() {
        let mut p = json!({
            "text": "t".repeat(5000),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}},
                {"type": "section", "fields": (0..11).map(|_| json!({"type":"mrkdwn","text":"x".repeat(2001)})).collect::<Vec<_>>()},
                {"type": "actions", "elements": [{"type":"button","text":{"type":"plain_text","text":"b".repeat(80)},"url":"https://x"}]},
                {"type": "image", "image_url": "https://x/i.png", "alt_text": "i"}
            ],
            "attachments": [{"color": "#ff0000", "blocks": (0..55).map(|_| json!({"type":"divider"})).collect::<Vec<_>>()}]
        });
        let notes = enforce_limits(&mut p);
        assert_eq!(p["text"].as_str().unwrap().chars().count(), MAX_TEXT);
        assert_eq!(
            p["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_HEADER
        );
        assert_eq!(
            p["blocks"][1]["fields"].as_array().unwrap().len(),
            MAX_FIELDS
        );
        assert_eq!(
            p["blocks"][1]["fields"][0]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_FIELD
        );
        assert_eq!(
            p["blocks"][2]["elements"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_BUTTON_TEXT
        );
        assert_eq!(
            p["attachments"][0]["blocks"].as_array().unwrap().len(),
            MAX_BLOCKS
        );
        assert_eq!(notes.len(), 15, "{notes:#?}");
    }
}
