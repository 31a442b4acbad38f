//! Property tests: what we write is what the runner reads. Random values (newlines, `%0A`,
//! delimiters-lookalikes, `::` sequences, unicode) go through our writers and through ports of the
//! runner's parsers, and must come back unchanged.

use gantry_runtime::command::{
    escape_data, escape_property, format_command, unescape_data, unescape_property,
};
use gantry_runtime::files::{format_entry, new_delimiter, parse_runner_file};
use proptest::prelude::*;

fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("%0A".to_string()),
            Just("%25".to_string()),
            Just("::".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("<<".to_string()),
            Just("=".to_string()),
            Just("ghadelimiter_".to_string()),
            "[a-zA-Z0-9 é💥]{0,8}",
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn heredoc_values_round_trip(key in "[a-zA-Z_][a-zA-Z0-9_-]{0,12}", value in nasty()) {
        let entry = format_entry(&key, &value, &new_delimiter()).expect("random delimiter never collides");
        let parsed = parse_runner_file(&entry).expect("runner parses it");
        prop_assert_eq!(parsed, vec![(key, value)]);
    }

    #[test]
    fn command_data_round_trips_and_stays_one_line(data in nasty()) {
        let escaped = escape_data(&data);
        prop_assert!(!escaped.contains('\n') && !escaped.contains('\r'));
        prop_assert_eq!(unescape_data(&escaped), data);
    }

    #[test]
    fn command_properties_round_trip(value in nasty()) {
        let escaped = escape_property(&value);
        prop_assert!(!escaped.contains(',') && !escaped.contains(':') && !escaped.contains('\n'));
        prop_assert_eq!(unescape_property(&escaped), value);
    }

    #[test]
    fn annotation_lines_parse_back(title in nasty(), msg in nasty()) {
        let line = format_command("error", &[("title", title.clone())], &msg);
        prop_assert!(!line.contains('\n'));
        // Split as the runner does: command info up to the next `::`, data after it.
        let rest = line.strip_prefix("::").expect("prefix");
        let (info, data) = rest.split_once("::").expect("separator");
        prop_assert_eq!(unescape_data(data), msg);
        if !title.is_empty() {
            let props = info.strip_prefix("error ").expect("props");
            let v = props.strip_prefix("title=").expect("title");
            prop_assert_eq!(unescape_property(v), title);
        }
    }
}
