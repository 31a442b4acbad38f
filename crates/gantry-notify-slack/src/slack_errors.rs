//! Slack error codes → a sentence saying what is wrong and what to do.
//!
//! Web API methods answer HTTP 200 with `{"ok":false,"error":"<code>"}`; incoming webhooks answer
//! a real HTTP status with the code as plain text. Both are explained here, so a user reads
//! "invite the bot to the channel" instead of `not_in_channel`. This module must not decide
//! retries (see `client.rs`).
//!
//! See: <https://docs.slack.dev/reference/methods/chat.postMessage#errors>,
//! <https://docs.slack.dev/reference/methods/chat.update#errors>,
//! <https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks#handling_errors>

use serde_json::Value;

/// Explains a Web API error code. `response` is the whole answer (for `needed`/`provided`
/// scopes), `channel` the channel we sent to.
pub fn explain(code: &str, response: &Value, channel: Option<&str>) -> String {
    let ch = channel.map(|c| format!(" `{c}`")).unwrap_or_default();
    match code {
        "channel_not_found" => format!(
            "channel{ch} not found: check the name or id; for a private channel invite the bot first (/invite @your-app); a channel name cannot be used with `ts`, give the `channel-id` output of the first step"
        ),
        "not_in_channel" => format!("the bot is not in channel{ch}: invite it with /invite @your-app (or add the chat:write.public scope for public channels)"),
        "is_archived" | "channel_is_archived" => format!("channel{ch} is archived; unarchive it or pick another channel"),
        "invalid_auth" => "the token is not valid (invalid_auth): use the bot token (xoxb-…) from your Slack app's OAuth & Permissions page".into(),
        "not_authed" => "no token reached Slack (not_authed): check that the `token` secret is set for this workflow".into(),
        "token_revoked" => "the token was revoked (token_revoked): reinstall the Slack app and update the secret".into(),
        "token_expired" => "the token expired (token_expired): refresh it or use a non-expiring bot token".into(),
        "account_inactive" => "the token belongs to a deleted user or a disabled app (account_inactive)".into(),
        "missing_scope" => {
            let needed = response.get("needed").and_then(Value::as_str).unwrap_or("chat:write");
            let provided = response.get("provided").and_then(Value::as_str).unwrap_or("");
            let has = if provided.is_empty() { String::new() } else { format!(" (the token has: {provided})") };
            format!("the token lacks the `{needed}` scope{has}: add it under OAuth & Permissions → Bot Token Scopes and reinstall the app")
        }
        "no_permission" => "the token has no permission for this action (no_permission)".into(),
        "ekm_access_denied" => "administrators suspended posting (ekm_access_denied)".into(),
        "access_denied" => "access denied by Slack (access_denied)".into(),
        "not_allowed_token_type" => "this token type cannot post messages (not_allowed_token_type): use a bot token (xoxb-…)".into(),
        "restricted_action" | "restricted_action_read_only_channel" | "restricted_action_thread_only_channel"
        | "restricted_action_non_threadable_channel" | "restricted_action_thread_locked" => {
            format!("a workspace setting forbids this post in{ch} ({code}); ask a Slack admin or use another channel")
        }
        "team_access_not_granted" => "the app is not installed in the workspace of this channel (team_access_not_granted)".into(),
        "message_not_found" => "the message to update (`ts`) was not found in that channel: pass the `ts` and `channel-id` outputs of the step that posted it".into(),
        "cant_update_message" => "only messages posted by this bot can be updated (cant_update_message): the `ts` belongs to another user or app".into(),
        "edit_window_closed" => "the message is too old to edit (edit_window_closed)".into(),
        "is_inactive" => "the message's conversation is inactive (is_inactive)".into(),
        "msg_too_long" => "the text is longer than Slack accepts (msg_too_long; 4,000 characters for updates)".into(),
        "msg_blocks_too_long" => "the blocks are longer than Slack accepts (msg_blocks_too_long)".into(),
        "no_text" => "the message has no text, blocks or attachments (no_text)".into(),
        "invalid_blocks" | "invalid_blocks_format" => {
            let detail = response
                .pointer("/response_metadata/messages")
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
                .filter(|s| !s.is_empty())
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("Slack refused the blocks ({code}){detail}; check the payload against Block Kit Builder")
        }
        "block_mismatch" => "the update's blocks do not match the message (block_mismatch)".into(),
        "too_many_attachments" => "more than 100 attachments (too_many_attachments)".into(),
        "markdown_text_conflict" => "`markdown_text` cannot be combined with `text` or `blocks` (markdown_text_conflict)".into(),
        "invalid_metadata_format" | "invalid_metadata_schema" => format!("the message metadata is invalid ({code})"),
        "duplicate_channel_not_found" | "duplicate_message_not_found" => format!("Slack could not find the referenced channel or message ({code})"),
        "thread_not_found" | "invalid_thread_ts" => "the thread (`thread-ts`) does not exist in that channel".into(),
        "ratelimited" | "rate_limited" => "Slack rate-limited the request and the retries ran out (about 1 message per second per channel is allowed)".into(),
        "service_unavailable" | "internal_error" | "fatal_error" | "request_timeout" => format!("Slack had a temporary problem ({code}); try again"),
        "invalid_arguments" | "invalid_arg_name" | "invalid_array_arg" | "invalid_charset" | "invalid_form_data" | "invalid_post_type" | "missing_post_type" | "invalid_json" | "json_not_object" => {
            format!("Slack could not read the request ({code}); if you pass `payload`, check its fields")
        }
        "upgrade_required" => "Slack requires a newer API client (upgrade_required)".into(),
        "as_user_not_supported" => "`as_user` is not supported for this token (as_user_not_supported)".into(),
        "method_deprecated" | "deprecated_endpoint" => format!("the method is deprecated ({code})"),
        "two_factor_setup_required" => "the token's user must set up two-factor authentication".into(),
        "enterprise_is_restricted" => "the Enterprise Grid organization restricts this method".into(),
        other => format!("Slack answered `{other}`"),
    }
}

/// Explains an incoming-webhook error (HTTP status + plain-text code).
pub fn explain_webhook(status: u16, body: &str) -> String {
    let code = body.trim();
    let what = match code {
        "invalid_payload" => "the message is malformed (invalid_payload)".into(),
        "no_text" => "the message has no text (no_text)".into(),
        "too_many_attachments" => "more than 100 attachments (too_many_attachments)".into(),
        "channel_not_found" => "the webhook's channel no longer exists (channel_not_found)".into(),
        "user_not_found" => "the webhook's user no longer exists (user_not_found)".into(),
        "channel_is_archived" => "the webhook's channel is archived (channel_is_archived)".into(),
        "action_prohibited" => {
            "an admin restriction blocks this webhook (action_prohibited)".into()
        }
        "posting_to_general_channel_denied" => {
            "only admins may post to #general (posting_to_general_channel_denied)".into()
        }
        "invalid_token" => {
            "the webhook URL is not valid (invalid_token): create a new incoming webhook".into()
        }
        "no_active_hooks" | "no_service" | "no_service_id" => format!(
            "the webhook was disabled or removed ({code}): create a new incoming webhook and update the secret"
        ),
        "no_team" | "team_disabled" => {
            format!("the webhook's workspace is gone or disabled ({code})")
        }
        "" => format!("HTTP {status} with an empty body"),
        other => {
            let cut: String = other.chars().take(200).collect();
            format!("`{cut}`")
        }
    };
    format!("incoming webhook answered HTTP {status}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn common_codes_say_what_to_do() {
        assert!(explain("not_in_channel", &json!({}), Some("C1")).contains("invite"));
        assert!(explain("channel_not_found", &json!({}), Some("deploys")).contains("`deploys`"));
        let m = explain(
            "missing_scope",
            &json!({"needed": "channels:read", "provided": "chat:write"}),
            None,
        );
        assert!(
            m.contains("`channels:read`") && m.contains("chat:write"),
            "{m}"
        );
        assert!(explain("invalid_auth", &json!({}), None).contains("xoxb"));
        assert!(explain("msg_too_long", &json!({}), None).contains("4,000"));
        assert!(explain("weird_code", &json!({}), None).contains("weird_code"));
        assert!(explain_webhook(404, "no_service").contains("removed"));
        assert!(explain_webhook(400, "invalid_payload").contains("malformed"));
    }
}
