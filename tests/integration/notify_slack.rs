//! Integration tests: notify-slack against the fake Slack (`gantry_test::slack`) and the fake
//! GitHub deployments API, through the real binary in a scrubbed runner environment.
//!
//! Covers: start → success on one message, channel-name resolution, thread replies, mentions on
//! failure, rate-limit recovery timing, no double post after a 5xx, update retries, every error
//! mapping, truncation at every Block Kit limit, hostile commit messages, webhook mode and
//! fallback, secrets absent from all output, bad inputs, GitHub deployments, dry run.

use std::path::PathBuf;
use std::time::Duration;

use gantry_test::github_deployments::{FakeGitHub, GITHUB_TOKEN};
use gantry_test::slack::{BOT_TOKEN, FakeSlack, Fault, WEBHOOK_SECRET};
use gantry_test::{RunResult, TestContext};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/notify-slack")
        .join(name)
}

fn push_event() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("push-event.json")).unwrap()).unwrap()
}

/// A runner-like context for a push to main, pointed at the fake Slack.
fn ctx(slack: &FakeSlack) -> TestContext {
    let mut c = TestContext::new();
    c.env_file(&fixture("runner.env"));
    c.event("push", push_event());
    c.input("api", &slack.api_url())
        .input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS");
    c
}

fn warnings(r: &RunResult) -> Vec<&str> {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("::warning"))
        .collect()
}

/// Output without the `::add-mask::` lines (the one place a secret must appear).
fn visible(r: &RunResult) -> String {
    r.all_output()
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn start_then_success_updates_one_message() {
    let slack = FakeSlack::start();
    let mut c = ctx(&slack);
    c.input("status", "started")
        .input("environment", "production")
        .input("digest", "sha256:feedface");
    let start = c.run("notify-slack");
    start.assert_success();
    let ts = start.output("ts").expect("ts output").to_string();
    assert_eq!(start.output("channel-id"), Some("C0DEPLOYS"));
    assert_eq!(start.output("channel_id"), Some("C0DEPLOYS"));
    assert_eq!(start.output("thread-ts"), Some(ts.as_str()));
    assert_eq!(start.output("ok"), Some("true"));
    let m = slack.message(&ts).unwrap();
    assert_eq!(m.attachments[0]["color"], "#1f6feb");
    assert!(
        m.blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("🚀 Deploying acme/api to production")
    );

    let mut c = ctx(&slack);
    c.input("status", "success")
        .input("environment", "production")
        .input("digest", "sha256:feedface")
        .input("ts", &ts)
        .input("channel", start.output("channel-id").unwrap());
    let done = c.run("notify-slack");
    done.assert_success();
    assert_eq!(done.output("ts"), Some(ts.as_str()));
    assert_eq!(slack.messages().len(), 1, "one message, updated in place");
    let m = slack.message(&ts).unwrap();
    assert_eq!(m.edits, 1);
    assert_eq!(m.attachments[0]["color"], "#2eb886");
    let body = m.attachments.to_string();
    assert!(
        body.contains("*Duration*"),
        "duration computed from the start ts: {body}"
    );
    assert!(body.contains("sha256:feedface"));
    assert!(body.contains("Deploy #42 (attempt 2)"));
    assert!(body.contains("https://github.com/acme/api/actions/runs/9876543210/attempts/2"));
    assert!(body.contains(
        "<https://github.com/acme/api/commit/0123456789abcdef0123456789abcdef01234567|0123456>"
    ));
    assert_eq!(slack.requests_to("chat.postMessage").len(), 1);
    assert_eq!(slack.requests_to("chat.update").len(), 1);
    assert!(
        done.summary.contains("Message as sent")
            && done.summary.contains("✅ Deployed acme/api to production"),
        "{}",
        done.summary
    );
}

#[test]
fn channel_name_with_ts_is_resolved_to_its_id() {
    let slack = FakeSlack::start();
    let mut c = ctx(&slack);
    c.input("channel", "#deploys");
    let start = c.run("notify-slack");
    start.assert_success();
    assert_eq!(start.output("channel-id"), Some("C0DEPLOYS"));
    let ts = start.output("ts").unwrap().to_string();
    let mut c = ctx(&slack);
    c.input("channel", "deploys")
        .input("ts", &ts)
        .input("status", "success");
    c.run("notify-slack").assert_success();
    // 150 filler channels come first and the fake serves at most 100 per page: two pages.
    assert_eq!(slack.requests_to("conversations.list").len(), 2);
    assert_eq!(
        slack.requests_to("chat.update")[0].json()["channel"],
        "C0DEPLOYS"
    );
    assert_eq!(slack.message(&ts).unwrap().edits, 1);
}

#[test]
fn thread_reply_broadcasts_failures_by_default() {
    let slack = FakeSlack::start();
    let start = ctx(&slack).run("notify-slack");
    let parent = start.output("ts").unwrap().to_string();
    let mut c = ctx(&slack);
    c.input("thread-ts", &parent).input("status", "failure");
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("thread-ts"), Some(parent.as_str()));
    let reply = slack.message(r.output("ts").unwrap()).unwrap();
    assert_eq!(reply.thread_ts.as_deref(), Some(parent.as_str()));
    assert!(reply.reply_broadcast);
    let mut c = ctx(&slack);
    c.input("thread-ts", &parent)
        .input("status", "success")
        .input("reply-broadcast", "false");
    let r = c.run("notify-slack");
    assert!(
        !slack
            .message(r.output("ts").unwrap())
            .unwrap()
            .reply_broadcast
    );
}

#[test]
fn failure_update_mentions_people_in_a_thread_reply() {
    let slack = FakeSlack::start();
    let start = ctx(&slack).run("notify-slack");
    let ts = start.output("ts").unwrap().to_string();
    let mut c = ctx(&slack);
    c.input("ts", &ts)
        .input("status", "failure")
        .input("mention-on-failure", "@oncall, U0123ABCD\nS0TEAM1234");
    let r = c.run("notify-slack");
    r.assert_success();
    let edited = slack.message(&ts).unwrap();
    assert_eq!(edited.attachments[0]["color"], "#d73a49");
    assert!(
        edited
            .text
            .starts_with("<!subteam^S0ONCALL01> <@U0123ABCD> <!subteam^S0TEAM1234> ❌"),
        "{}",
        edited.text
    );
    // Edits do not notify: the mentions also go to a thread reply.
    let replies: Vec<_> = slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(ts.as_str()))
        .collect();
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0]
            .text
            .contains("<!subteam^S0ONCALL01> <@U0123ABCD>")
    );
    assert_eq!(slack.requests_to("usergroups.list").len(), 1);
    assert!(warnings(&r).is_empty(), "{}", r.stdout);
    assert!(r.summary.contains("Mentions: @oncall"), "{}", r.summary);
    // Without `usergroups:read` the handle stays plain text (pings no one), with a warning.
    slack.add_token("xoxb-no-groups-scope-0001", "U0GANTRYBOT", &["chat:write"]);
    let mut c = ctx(&slack);
    c.input("token", "xoxb-no-groups-scope-0001")
        .input("status", "failure")
        .input("mention-on-failure", "@oncall");
    let r = c.run("notify-slack");
    r.assert_success();
    let m = slack.message(r.output("ts").unwrap()).unwrap();
    assert!(m.text.starts_with("@oncall ❌"), "{}", m.text);
    assert!(
        warnings(&r).iter().any(|w| w.contains("usergroups:read")),
        "{}",
        r.stdout
    );
    // No mentions when it worked.
    let mut c = ctx(&slack);
    c.input("status", "success")
        .input("mention-on-failure", "U0123ABCD");
    let r = c.run("notify-slack");
    assert!(
        !slack
            .message(r.output("ts").unwrap())
            .unwrap()
            .text
            .contains("<@U0123ABCD>")
    );
}

#[test]
fn rate_limit_waits_retry_after_then_posts_once() {
    let slack = FakeSlack::start();
    slack.fault("chat.postMessage", Fault::RateLimit(1));
    let r = ctx(&slack).run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"));
    let reqs = slack.requests_to("chat.postMessage");
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        waited >= Duration::from_millis(990) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    assert_eq!(slack.messages().len(), 1);
    assert!(warnings(&r).is_empty(), "{}", r.stdout);
}

#[test]
fn rate_limit_beyond_the_cap_gives_up_with_a_warning() {
    let slack = FakeSlack::start();
    slack.fault("chat.postMessage", Fault::RateLimit(120));
    let r = ctx(&slack).run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("false"));
    assert!(
        warnings(&r).iter().any(|w| w.contains("rate-limited")),
        "{}",
        r.stdout
    );
    assert_eq!(slack.requests_to("chat.postMessage").len(), 1);
}

#[test]
fn post_after_5xx_is_never_resent() {
    let slack = FakeSlack::start();
    slack.fault("chat.postMessage", Fault::ApplyThenStatus(500));
    let r = ctx(&slack).run("notify-slack");
    r.assert_success();
    assert_eq!(
        slack.requests_to("chat.postMessage").len(),
        1,
        "no blind re-send"
    );
    assert_eq!(slack.messages().len(), 1);
    assert_eq!(r.output("ok"), Some("false"));
    assert!(
        warnings(&r)
            .iter()
            .any(|w| w.contains("could post it twice")),
        "{}",
        r.stdout
    );
}

#[test]
fn update_is_retried_after_5xx() {
    let slack = FakeSlack::start();
    let ts = ctx(&slack)
        .run("notify-slack")
        .output("ts")
        .unwrap()
        .to_string();
    slack.fault("chat.update", Fault::Status(503));
    slack.fault("chat.update", Fault::Error("service_unavailable"));
    let mut c = ctx(&slack);
    c.input("ts", &ts).input("status", "success");
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"), "{}", r.stdout);
    assert_eq!(slack.requests_to("chat.update").len(), 3);
    assert_eq!(slack.message(&ts).unwrap().edits, 1);
}

#[test]
fn connection_refused_is_retried_then_warned() {
    let port = gantry_test::free_port();
    let mut c = TestContext::new();
    c.env_file(&fixture("runner.env"));
    c.input("api", &format!("http://127.0.0.1:{port}/api/"))
        .input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS");
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("false"));
    assert!(
        warnings(&r)
            .iter()
            .any(|w| w.contains("cannot reach Slack")),
        "{}",
        r.stdout
    );
    c.input("fail-on-error", "true");
    let r = c.run("notify-slack");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .iter()
            .any(|l| l.contains("notification not delivered")),
        "{}",
        r.stdout
    );
}

#[test]
fn every_error_is_mapped_to_a_clear_message() {
    let slack = FakeSlack::start();
    slack.add_token(
        "xoxb-read-only-token-0000",
        "U0OTHERBOT",
        &["channels:read"],
    );
    type Case<'a> = (&'a str, Box<dyn Fn(&mut TestContext)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "not_in_channel",
            Box::new(|c: &mut TestContext| {
                c.input("channel", "C0PRIVATE");
            }),
            "invite",
        ),
        (
            "channel_not_found",
            Box::new(|c: &mut TestContext| {
                c.input("channel", "C0NOPE0000");
            }),
            "not found",
        ),
        (
            "is_archived",
            Box::new(|c: &mut TestContext| {
                c.input("channel", "old-deploys");
            }),
            "archived",
        ),
        (
            "invalid_auth",
            Box::new(|c: &mut TestContext| {
                c.input("token", "xoxb-not-a-real-token");
            }),
            "bot token (xoxb-",
        ),
        (
            "missing_scope",
            Box::new(|c: &mut TestContext| {
                c.input("token", "xoxb-read-only-token-0000");
            }),
            "lacks the `chat:write` scope",
        ),
    ];
    for (code, setup, phrase) in cases {
        let mut c = ctx(&slack);
        setup(&mut c);
        let r = c.run("notify-slack");
        r.assert_success();
        let w = warnings(&r).join("\n");
        assert!(
            w.contains(phrase),
            "{code}: expected `{phrase}` in\n{w}\n{}",
            r.stdout
        );
        assert_eq!(r.output("ok"), Some("false"), "{code}");
    }
    for (code, phrase) in [
        ("msg_too_long", "4,000"),
        ("token_revoked", "reinstall"),
        ("restricted_action", "workspace setting"),
        ("invalid_blocks", "refused the blocks"),
        ("no_text", "no text"),
        ("account_inactive", "disabled app"),
    ] {
        slack.fault("chat.postMessage", Fault::Error(code));
        let r = ctx(&slack).run("notify-slack");
        let w = warnings(&r).join("\n");
        assert!(w.contains(phrase), "{code}: expected `{phrase}` in\n{w}");
    }
    // Updates of someone else's message: mapped, and a fresh message is posted instead.
    let foreign = slack.seed_foreign_message("C0DEPLOYS");
    let mut c = ctx(&slack);
    c.input("ts", &foreign).input("status", "success");
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"));
    assert_ne!(r.output("ts"), Some(foreign.as_str()));
    assert!(
        r.stderr
            .contains("only messages posted by this bot can be updated"),
        "{}",
        r.stderr
    );
    // The same failure is fatal with fail-on-error.
    let mut c = ctx(&slack);
    c.input("channel", "C0PRIVATE")
        .input("fail-on-error", "true");
    let r = c.run("notify-slack");
    r.assert_exit(1);
    assert!(
        r.error_lines().iter().any(|l| l.contains("invite")),
        "{}",
        r.stdout
    );
}

#[test]
fn truncation_at_every_limit_is_accepted_by_slack() {
    let slack = FakeSlack::start();
    let long = |n: usize| "x".repeat(n);
    let payload = json!({
        "text": long(5000),
        "blocks": (0..60).map(|i| match i {
            0 => json!({"type": "header", "text": {"type": "plain_text", "text": long(400)}}),
            1 => json!({"type": "section", "text": {"type": "mrkdwn", "text": long(3500)}}),
            2 => json!({"type": "section", "fields": (0..14).map(|_| json!({"type": "mrkdwn", "text": long(2500)})).collect::<Vec<_>>()}),
            3 => json!({"type": "context", "elements": (0..12).map(|_| json!({"type": "mrkdwn", "text": "c"})).collect::<Vec<_>>()}),
            4 => json!({"type": "actions", "elements": (0..30).map(|j| json!({"type": "button", "text": {"type": "plain_text", "text": long(100)}, "url": format!("https://x.example/{j}")})).collect::<Vec<_>>()}),
            _ => json!({"type": "divider"}),
        }).collect::<Vec<_>>(),
    });
    let mut c = ctx(&slack);
    c.input("payload", &payload.to_string());
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"), "{}", r.stdout);
    let m = slack.message(r.output("ts").unwrap()).unwrap();
    let chars = |v: &Value| v.as_str().unwrap().chars().count();
    assert_eq!(m.text.chars().count(), 4000);
    assert!(m.text.ends_with('…'));
    let b = m.blocks.as_array().unwrap();
    assert_eq!(b.len(), 50);
    assert_eq!(chars(&b[0]["text"]["text"]), 150);
    assert_eq!(chars(&b[1]["text"]["text"]), 3000);
    assert_eq!(b[2]["fields"].as_array().unwrap().len(), 10);
    assert_eq!(chars(&b[2]["fields"][0]["text"]), 2000);
    assert_eq!(b[3]["elements"].as_array().unwrap().len(), 10);
    assert_eq!(b[4]["elements"].as_array().unwrap().len(), 25);
    assert_eq!(chars(&b[4]["elements"][0]["text"]["text"]), 75);

    // The default message with over-long user values is accepted too.
    let mut ev = push_event();
    ev["head_commit"]["message"] = json!(format!("{}\nbody", "é".repeat(6000)));
    let mut c = ctx(&slack);
    c.event("push", ev)
        .input("environment", &"e".repeat(300))
        .input("image", &format!("ghcr.io/acme/{}", "i".repeat(2500)));
    let r = c.run("notify-slack");
    assert_eq!(r.output("ok"), Some("true"), "{}", r.stdout);
}

#[test]
fn hostile_commit_messages_and_pr_titles_are_escaped() {
    let slack = FakeSlack::start();
    let r = ctx(&slack).run("notify-slack");
    r.assert_success();
    let m = slack.message(r.output("ts").unwrap()).unwrap();
    let all = format!("{} {} {}", m.text, m.blocks, m.attachments);
    assert!(!all.contains("<!channel>"), "{all}");
    assert!(!all.contains("<https://evil.example|click here>"), "{all}");
    assert!(
        all.contains("&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;"),
        "{all}"
    );
    assert!(
        !all.contains("Longer body"),
        "only the first line of the commit message"
    );

    let mut c = ctx(&slack);
    let pr: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("pull-request-event.json")).unwrap())
            .unwrap();
    c.event("pull_request", pr);
    let r = c.run("notify-slack");
    let m = slack.message(r.output("ts").unwrap()).unwrap();
    let body = m.attachments.to_string();
    assert!(body.contains("<https://github.com/acme/api/pull/17|#17 Add &lt;b&gt;bold&lt;/b&gt; &amp; \\\"quoted\\\" feature>"), "{body}");
    assert!(body.contains("feature/x"));
    assert!(body.contains("|abcdefa>"), "PR head sha is shown: {body}");
}

#[test]
fn raw_payload_is_templated_after_parsing() {
    let slack = FakeSlack::start();
    let mut c = ctx(&slack);
    c.input("payload-file", fixture("payload.yml").to_str().unwrap())
        .input("status", "success")
        .env("DEPLOY_TARGET", "eu-1 \"blue\"");
    let r = c.run("notify-slack");
    r.assert_success();
    let m = slack.message(r.output("ts").unwrap()).unwrap();
    assert!(
        m.text
            .starts_with("✅ acme/api success: fix: retry \"uploads\" &lt;!channel&gt;"),
        "{}",
        m.text
    );
    assert_eq!(
        m.blocks[0]["text"]["text"],
        "*Deploy* by octocat on `main` (eu-1 \"blue\")"
    );
    assert_eq!(m.blocks[1]["elements"][0]["text"], "sha 0123456");

    let mut c = ctx(&slack);
    c.input("payload", "{\"text\": \"{{ github.nope }}\"}");
    let r = c.run("notify-slack");
    r.assert_exit(1);
    assert!(
        r.error_lines()
            .iter()
            .any(|l| l.contains("{{ github.nope }}")),
        "{}",
        r.stdout
    );
}

#[test]
fn webhook_mode_and_fallback() {
    let slack = FakeSlack::start();
    let hook = slack.webhook_url();
    let mut c = TestContext::new();
    c.env_file(&fixture("runner.env"))
        .event("push", push_event());
    c.input("webhook-url", &hook).input("status", "success");
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"));
    assert_eq!(r.output("ts"), None, "webhooks return no ts");
    let m = slack.messages().pop().unwrap();
    assert!(m.via_webhook);
    assert_eq!(m.attachments[0]["color"], "#2eb886");

    // A webhook cannot update: a warning, then a new message.
    c.input("ts", "1700000000.000100");
    let r = c.run("notify-slack");
    assert!(
        warnings(&r).iter().any(|w| w.contains("cannot update")),
        "{}",
        r.stdout
    );

    // Web API refuses (bad token) → the webhook delivers.
    let mut c = ctx(&slack);
    c.input("token", "xoxb-revoked-0000")
        .input("webhook-url", &hook);
    let before = slack.messages().len();
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"), "{}", r.stdout);
    assert_eq!(slack.messages().len(), before + 1);
    assert!(slack.messages().last().unwrap().via_webhook);

    // Never a fallback after an ambiguous post (it could double-post).
    slack.fault("chat.postMessage", Fault::ApplyThenStatus(502));
    let mut c = ctx(&slack);
    c.input("webhook-url", &hook);
    let before = slack.requests_to("webhook").len();
    let r = c.run("notify-slack");
    assert_eq!(r.output("ok"), Some("false"));
    assert_eq!(slack.requests_to("webhook").len(), before);

    // A removed webhook is explained.
    let mut c = TestContext::new();
    c.input("webhook-url", &hook.replace("SECRET", "GONE"));
    let r = c.run("notify-slack");
    assert!(
        warnings(&r)
            .iter()
            .any(|w| w.contains("disabled or removed")),
        "{}",
        r.stdout
    );
}

#[test]
fn secrets_never_appear_in_output() {
    let slack = FakeSlack::start();
    let hook = slack.webhook_url();
    let mut runs = Vec::new();
    let mut c = ctx(&slack);
    c.input("webhook-url", &hook)
        .input("status", "failure")
        .input("mention-on-failure", "@oncall");
    runs.push(c.run("notify-slack"));
    let mut c = ctx(&slack);
    c.input(
        "api",
        &format!("http://127.0.0.1:{}/api/", gantry_test::free_port()),
    )
    .input("webhook-url", &format!("{hook}x"));
    runs.push(c.run("notify-slack"));
    let mut c = ctx(&slack);
    c.input("status", "nonsense").input("webhook-url", &hook);
    runs.push(c.run("notify-slack"));
    let mut c = ctx(&slack);
    c.input("dry-run", "true").input("webhook-url", &hook);
    runs.push(c.run("notify-slack"));
    c.env("RUNNER_DEBUG", "1")
        .env("GANTRY_LOG", "debug")
        .input("dry-run", "false");
    runs.push(c.run("notify-slack"));
    for r in &runs {
        let out = visible(r);
        for secret in [BOT_TOKEN, WEBHOOK_SECRET, "gantryFAKEwebhookSECRET"] {
            assert!(!out.contains(secret), "secret leaked:\n{out}");
        }
    }
    assert!(
        runs[0]
            .stdout
            .lines()
            .any(|l| l == format!("::add-mask::{BOT_TOKEN}")),
        "token masked first"
    );
}

#[test]
fn bad_inputs_fail_clearly() {
    let check = |c: &TestContext, needles: &[&str]| {
        let r = c.run("notify-slack");
        r.assert_exit(1);
        let errs = r.error_lines().join("\n");
        for n in needles {
            assert!(errs.contains(n), "expected `{n}` in\n{errs}\n{}", r.stdout);
        }
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        r
    };
    let c = TestContext::new();
    check(&c, &["token", "webhook-url"]);

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("status", "maybe")
        .input("channel", "C0DEPLOYS");
    check(
        &c,
        &[
            "`status`",
            "`maybe`",
            "started, success, failure, cancelled",
        ],
    );

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input("fail-on-error", "yes");
    check(&c, &["`fail-on-error`", "`yes`", "boolean"]);

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN);
    check(&c, &["channel"]);

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input("ts", "yesterday");
    check(&c, &["`ts`", "`yesterday`"]);

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input("payload-file", fixture("bad-payload.yml").to_str().unwrap());
    let r = check(&c, &["payload-file", "invalid YAML", "line 6, column 6"]);
    assert!(
        r.error_lines()[0].contains("line=6,col=6"),
        "annotation carries the location: {}",
        r.stdout
    );

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input(
            "payload-file",
            fixture("bad-payload.json").to_str().unwrap(),
        );
    check(&c, &["payload-file", "invalid JSON", "line 5, column 3"]);

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input("payload", "text: [unclosed");
    let r = check(&c, &["`payload`", "invalid YAML", "line 2, column 1"]);
    assert!(
        !r.error_lines()[0].contains("line="),
        "no file annotation for an inline payload"
    );

    let mut c = TestContext::new();
    c.input("webhook-url", "not a url");
    let r = check(&c, &["webhook-url"]);
    assert!(!r.stdout.contains("not a url") || r.stdout.contains("::add-mask::not a url"));

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input("mention-on-failure", "<!channel|x>");
    check(&c, &["mention-on-failure"]);

    let mut c = TestContext::new();
    c.input("token", BOT_TOKEN)
        .input("channel", "C0DEPLOYS")
        .input("github-deployment", "true");
    check(&c, &["github-deployment", "environment"]);
}

#[test]
fn dry_run_prints_the_plan_and_sends_nothing() {
    let slack = FakeSlack::start();
    let mut c = ctx(&slack);
    c.input("dry-run", "true")
        .input("ts", "1700000000.000100")
        .input("status", "failure")
        .input("mention-on-failure", "U0123ABCD");
    let r = c.run("notify-slack");
    r.assert_success();
    assert!(slack.requests().is_empty());
    assert!(
        r.stdout.contains("\"method\": \"chat.update\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("edits do not notify"), "{}", r.stdout);
}

#[test]
fn github_deployment_start_then_success_marks_the_previous_inactive() {
    let slack = FakeSlack::start();
    let gh = FakeGitHub::start();
    let older = gh.seed("acme/api", "production", "success");
    let mut c = ctx(&slack);
    c.env("GITHUB_API_URL", &gh.api_url())
        .input("github-deployment", "true")
        .input("github-token", GITHUB_TOKEN)
        .input("environment", "production")
        .input("environment-url", "https://api.example.com");
    let start = c.run("notify-slack");
    start.assert_success();
    assert!(warnings(&start).is_empty(), "{}", start.stdout);
    let id: u64 = start
        .output("deployment-id")
        .expect("deployment-id")
        .parse()
        .unwrap();
    let d = gh.deployments().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!(d.git_ref, "0123456789abcdef0123456789abcdef01234567");
    assert!(d.production);
    assert_eq!(d.statuses.last().unwrap().0, "in_progress");

    c.input("status", "success")
        .input("ts", start.output("ts").unwrap());
    let done = c.run("notify-slack");
    done.assert_success();
    assert_eq!(
        done.output("deployment-id"),
        Some(id.to_string().as_str()),
        "found this run's deployment again"
    );
    let deps = gh.deployments();
    let d = deps.iter().find(|d| d.id == id).unwrap();
    let last = d.statuses.last().unwrap();
    assert_eq!(last.0, "success");
    assert_eq!(last.1.as_deref(), Some("https://api.example.com"));
    assert_eq!(
        last.2.as_deref(),
        Some("https://github.com/acme/api/actions/runs/9876543210/attempts/2")
    );
    assert_eq!(
        deps.iter()
            .find(|d| d.id == older)
            .unwrap()
            .statuses
            .last()
            .unwrap()
            .0,
        "inactive"
    );
    assert!(!visible(&done).contains(GITHUB_TOKEN));

    // A refused token is a warning, and Slack still gets the message.
    c.input("github-token", "ghs_wrong")
        .input("status", "failure");
    let r = c.run("notify-slack");
    r.assert_success();
    assert!(
        warnings(&r).iter().any(|w| w.contains("Bad credentials")),
        "{}",
        r.stdout
    );
}

#[test]
fn sigterm_during_a_rate_limit_wait_exits_promptly() {
    let slack = FakeSlack::start();
    slack.fault("chat.postMessage", Fault::RateLimit(25));
    let c = ctx(&slack);
    let child = c
        .command("notify-slack")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first (rate-limited) request arrived, then cancel like the runner does.
    let t0 = std::time::Instant::now();
    while slack.requests_to("chat.postMessage").is_empty() && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    #[allow(clippy::disallowed_methods)] // test: deliver SIGTERM as the runner does
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let sent = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        slack.requests_to("chat.postMessage").len(),
        1,
        "no post after cancel"
    );
}

#[test]
fn webhook_rate_limit_is_retried() {
    let slack = FakeSlack::start();
    slack.fault("webhook", Fault::RateLimit(1));
    let mut c = TestContext::new();
    c.env_file(&fixture("runner.env"));
    c.input("webhook-url", &slack.webhook_url());
    let r = c.run("notify-slack");
    r.assert_success();
    assert_eq!(r.output("ok"), Some("true"), "{}", r.stdout);
    let reqs = slack.requests_to("webhook");
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(990));
    assert_eq!(slack.messages().len(), 1);
}
