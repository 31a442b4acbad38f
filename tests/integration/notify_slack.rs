//! Integration tests: notify_slack.
